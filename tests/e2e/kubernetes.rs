//! Issue 6 end to end: the example project examples/kubernetes (`docker_build` + `k8s_yaml` +
//! `k8s_resource(port_forwards=)`) comes up
//! against the fixture cluster (the user's kubeconfig, current context) and the fake Docker engine
//! (`DOCKER_HOST`); an edit rebuilds and redeploys; pod logs reach `tilt logs`; the port forward serves
//! traffic, survives the pod being replaced and its container being killed mid-stream (reporting the error
//! in status while it is down); `tilt down` deletes every applied object.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use tilt_apis::{PortForward, UIResource};
use tilt_fixtures::cluster::FixtureCluster;
use tilt_fixtures::docker::FakeDocker;

use crate::common::{TiltUp, kubeconfig_path, poll};

/// Copies `examples/kubernetes` (the example the README points to) into `dir`.
pub fn copy_example(dir: &Path) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kubernetes");
    for entry in walk(&example) {
        let target = dir.join(entry.strip_prefix(&example).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &target).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

/// A temp HOME whose kubeconfig's current context is a fresh fixture cluster, a fake Docker engine, and a copy
/// of the example project in HOME/project.
struct Fixtures {
    home: tempfile::TempDir,
    cluster: FixtureCluster,
    docker: FakeDocker,
    project: PathBuf,
}

impl Fixtures {
    async fn start() -> Fixtures {
        let home = tempfile::tempdir().unwrap();
        let cluster = FixtureCluster::start().await.unwrap();
        let kubeconfig = kubeconfig_path(home.path());
        std::fs::create_dir_all(kubeconfig.parent().unwrap()).unwrap();
        cluster.write_kubeconfig(&kubeconfig, "fixture").unwrap();
        let docker = FakeDocker::start(home.path()).await.unwrap();
        let project = home.path().join("project");
        copy_example(&project);
        Fixtures { home, cluster, docker, project }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One HTTP/1.1 GET through the port forward; the body, or why it failed.
fn get(port: u16, path: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    match out.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_string()),
        _ => Err(format!("unexpected answer {out:?}")),
    }
}

async fn ready_pod(cluster: &kube::Client, image_suffix: &str) -> Option<String> {
    let pods: Api<Pod> = Api::namespaced(cluster.clone(), "default");
    pods.list(&ListParams::default()).await.ok()?.items.into_iter().find_map(|p| {
        let status = p.status.as_ref()?;
        let ready = status.container_statuses.as_ref()?.iter().all(|c| c.ready);
        let image = p.spec.as_ref()?.containers[0].image.clone()?;
        (ready && p.metadata.deletion_timestamp.is_none() && image.ends_with(image_suffix)).then(|| p.name_any())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_build_k8s_yaml_and_port_forward_end_to_end() {
    let Fixtures { home, cluster, docker, project } = Fixtures::start().await;
    let port = free_port();
    let up = TiltUp::start_at(
        home,
        &project.join("Tiltfile"),
        &[("DOCKER_HOST", &docker.docker_host()), ("APP_PORT", &port.to_string())],
    );
    let tilt = up.client().await;
    let k8s = cluster.client();
    let resources: Api<UIResource> = Api::all(tilt.clone());
    let ready = || async {
        let r = resources.get_opt("hello-web").await.ok()??;
        r.status?.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True").then_some(())
    };
    poll("resource hello-web to be Ready", ready).await;

    // The build got the context without what .dockerignore leaves out, and the deploy uses its image.
    let builds = docker.builds();
    assert_eq!(builds.len(), 1, "one build");
    assert!(builds[0].files.contains_key("www/index.html"), "{:?}", builds[0].files.keys());
    assert!(!builds[0].files.contains_key("notes.md"), "{:?}", builds[0].files.keys());
    let deployments: Api<Deployment> = Api::namespaced(k8s.clone(), "default");
    let image1 =
        deployments.get("hello-web").await.unwrap().spec.template.spec.unwrap().containers[0].image.clone().unwrap();
    assert!(image1.starts_with("hello-web:tilt-"), "{image1}");
    let pod1 = poll("the first pod", || ready_pod(&k8s, &image1)).await;

    // The port forward reaches the pod.
    let body = poll("traffic through the port forward", || async { get(port, "/").ok() }).await;
    assert!(body.contains(&format!("pod={pod1}")) && body.contains(&image1), "{body}");

    // Pod logs (the container's start line, the request) reach `tilt logs`.
    poll("pod logs in tilt logs", || async {
        let out = up.tilt_command(&["logs", "hello-web"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text.contains(&format!("started in pod {pod1}")) && text.contains("GET /")).then_some(())
    })
    .await;

    // An edit rebuilds with a new content tag and redeploys; the forward moves to the new pod.
    std::fs::write(project.join("www/index.html"), "<h1>version 2</h1>\n").unwrap();
    let image2 = poll("a rebuilt image deployed", || async {
        let d = deployments.get("hello-web").await.ok()?;
        let image = d.spec.template.spec?.containers[0].image.clone()?;
        (image != image1).then_some(image)
    })
    .await;
    assert!(image2.starts_with("hello-web:tilt-"), "{image2}");
    assert_eq!(docker.builds().last().unwrap().files["www/index.html"], b"<h1>version 2</h1>\n");
    let pod2 = poll("the new pod", || ready_pod(&k8s, &image2)).await;
    assert_ne!(pod1, pod2);
    poll("traffic to the new pod", || async { get(port, "/").ok().filter(|b| b.contains(&format!("pod={pod2}"))) })
        .await;

    // Kill the container while a response streams: the stream ends, the error shows in status while the
    // container is down, and traffic flows again once it is back.
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(stream, "GET /stream HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut buf = [0u8; 256];
    assert!(stream.read(&mut buf).unwrap() > 0, "the stream started");
    cluster.kill_container("default", &pod2, "web").await.unwrap();
    let ended = (0..100).any(|_| matches!(stream.read(&mut buf), Ok(0) | Err(_)));
    assert!(ended, "the stream ended when its container died");
    let forwards: Api<PortForward> = Api::all(tilt.clone());
    let error = poll("the forward's error in status", || async {
        let _ = get(port, "/");
        let pf = forwards.get("hello-web").await.ok()?;
        pf.status?.forward_statuses.into_iter().map(|f| f.error).find(|e| !e.is_empty())
    })
    .await;
    assert!(error.contains(&pod2) || error.contains("8000"), "{error}");
    cluster.start_container("default", &pod2, "web").await.unwrap();
    poll("traffic after the container restarted", || async { get(port, "/").ok() }).await;
    poll("the error to be cleared", || async {
        let pf = forwards.get("hello-web").await.ok()?;
        pf.status?.forward_statuses.iter().all(|f| f.error.is_empty()).then_some(())
    })
    .await;

    // `tilt down` deletes every applied object.
    let out = up.tilt_command(&["down"]).output().unwrap();
    assert!(out.status.success(), "tilt down: {}", String::from_utf8_lossy(&out.stderr));
    assert!(deployments.get_opt("hello-web").await.unwrap().is_none(), "deployment deleted");
    let services: Api<Service> = Api::namespaced(k8s.clone(), "default");
    assert!(services.get_opt("hello-web").await.unwrap().is_none(), "service deleted");
    poll("the pods to be gone", || async {
        let pods: Api<Pod> = Api::namespaced(k8s.clone(), "default");
        pods.list(&ListParams::default()).await.ok()?.items.is_empty().then_some(())
    })
    .await;
    drop(up);
    docker.shutdown().await;
    cluster.shutdown().await;
}

/// `tilt ci` on the example against a fresh fixture cluster and fake Docker engine: exit status and output.
async fn kubernetes_ci(project_edit: impl FnOnce(&Path)) -> (bool, String, FixtureCluster) {
    let Fixtures { home, cluster, docker, project } = Fixtures::start().await;
    let kubeconfig = kubeconfig_path(home.path());
    project_edit(&project);
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tilt"))
        .args(["ci", "--port", "0", "--timeout", "30s", "-f"])
        .arg(project.join("Tiltfile"))
        .env("HOME", home.path())
        .env("KUBECONFIG", &kubeconfig)
        .env("DOCKER_HOST", docker.docker_host())
        .env("APP_PORT", free_port().to_string())
        .env_remove("TILT_CONFIG")
        .output()
        .await
        .unwrap();
    docker.shutdown().await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text, cluster)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tilt_ci_waits_for_the_pod_and_reports_build_failures() {
    let (ok, out, cluster) = kubernetes_ci(|_| {}).await;
    assert!(ok && out.contains("SUCCESS"), "{out}");
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    assert!(deployments.get_opt("hello-web").await.unwrap().is_some(), "ci leaves the deploy running");
    cluster.shutdown().await;

    // A Dockerfile that copies a missing file: the daemon's message names the resource's failure.
    let (ok, out, cluster) =
        kubernetes_ci(|p| std::fs::write(p.join("Dockerfile"), "FROM busybox:1.36\nCOPY missing.txt /\n").unwrap())
            .await;
    assert!(!ok, "{out}");
    assert!(out.contains("FAILED") && out.contains("hello-web") && out.contains("missing.txt"), "{out}");
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    assert!(deployments.get_opt("hello-web").await.unwrap().is_none(), "nothing deployed without an image");
    cluster.shutdown().await;
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Issue 12, defect 7: with the cluster unreachable, KubernetesApply retries with exponential backoff, keeps
/// the error in status and logs it once, instead of retrying in a tight loop (2,242 attempts in 10 s before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_is_retried_with_backoff() {
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig_path(home.path());
    std::fs::create_dir_all(kubeconfig.parent().unwrap()).unwrap();
    // A port that was just free: nobody listens there.
    let port = free_port();
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: gone\nclusters:\n- name: gone\n  cluster:\n    server: \
             https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\nusers:\n- name: gone\n  user:\n    token: t\n\
             contexts:\n- name: gone\n  context:\n    cluster: gone\n    user: gone\n"
        ),
    )
    .unwrap();
    std::fs::write(
        home.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n",
    )
    .unwrap();
    std::fs::write(home.path().join("Tiltfile"), "k8s_yaml('cm.yaml')\n").unwrap();
    let tilt = TiltUp::start_in(home);
    let client = tilt.client().await;
    let applies: Api<tilt_apis::KubernetesApply> = Api::all(client);

    // Every attempt writes a new lastApplyStartTime; a watcher outside tilt counts them.
    let seen = std::sync::Arc::new(std::sync::Mutex::new((
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    )));
    let counting = {
        let (applies, seen) = (applies.clone(), seen.clone());
        tokio::spawn(async move {
            use futures::StreamExt;
            let stream = kube::runtime::watcher(applies, Default::default());
            let mut stream = std::pin::pin!(kube::runtime::WatchStreamExt::applied_objects(stream));
            while let Some(Ok(ka)) = stream.next().await {
                let status = ka.status.unwrap_or_default();
                let mut seen = seen.lock().unwrap();
                if let Some(t) = status.last_apply_start_time {
                    seen.0.insert(t.0);
                }
                if !status.error.is_empty() {
                    seen.1.insert(status.error);
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pid = tilt.child.id();
    let (ticks_at_5s, at_5s) = (cpu_ticks(pid), std::time::Instant::now());
    tokio::time::sleep(Duration::from_secs(15)).await;
    let ticks = cpu_ticks(pid) - ticks_at_5s;
    // /proc counts in USER_HZ, which is 100 on Linux.
    let cpu = ticks as f64 / 100.0 / at_5s.elapsed().as_secs_f64();
    counting.abort();
    let (starts, errors) = seen.lock().unwrap().clone();
    let status = applies.list(&Default::default()).await.unwrap().items.into_iter().next().unwrap().status.unwrap();
    assert!(!status.error.is_empty(), "the error stays in status: {status:?}");
    eprintln!("unreachable cluster: {} attempts in 20 s, CPU {:.2} % between 5 s and 20 s", starts.len(), cpu * 100.0);
    assert!(!starts.is_empty(), "it tried at least once");
    assert!(starts.len() < 20, "{} apply attempts in 20 s: retries must back off", starts.len());
    assert!(cpu < 0.01, "idle retrying costs {:.2} % of a core", cpu * 100.0);
    assert!(errors.len() <= 2, "one error, said once per change: {errors:?}");
    let logs = tilt.tilt_command(&["logs"]).output().unwrap();
    let logs = String::from_utf8_lossy(&logs.stdout);
    let said = logs.matches("Error applying").count();
    assert!((1..=2).contains(&said), "the log says the error once per change, not per attempt ({said} times):\n{logs}");
}
