//! Issue 14, first part: the real control plane (tests/kube) runs a Deployment. kubectl applies it, the real
//! controller-manager makes its ReplicaSet and Pod, the real scheduler binds the Pod to kwok's fake Node, kwok
//! makes it Running and Ready and serves its logs through the apiserver's kubelet proxy. Then the example
//! project examples/kubernetes with `tilt up` and `tilt ci` against that control plane and a real dockerd.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{TiltUp, kubeconfig_path};
use crate::kube_cluster::{KubeNamespace, RealCluster, real_cluster, wait_until};
use crate::kubernetes::{copy_example, free_port};

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: example.invalid/web:1
        ports:
        - containerPort: 8000
";

#[test]
fn real_deployment_pod_becomes_ready() {
    let Some(cluster) = real_cluster() else { return };
    let ns = KubeNamespace::new(cluster, "deploy");
    ns.apply(DEPLOYMENT);

    wait_until("the Deployment's ReplicaSet", Duration::from_secs(30), || {
        ns.kubectl_ok(&[
            "get",
            "replicasets",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].metadata.ownerReferences[0].name}",
        ]) == "web"
    });
    // `kubectl wait` fails at once while no pod matches, so poll until the pod exists first.
    wait_until("the ReplicaSet's Pod", Duration::from_secs(30), || {
        !ns.kubectl_ok(&["get", "pods", "-l", "app=web", "-o", "name"]).trim().is_empty()
    });
    ns.kubectl_ok(&["wait", "--for=condition=Ready", "pod", "-l", "app=web", "--timeout=60s"]);

    let pod = ns.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[0].spec.nodeName} {.items[0].status.phase} {.items[0].metadata.ownerReferences[0].kind}",
    ]);
    assert_eq!(pod, "kwok-node-0 Running ReplicaSet");
    wait_until("the Deployment's availableReplicas", Duration::from_secs(30), || {
        ns.kubectl_ok(&["get", "deployment", "web", "-o", "jsonpath={.status.availableReplicas}"]) == "1"
    });

    // Pod logs come from kwok's kubelet API, through the apiserver.
    let logs = ns.kubectl_ok(&["logs", "deployment/web"]);
    assert!(logs.contains("kwok: logs of every pod"), "unexpected pod logs: {logs:?}");
}

/// The real dockerd that `.ci/run` starts (`TILT_TEST_DOCKER_HOST`); `None` (after a note) outside CI.
pub fn real_docker() -> Option<String> {
    match std::env::var("TILT_TEST_DOCKER_HOST") {
        Ok(host) => Some(host),
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("TILT_TEST_DOCKER_HOST is unset under CI=true: .ci/run must start dockerd for this test")
        }
        Err(_) => {
            eprintln!("skipping: TILT_TEST_DOCKER_HOST is unset (.ci/run starts a dockerd and sets it)");
            None
        }
    }
}

