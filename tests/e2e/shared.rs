//! Issue 15, scale-out: `tilt up --api-context NAME --session S` runs the controllers against a real
//! kube-apiserver (with `tilt crds --namespaced` installed), each session in its own namespace, one holder per
//! session (a Lease); `tilt get --api-context NAME --session S` reads a session's objects.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::{GroupChild, kubeconfig_path};
use crate::crds::install_crds;
use crate::kube_cluster::{RealCluster, real_cluster, scaleout_cluster, wait_until};

/// A temp HOME whose kubeconfig is the cluster's (context `real`) and a project with a server that restarts on
/// `v.txt` and a job.
fn project(cluster: &RealCluster) -> (tempfile::TempDir, PathBuf) {
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig_path(home.path());
    std::fs::create_dir_all(kubeconfig.parent().unwrap()).unwrap();
    std::fs::copy(&cluster.kubeconfig, &kubeconfig).unwrap();
    let dir = home.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("v.txt"), "1\n").unwrap();
    std::fs::write(
        dir.join("Tiltfile"),
        "local_resource('srv', serve_cmd='while true; do echo up $(cat v.txt); sleep 1; done', deps=['v.txt'])\n\
         local_resource('job', cmd='echo job done')\n",
    )
    .unwrap();
    (home, dir)
}

fn tilt(home: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tilt"));
    c.args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("KUBECONFIG", kubeconfig_path(home))
        .env_remove("TILT_CONFIG")
        .env("TILT_PORT", "0");
    c
}

fn output(mut cmd: Command) -> (bool, String) {
    let Output { status, stdout, stderr } = cmd.stdin(Stdio::null()).output().unwrap();
    (status.success(), String::from_utf8_lossy(&stdout).into_owned() + &String::from_utf8_lossy(&stderr))
}

/// `tilt get --api-context real --session S ARGS…`: stdout, or "" when it fails.
fn get(home: &Path, dir: &Path, session: &str, args: &[&str]) -> String {
    let mut all = vec!["get", "--api-context", "real", "--session", session];
    all.extend_from_slice(args);
    let out = tilt(home, dir, &all).output().unwrap();
    if out.status.success() { String::from_utf8_lossy(&out.stdout).into_owned() } else { String::new() }
}

