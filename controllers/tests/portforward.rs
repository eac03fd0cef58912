//! The PortForward controller against a real tilt API server and the fixture cluster: HTTP through a
//! forward, a new pod behind the same listener, a container killed mid-stream (error in status while it is
//! down, cleared once traffic flows again), a busy local port, a missing pod, and delete closing the port.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tilt_apis::{Forward, ForwardStatus, PortForward, PortForwardSpec};
use tilt_apiserver::{ApiServer, Config, Registry};
use tilt_controllers::cluster::ClusterConnection;
use tilt_controllers::portforward;
use tilt_fixtures::cluster::FixtureCluster;
use tilt_fixtures::eventually;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const TIMEOUT: Duration = tilt_fixtures::EVENTUALLY;

struct Env {
    server: ApiServer,
    cluster: FixtureCluster,
    client: Client,
    shutdown: CancellationToken,
    controller: tokio::task::JoinHandle<()>,
}

impl Env {
    async fn start() -> Env {
        let server = ApiServer::start(Registry::tilt(), Config::default()).await.unwrap();
        let client = tilt_fixtures::tilt_client(&server).await;
        let cluster = FixtureCluster::start().await.unwrap();
        let shutdown = CancellationToken::new();
        let connection = Arc::new(ClusterConnection::with_client(cluster.client()));
        let controller = tokio::spawn(portforward::run(
            tilt_controllers::runtime::Informers::new(client.clone(), shutdown.clone()),
            shutdown.clone(),
            connection,
        ));
        Env { server, cluster, client, shutdown, controller }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.controller).await.expect("controller stops").unwrap();
        self.cluster.shutdown().await;
        self.server.shutdown().await;
    }

    fn forwards(&self) -> Api<PortForward> {
        Api::all(self.client.clone())
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.cluster.client(), "default")
    }

    /// Creates a pod with one container `web` serving HTTP on port 8000, and waits until it is ready.
    async fn create_pod(&self, name: &str) {
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "web", "image": "web:1", "ports": [{"containerPort": 8000}]}]},
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

    async fn create_forward(&self, name: &str, pod: &str, local_port: i32) {
        let spec = PortForwardSpec {
            pod_name: pod.into(),
            namespace: "default".into(),
            forwards: vec![Forward {
                local_port,
                container_port: 8000,
                host: "127.0.0.1".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        self.forwards().create(&PostParams::default(), &PortForward::new(name, spec)).await.unwrap();
    }

    /// Waits until the first forward's status satisfies `check`, and returns it.
    async fn status(&self, name: &str, what: &str, check: impl Fn(&ForwardStatus) -> bool) -> ForwardStatus {
        let api = self.forwards();
        let found = tokio::time::timeout(TIMEOUT, async {
            loop {
                let pf = api.get(name).await.unwrap();
                if let Some(s) = pf.status.and_then(|s| s.forward_statuses.into_iter().next())
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

    /// Waits until the forward listens, and returns its local port.
    async fn listening(&self, name: &str) -> u16 {
        let s = self
            .status(name, "listening", |s| !s.addresses.is_empty() && s.local_port != 0 && s.error.is_empty())
            .await;
        assert_eq!(s.addresses, ["127.0.0.1"]);
        assert!(s.started_at.is_some());
        u16::try_from(s.local_port).unwrap()
    }
}

/// `GET path` through the local port; the response body, or `None` if the connection closed without a
/// response.
async fn get(port: u16, path: &str) -> Option<String> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: fixture\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, tcp.read_to_end(&mut response)).await.expect("the response ends");
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    Some(body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_http_and_sends_new_connections_to_a_new_pod() {
    let env = Env::start().await;
    env.create_pod("web-1").await;
    env.create_pod("web-2").await;
    env.create_forward("web", "web-1", 0).await;
    let port = env.listening("web").await;
    let before = env.status("web", "listening", |_| true).await;
    assert_eq!(get(port, "/").await.unwrap(), "pod=web-1 container=web image=web:1\n");

    // A connection opened before the pod changes keeps talking to the old pod.
    let mut old = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    old.get_mut().write_all(b"GET /stream HTTP/1.1\r\nHost: fixture\r\n\r\n").await.unwrap();
    let mut line = String::new();
    old.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");

    let patch = json!({"spec": {"podName": "web-2"}});
    env.forwards().patch("web", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    eventually("traffic reaching web-2", || async { get(port, "/").await.filter(|b| b.contains("pod=web-2")) }).await;
    assert_eq!(get(port, "/").await.unwrap(), "pod=web-2 container=web image=web:1\n");
    // Same listener: not rebound.
    let after = env.status("web", "listening", |_| true).await;
    assert_eq!(
        (after.local_port, &after.addresses, &after.started_at),
        (before.local_port, &before.addresses, &before.started_at)
    );
    // The old connection still streams from web-1.
    let mut got = String::new();
    for _ in 0..3 {
        got.clear();
        old.read_line(&mut got).await.unwrap();
    }
    assert!(!got.is_empty());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_container_ends_the_connection_reports_the_error_and_recovers() {
    let env = Env::start().await;
    env.create_pod("web-1").await;
    env.create_forward("web", "web-1", 0).await;
    let port = env.listening("web").await;

    let mut stream = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    stream.get_mut().write_all(b"GET /stream HTTP/1.1\r\nHost: fixture\r\n\r\n").await.unwrap();
    let mut seen = String::new();
    while !seen.contains("line 2") {
        let mut line = String::new();
        assert!(stream.read_line(&mut line).await.unwrap() > 0);
        seen.push_str(&line);
    }
    env.cluster.kill_container("default", "web-1", "web").await.unwrap();
    // The connection ends (EOF or reset) instead of hanging.
    let ended = tokio::time::timeout(TIMEOUT, async {
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
    })
    .await;
    assert!(ended.is_ok(), "the connection did not end after the container was killed");
    let reset = env.status("web", "the reset reported", |s| !s.error.is_empty()).await;
    assert!(
        reset.error.starts_with(&format!("forwarding 127.0.0.1:{port} to pod default/web-1 port 8000: ")),
        "{}",
        reset.error
    );
    assert!(reset.error.to_lowercase().contains("reset"), "{}", reset.error);

    // While the container is down, a connection fails, and the status says why.
    assert_eq!(get(port, "/").await, None);
    let down = env.status("web", "a connection error", |s| s.error.contains("connection refused")).await;
    assert!(down.error.contains("pod default/web-1 port 8000"), "{}", down.error);
    assert!(down.error.contains(&format!("127.0.0.1:{port}")), "{}", down.error);
    assert_eq!(down.addresses, ["127.0.0.1"], "the listener stays up");

    env.cluster.start_container("default", "web-1", "web").await.unwrap();
    assert_eq!(get(port, "/").await.unwrap(), "pod=web-1 container=web image=web:1\n");
    env.status("web", "the error cleared", |s| s.error.is_empty()).await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_local_port_is_reported_and_bound_once_free() {
    let env = Env::start().await;
    env.create_pod("web-1").await;
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    env.create_forward("web", "web-1", i32::from(port)).await;
    let s = env.status("web", "a bind error", |s| !s.error.is_empty()).await;
    assert_eq!(s.error, format!("cannot listen on 127.0.0.1:{port}: address already in use"));
    assert!(s.addresses.is_empty() && s.started_at.is_none(), "{s:?}");
    assert_eq!((s.local_port, s.container_port), (i32::from(port), 8000));

    drop(busy);
    assert_eq!(env.listening("web").await, port);
    assert_eq!(get(port, "/").await.unwrap(), "pod=web-1 container=web image=web:1\n");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_pod_is_reported_and_delete_closes_the_port() {
    let env = Env::start().await;
    env.create_forward("ghost", "ghost", 0).await;
    let port = env.listening("ghost").await;
    assert_eq!(get(port, "/").await, None);
    let s = env.status("ghost", "a pod-not-found error", |s| !s.error.is_empty()).await;
    assert!(
        s.error.starts_with(&format!("forwarding 127.0.0.1:{port} to pod default/ghost port 8000: pod not found")),
        "{}",
        s.error
    );

    env.create_pod("ghost").await;
    assert_eq!(get(port, "/").await.unwrap(), "pod=ghost container=web image=web:1\n");
    env.status("ghost", "the error cleared", |s| s.error.is_empty()).await;

    env.forwards().delete("ghost", &DeleteParams::default()).await.unwrap();
    eventually("the port closed", || async { TcpStream::connect(("127.0.0.1", port)).await.is_err().then_some(()) })
        .await;
    env.stop().await;
}