/// A temp HOME whose kubeconfig's current context is the real cluster with `ns` as its namespace, and in
/// HOME/project a copy of examples/kubernetes whose image is `FROM scratch` with busybox (no registry here).
fn real_project(cluster: &RealCluster, ns: &KubeNamespace) -> (tempfile::TempDir, PathBuf) {
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig_path(home.path());
    std::fs::create_dir_all(kubeconfig.parent().unwrap()).unwrap();
    std::fs::copy(&cluster.kubeconfig, &kubeconfig).unwrap();
    let set = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["config", "set-context", "real", "--namespace", &ns.name])
        .output()
        .unwrap();
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let project = home.path().join("project");
    copy_example(&project);
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static is installed");
    std::fs::copy(busybox, project.join("busybox")).unwrap();
    std::fs::write(
        project.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\nEXPOSE 8000\n\
         CMD [\"/bin/busybox\", \"httpd\", \"-f\", \"-p\", \"8000\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
    (home, project)
}

/// `{.status.conditions[?(@.type=="Ready")].status}` of a tilt object, or "" while it does not exist.
fn ready(tilt: &TiltUp, kind: &str, name: &str) -> String {
    let out = tilt.kubectl(&["get", kind, name, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Issue 14: examples/kubernetes with `tilt up` against the real control plane and a real dockerd. The image
/// is built on dockerd; the Deployment and Service are server-side applied with field manager `tilt`; the real
/// controller-manager and scheduler put the pod on kwok's node, which makes it Running and Ready; the pod's
/// logs (kwok's) reach `tilt logs`; the port forward goes through kube-apiserver to kwok's port-forward (an
/// echo); `tilt down` deletes what was applied and the real garbage collector removes the ReplicaSet and Pod.
#[test]
fn example_project_comes_up_on_the_real_control_plane() {
    let Some(cluster) = real_cluster() else { return };
    let Some(docker) = real_docker() else { return };
    let ns = KubeNamespace::new(cluster, "example");
    let (home, project) = real_project(cluster, &ns);
    let port = free_port();
    let tilt =
        TiltUp::start_at(home, &project.join("Tiltfile"), &[("DOCKER_HOST", &docker), ("APP_PORT", &port.to_string())]);
    wait_until("hello-web to be Ready", Duration::from_secs(180), || ready(&tilt, "uiresource", "hello-web") == "True");

    let deployment = ns.kubectl_ok(&[
        "get",
        "deployment",
        "hello-web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image} {range .metadata.managedFields[*]}{.manager}/{.operation} {end}",
    ]);
    let (image, managers) = deployment.split_once(' ').unwrap();
    assert!(image.starts_with("hello-web:tilt-"), "{deployment}");
    assert!(managers.split_whitespace().any(|m| m == "tilt/Apply"), "server-side applied by `tilt`: {managers}");
    let service =
        ns.kubectl_ok(&["get", "service", "hello-web", "-o", "jsonpath={.metadata.managedFields[0].manager}"]);
    assert_eq!(service, "tilt");
    let pod = ns.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=hello-web",
        "-o",
        "jsonpath={.items[0].metadata.name} {.items[0].spec.nodeName} {.items[0].status.phase} \
         {.items[0].metadata.ownerReferences[0].kind} {.items[0].spec.containers[0].image}",
    ]);
    let fields: Vec<&str> = pod.split(' ').collect();
    assert_eq!(fields[1..], ["kwok-node-0", "Running", "ReplicaSet", image], "{pod}");

    // kwok's logs for the pod, through kube-apiserver's kubelet proxy, reach `tilt logs`.
    wait_until("the pod's logs in `tilt logs`", Duration::from_secs(60), || {
        let out = tilt.tilt_command(&["logs", "hello-web"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).contains("kwok: logs of every pod")
    });

    // The port forward: through kube-apiserver to kwok, whose port-forward to the pod is an echo.
    wait_until("an echo through the port forward", Duration::from_secs(60), || {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut echoed = [0u8; 16];
        s.write_all(b"hello, kwok pod\n").is_ok()
            && s.read_exact(&mut echoed).is_ok()
            && &echoed == b"hello, kwok pod\n"
    });
    let forward = tilt.kubectl_ok(&["get", "portforward", "hello-web", "-o", "jsonpath={.status.forwardStatuses[0]}"]);
    assert!(!forward.contains("\"error\""), "{forward}");

    // `tilt down`: the applied objects go, and the real garbage collector takes the ReplicaSet and Pod.
    let out = tilt.tilt_command(&["down"]).output().unwrap();
    assert!(out.status.success(), "tilt down: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(ns.kubectl_ok(&["get", "deployments,services", "-o", "name"]), "");
    wait_until("the garbage collector to delete the ReplicaSet and Pod", Duration::from_secs(60), || {
        ns.kubectl_ok(&["get", "replicasets,pods", "-o", "name"]).is_empty()
    });
}

/// A kwok Stage that starts a pod labelled `tilt-test/crashloop=true` crash-looping, never Ready. It takes the
/// pod while Pending, outweighing kwok's own pod-ready stage there (a pod that had been Ready first could let
/// `tilt ci` pass before the crash).
const CRASHLOOP_STAGE: &str = r#"
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: tilt-test-crashloop
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.labels["tilt-test/crashloop"]'
      operator: In
      values: ['true']
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: ['Pending']
  weight: 100000
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: ContainersReady
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        started: false
        restartCount: 3
        lastState:
          terminated:
            exitCode: 1
            reason: Error
            startedAt: {{ $now | Quote }}
            finishedAt: {{ $now | Quote }}
        state:
          waiting:
            reason: CrashLoopBackOff
            message: back-off 40s restarting failed container
      {{ end }}
      phase: Running
      startTime: {{ $now | Quote }}
"#;

/// Runs `tilt ci` on the project against the real cluster; (success, stdout + stderr).
fn ci(home: &Path, project: &Path, docker: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tilt"))
        .args(["ci", "--port", "0", "--timeout", "120s", "-f"])
        .arg(project.join("Tiltfile"))
        .env("HOME", home)
        .env("KUBECONFIG", kubeconfig_path(home))
        .env("DOCKER_HOST", docker)
        .env("APP_PORT", free_port().to_string())
        .env_remove("TILT_CONFIG")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// Issue 14: `tilt ci` against the real control plane exits 0 once the pod kwok runs is Ready, and 1, naming
/// the resource and the reason, when a kwok Stage makes the pod crash-loop.
#[test]
fn tilt_ci_on_the_real_control_plane_passes_and_fails_on_a_crash_loop() {
    let Some(cluster) = real_cluster() else { return };
    let Some(docker) = real_docker() else { return };
    let ns = KubeNamespace::new(cluster, "ci");
    let (home, project) = real_project(cluster, &ns);
    let (ok, out) = ci(home.path(), &project, &docker);
    assert!(ok && out.contains("SUCCESS"), "{out}");
    assert_eq!(ns.kubectl_ok(&["get", "deployment", "hello-web", "-o", "jsonpath={.status.readyReplicas}"]), "1");

    // A rollout whose new pod crash-loops while the earlier one is still Ready: the resource is the new pod's.
    cluster.apply(&ns.name, CRASHLOOP_STAGE);
    let deploy = std::fs::read_to_string(project.join("deploy.yaml")).unwrap();
    let crashing = deploy.replacen(
        "      labels:\n        app: hello-web\n",
        "      labels:\n        app: hello-web\n        tilt-test/crashloop: \"true\"\n",
        1,
    );
    assert_ne!(deploy, crashing, "the pod template's labels moved in deploy.yaml");
    std::fs::write(project.join("deploy.yaml"), crashing).unwrap();
    let (ok, out) = ci(home.path(), &project, &docker);
    assert!(!ok, "{out}");
    assert!(out.contains("FAILED") && out.contains("hello-web") && out.contains("CrashLoopBackOff"), "{out}");
}