#[test]
fn tilt_up_on_a_shared_apiserver_keeps_each_session_to_itself() {
    let Some(cluster) = scaleout_cluster() else { return };
    crate::crds::install(cluster, &["--namespaced"]);
    let (home, dir) = project(cluster);
    let (h, d) = (home.path(), dir.as_path());
    let a = format!("a-{}", std::process::id());
    let b = format!("b-{}", std::process::id());

    // Session a: `tilt up`, until its resources are Ready.
    let mut up = tilt(h, d, &["up", "--stream", "--api-context", "real", "--session", &a]);
    let mut up = GroupChild::spawn(up.stdout(Stdio::piped()).stderr(Stdio::inherit()));
    let mut lines = BufReader::new(up.0.stdout.take().unwrap()).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(first.contains(&format!("session {a}")) && first.contains(&format!("-n tilt-{a}")), "{first}");
    let second = lines.next().and_then(Result::ok).unwrap_or_default();
    let web_url = second.strip_prefix("Tilt started on ").unwrap_or_else(|| panic!("{second}")).to_string();
    std::thread::spawn(move || lines.for_each(drop));
    let ready = |name: &str| {
        get(h, d, &a, &["uiresource", name, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"])
            == "True"
    };
    wait_until("session a's resources to be Ready", Duration::from_secs(60), || ready("srv") && ready("job"));
    // Tilt's names come back as they were; the apiserver holds them under valid names in the namespace.
    let listed = get(h, d, &a, &["uiresources", "-o", "name"]);
    assert!(listed.contains("uiresource.tilt.dev/(Tiltfile)"), "{listed}");
    let stored = cluster.kubectl_ok(&["get", "uiresources", "-n", &format!("tilt-{a}"), "-o", "name"]);
    assert!(stored.contains("uiresource.tilt.dev/srv") && stored.contains("uiresource.tilt.dev/tiltfile-"), "{stored}");

    // The web UI works on this store as on the embedded one: its view and its proxy to the API.
    let web = crate::web::Web::at(&web_url);
    let view = web.view();
    let names: Vec<&str> =
        view["uiResources"].as_array().unwrap().iter().filter_map(|r| r["metadata"]["name"].as_str()).collect();
    assert!(names.contains(&"srv") && names.contains(&"job") && names.contains(&"(Tiltfile)"), "{names:?}");
    let (code, body) = web.get("/proxy/apis/tilt.dev/v1alpha1/uiresources/(Tiltfile)");
    assert_eq!(code, 200, "{body}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["metadata"]["name"], "(Tiltfile)");

    // The FileWatch restarts the server.
    let pid = || get(h, d, &a, &["cmd", "srv:serve", "-o", "jsonpath={.status.running.pid}"]);
    let first_pid = pid();
    assert!(!first_pid.is_empty());
    std::fs::write(dir.join("v.txt"), "2\n").unwrap();
    wait_until("the server to restart on the change", Duration::from_secs(30), || {
        let now = pid();
        !now.is_empty() && now != first_pid
    });

    // A second instance of session a is refused by the Lease.
    let (ok, out) = output(tilt(h, d, &["ci", "--api-context", "real", "--session", &a]));
    assert!(!ok && out.contains(&format!("session {a} is in use by")), "{out}");

    // Session b, side by side: its own objects, and a's untouched.
    let (ok, out) = output(tilt(h, d, &["ci", "--api-context", "real", "--session", &b, "--timeout", "60s"]));
    assert!(ok && out.contains("SUCCESS"), "{out}");
    let uid = |s: &str| get(h, d, s, &["uiresource", "srv", "-o", "jsonpath={.metadata.uid}"]);
    let (uid_a, uid_b) = (uid(&a), uid(&b));
    assert!(!uid_a.is_empty() && !uid_b.is_empty() && uid_a != uid_b, "{uid_a} {uid_b}");
    let everyone = cluster.kubectl_ok(&["get", "uiresources", "-A", "-o", "jsonpath={.items[*].metadata.namespace}"]);
    assert!(everyone.contains(&format!("tilt-{a}")) && everyone.contains(&format!("tilt-{b}")), "{everyone}");

    // Stopping session a frees it: its Lease goes.
    crate::common::signal(&up.0, "TERM");
    let _ = up.0.wait();
    assert_eq!(cluster.kubectl_ok(&["get", "leases", "-n", &format!("tilt-{a}"), "-o", "name"]), "");
}

#[test]
fn an_apiserver_without_the_namespaced_crds_is_a_clear_error() {
    let Some(cluster) = real_cluster() else { return };
    install_crds(cluster);
    let (home, dir) = project(cluster);
    let (ok, out) = output(tilt(home.path(), &dir, &["ci", "--api-context", "real", "--session", "x"]));
    assert!(!ok, "{out}");
    assert!(out.contains("cluster-scoped") && out.contains("tilt crds --namespaced | kubectl --context real"), "{out}");
}

#[test]
fn rbac_keeps_a_user_to_the_sessions_granted_to_her() {
    let Some(cluster) = scaleout_cluster() else { return };
    crate::crds::install(cluster, &["--namespaced"]);
    let rbac = Command::new(env!("CARGO_BIN_EXE_tilt")).args(["crds", "--rbac"]).output().unwrap();
    assert!(rbac.status.success(), "{}", String::from_utf8_lossy(&rbac.stderr));
    cluster.apply("default", &String::from_utf8(rbac.stdout).unwrap());
    let (home, dir) = project(cluster);
    let (h, d) = (home.path(), dir.as_path());
    let id = std::process::id();
    let (alice, bob, carol) = (format!("alice-{id}"), format!("bob-{id}"), format!("carol-{id}"));

    // The admin gives alice her session, and runs bob's.
    cluster.kubectl_ok(&["create", "namespace", &format!("tilt-{alice}")]);
    cluster.kubectl_ok(&[
        "-n",
        &format!("tilt-{alice}"),
        "create",
        "rolebinding",
        "tilt-session",
        "--clusterrole",
        "tilt-session",
        "--user",
        "alice",
    ]);
    let (ok, out) = output(tilt(h, d, &["ci", "--api-context", "real", "--session", &bob, "--timeout", "60s"]));
    assert!(ok, "{out}");

    // Alice runs her session, and may not read bob's or start one nobody gave her.
    let (ok, out) = output(tilt(h, d, &["ci", "--api-context", "alice", "--session", &alice, "--timeout", "60s"]));
    assert!(ok && out.contains("SUCCESS"), "{out}");
    let (ok, out) = output(tilt(h, d, &["get", "--api-context", "alice", "--session", &bob, "uiresources"]));
    assert!(!ok, "{out}");
    assert!(
        out.contains("forbidden") && out.contains("User \"alice\"") && out.contains(&format!("tilt-{bob}")),
        "{out}"
    );
    let (ok, out) = output(tilt(h, d, &["ci", "--api-context", "alice", "--session", &carol]));
    assert!(!ok && out.contains(&format!("namespace tilt-{carol} does not exist and you may not create it")), "{out}");
}

/// Restart without waste: a second `tilt ci` on the same session finds the image built and the manifests applied
/// by the first in the store, and neither rebuilds (the DockerImage's input hash still matches and the engine
/// has the image) nor re-applies (the KubernetesApply's applied input hash still matches): their status times
/// stay those of the first run.
#[test]
fn a_restart_on_the_same_session_rebuilds_and_reapplies_nothing_unchanged() {
    let Some(cluster) = scaleout_cluster() else { return };
    let Some(docker) = crate::kube::real_docker() else { return };
    crate::crds::install(cluster, &["--namespaced"]);
    let (home, dir) = project(cluster);
    let (h, d) = (home.path(), dir.as_path());
    let id = std::process::id();
    let (session, ns) = (format!("restart-{id}"), format!("restart-app-{id}"));
    cluster.kubectl_ok(&["create", "namespace", &ns]);
    let busybox = ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|p| Path::new(p).exists()).unwrap();
    std::fs::copy(busybox, dir.join("busybox")).unwrap();
    // The whole context goes into the image, so that a new file makes a new image.
    std::fs::write(dir.join("Dockerfile"), "FROM scratch\nCOPY . /app\nCMD [\"/app/busybox\", \"sleep\", \"3600\"]\n")
        .unwrap();
    std::fs::write(
        dir.join("app.yaml"),
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  namespace: {ns}\nspec:\n  selector:\n    \
             matchLabels:\n      app: app\n  template:\n    metadata:\n      labels:\n        app: app\n    spec:\n      \
             containers:\n      - name: app\n        image: restart-img\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("Tiltfile"),
        "docker_build('restart-img', '.', ignore=['Tiltfile'])\nk8s_yaml('app.yaml')\n",
    )
    .unwrap();
    let ci = || {
        let mut c = tilt(h, d, &["ci", "--api-context", "real", "--session", &session, "--timeout", "120s"]);
        c.env("DOCKER_HOST", &docker);
        output(c)
    };
    let times = || {
        let image = get(h, d, &session, &["dockerimage", "-o", "jsonpath={.items[0].status.completed.finishedAt}"]);
        let apply = get(h, d, &session, &["kubernetesapply", "app", "-o", "jsonpath={.status.lastApplyTime}"]);
        (image, apply)
    };

    let (ok, out) = ci();
    assert!(ok && out.contains("SUCCESS"), "{out}");
    let first = times();
    assert!(!first.0.is_empty() && !first.1.is_empty(), "{first:?}");

    let (ok, out) = ci();
    assert!(ok && out.contains("SUCCESS"), "{out}");
    assert!(out.contains("is up to date"), "the image was not reused:\n{out}");
    assert!(!out.contains("Building Dockerfile"), "it rebuilt:\n{out}");
    assert_eq!(times(), first, "the restart rebuilt or re-applied");

    // A change to what the image is built from does rebuild, and the new image is applied.
    std::fs::write(dir.join("extra.txt"), "new input\n").unwrap();
    let (ok, out) = ci();
    assert!(ok && out.contains("Building Dockerfile"), "{out}");
    let third = times();
    assert!(third.0 != first.0 && third.1 != first.1, "{first:?} {third:?}");
    cluster.kubectl_ok(&["delete", "namespace", &ns, "--wait=false"]);
}
