//! The PodLogStream controller against a real tilt API server and the fixture cluster: container logs reach
//! the LogStore, a restarted container's new lines arrive without duplicates, container filters, a missing
//! pod in status, and a deleted object stops streaming.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use serde_json::json;
use tilt_apis::RESOURCE_ANNOTATION;
use tilt_apis::{PodLogStream, PodLogStreamSpec, PodLogStreamStatus};
use tilt_apiserver::{ApiServer, Config, Registry};
use tilt_controllers::cluster::ClusterConnection;
use tilt_controllers::logs::LogStore;
use tilt_controllers::podlogstream;
use tilt_fixtures::cluster::FixtureCluster;
use tilt_fixtures::eventually;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const TIMEOUT: Duration = tilt_fixtures::EVENTUALLY;

struct Env {
    server: ApiServer,
    cluster: FixtureCluster,
    client: Client,
    logs: Arc<LogStore>,
    shutdown: CancellationToken,
    controller: tokio::task::JoinHandle<()>,
}

impl Env {
    async fn start() -> Env {
        let server = ApiServer::start(Registry::tilt(), Config::default()).await.unwrap();
        let client = tilt_fixtures::tilt_client(&server).await;
        let cluster = FixtureCluster::start().await.unwrap();
        let logs = Arc::new(LogStore::default());
        let shutdown = CancellationToken::new();
        let connection = Arc::new(ClusterConnection::with_client(cluster.client()));
        let controller = tokio::spawn(podlogstream::run(
            tilt_controllers::runtime::Informers::new(client.clone(), shutdown.clone()),
            shutdown.clone(),
            connection,
            logs.clone(),
        ));
        Env { server, cluster, client, logs, shutdown, controller }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.controller).await.expect("controller stops").unwrap();
        self.cluster.shutdown().await;
        self.server.shutdown().await;
    }

    fn streams(&self) -> Api<PodLogStream> {
        Api::all(self.client.clone())
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.cluster.client(), "default")
    }

    /// Creates a pod whose containers each serve HTTP on port 8000 and log `LOG_LINE` after their start line.
    async fn create_pod(&self, name: &str, containers: &[&str]) {
        let containers: Vec<_> = containers
            .iter()
            .map(|c| {
                json!({"name": c, "image": format!("{c}:1"), "ports": [{"containerPort": 8000}],
                       "env": [{"name": "LOG_LINE", "value": format!("hello from {c}")}]})
            })
            .collect();
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": containers},
        }))
        .unwrap();
        self.pods().create(&PostParams::default(), &pod).await.unwrap();
        let pods = self.pods();
        eventually(&format!("pod {name} ready"), || {
            let pods = pods.clone();
            async move {
                let pod = pods.get(name).await.ok()?;
                let ready = pod.status?.conditions?.iter().any(|c| c.type_ == "Ready" && c.status == "True");
                ready.then_some(())
            }
        })
        .await;
    }

    async fn create_stream(&self, name: &str, resource: &str, spec: PodLogStreamSpec) {
        let mut pls = PodLogStream::new(name, spec);
        pls.metadata = ObjectMeta {
            name: Some(name.into()),
            annotations: Some([(RESOURCE_ANNOTATION.to_string(), resource.to_string())].into()),
            ..Default::default()
        };
        self.streams().create(&PostParams::default(), &pls).await.unwrap();
    }

    async fn status(&self, name: &str, what: &str, check: impl Fn(&PodLogStreamStatus) -> bool) -> PodLogStreamStatus {
        let api = self.streams();
        let found = tokio::time::timeout(TIMEOUT, async {
            loop {
                if let Some(s) = api.get(name).await.unwrap().status
                    && check(&s)
                {
                    return s;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        match found {
            Ok(s) => s,
            Err(_) => panic!("{name}: timed out waiting for {what}; status {:?}", api.get(name).await.unwrap().status),
        }
    }

    /// The texts of `resource`'s log lines.
    fn texts(&self, resource: &str) -> Vec<String> {
        self.logs.lines(&[resource.to_string()], 0).into_iter().map(|l| l.text).collect()
    }

    /// Waits until `resource`'s log has exactly `want` (in order).
    async fn log_is(&self, resource: &str, want: &[String]) {
        let found = tokio::time::timeout(TIMEOUT, async {
            while self.texts(resource) != want {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(found.is_ok(), "log of {resource}: want {want:#?}, have {:#?}", self.texts(resource));
    }

    /// Sends `GET path` to a container port of a pod through the cluster's port-forward, which the container
    /// logs as a line.
    async fn request(&self, pod: &str, path: &str) -> String {
        let mut pf = self.pods().portforward(pod, &[8000]).await.unwrap();
        let mut stream = pf.take_stream(8000).unwrap();
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: fixture\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        drop(stream);
        let _ = pf.join().await;
        response
    }
}

fn spec(pod: &str) -> PodLogStreamSpec {
    PodLogStreamSpec { pod: pod.into(), namespace: "default".into(), ..Default::default() }
}

fn started(container: &str, pod: &str) -> String {
    format!("container {container} started in pod {pod} (image {container}:1)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_reach_the_store_and_a_restart_brings_new_lines_without_duplicates() {
    let env = Env::start().await;
    env.create_pod("web-1", &["web"]).await;
    env.create_stream("web-1-logs", "web", spec("web-1")).await;
    let mut want = vec![started("web", "web-1"), "hello from web".to_string()];
    env.log_is("web", &want).await;
    let sources: Vec<String> = env.logs.lines(&["web".into()], 0).into_iter().map(|l| l.source).collect();
    assert_eq!(sources, ["pod/web-1/web", "pod/web-1/web"]);
    env.status("web-1-logs", "web streaming", |s| {
        s.error.is_empty() && s.container_statuses.len() == 1 && s.container_statuses[0].active
    })
    .await;
    assert!(env.request("web-1", "/before").await.contains("pod=web-1"));
    want.push("GET /before".into());
    env.log_is("web", &want).await;

    env.cluster.kill_container("default", "web-1", "web").await.unwrap();
    // While the container is down, reconnects replay its last second of log: none of it may come twice.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(env.texts("web"), want);
    env.cluster.start_container("default", "web-1", "web").await.unwrap();
    want.extend([started("web", "web-1"), "hello from web".to_string()]);
    env.log_is("web", &want).await;
    assert!(env.request("web-1", "/after").await.contains("pod=web-1"));
    want.push("GET /after".into());
    env.log_is("web", &want).await;
    env.status("web-1-logs", "web streaming again", |s| {
        s.container_statuses.first().is_some_and(|c| c.active && c.error.is_empty())
    })
    .await;
    // And nothing more arrives later (no late replay).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.texts("web"), want);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_and_ignored_containers_are_honoured() {
    let env = Env::start().await;
    env.create_pod("duo", &["app", "sidecar", "proxy"]).await;
    let spec = PodLogStreamSpec { ignore_containers: vec!["proxy".into()], ..spec("duo") };
    env.create_stream("duo-logs", "duo", spec).await;
    let only = PodLogStreamSpec { only_containers: vec!["sidecar".into()], ..self::spec("duo") };
    env.create_stream("duo-sidecar", "sidecar-only", only).await;
    env.log_is("sidecar-only", &[started("sidecar", "duo"), "hello from sidecar".into()]).await;
    let status = env
        .status("duo-logs", "two containers streaming", |s| {
            s.container_statuses.len() == 2 && s.container_statuses.iter().all(|c| c.active)
        })
        .await;
    let names: Vec<&str> = status.container_statuses.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["app", "sidecar"]);
    // Each container's lines in order, the two interleaved in any order, and nothing from the proxy.
    let wait = eventually("both containers' lines", || async {
        let lines = env.logs.lines(&["duo".into()], 0);
        (lines.len() == 4).then_some(lines)
    })
    .await;
    for c in ["app", "sidecar"] {
        let of: Vec<&str> =
            wait.iter().filter(|l| l.source == format!("pod/duo/{c}")).map(|l| l.text.as_str()).collect();
        assert_eq!(of, [started(c, "duo"), format!("hello from {c}")]);
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_pod_is_reported_until_it_exists_and_a_deleted_stream_stops() {
    let env = Env::start().await;
    env.create_stream("late-logs", "late", spec("late")).await;
    env.status("late-logs", "a pod-not-found error", |s| s.error == "pod default/late not found").await;
    env.create_pod("late", &["web"]).await;
    env.log_is("late", &[started("web", "late"), "hello from web".into()]).await;
    env.status("late-logs", "the error cleared", |s| {
        s.error.is_empty() && s.container_statuses.iter().any(|c| c.active)
    })
    .await;

    env.streams().delete("late-logs", &DeleteParams::default()).await.unwrap();
    eventually("the stream object gone", || async {
        env.streams().get_opt("late-logs").await.unwrap().is_none().then_some(())
    })
    .await;
    // Give the controller time to see the delete, then make the container log a line: it must not arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(env.request("late", "/unseen").await.contains("pod=late"));
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(env.texts("late"), [started("web", "late"), "hello from web".to_string()]);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_deleted_mid_stream_is_reported() {
    let env = Env::start().await;
    env.create_pod("gone", &["web"]).await;
    env.create_stream("gone-logs", "gone", spec("gone")).await;
    env.log_is("gone", &[started("web", "gone"), "hello from web".into()]).await;
    env.pods().delete("gone", &DeleteParams { grace_period_seconds: Some(0), ..Default::default() }).await.unwrap();
    let status = env.status("gone-logs", "a pod-not-found error", |s| !s.error.is_empty()).await;
    assert_eq!(status.error, "pod default/gone not found");
    assert!(status.container_statuses.iter().all(|c| !c.active), "{status:?}");
    env.stop().await;
}
