//! The API server serving built-in, namespaced Kubernetes kinds (core/v1 and apps/v1), as a fixture cluster
//! does: namespaced storage and routing, discovery, kubectl, and subresource endpoints.

use std::process::Output;
use std::sync::Arc;

use futures::{SinkExt, StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Service};
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{Discovery, Scope};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tilt_apiserver::{
    ApiServer, Body, Config, Endpoint, Registry, ResourceKind, Subresource, bytes_response, subresource_object,
};
use tokio_tungstenite::tungstenite::Message;

fn registry() -> Registry {
    let mut r = Registry::default();
    r.add(ResourceKind::native::<Namespace>());
    r.add(ResourceKind::native::<Pod>());
    r.add(ResourceKind::native::<Service>());
    r.add(ResourceKind::native::<ConfigMap>());
    r.add(ResourceKind::native::<Deployment>());
    r.add(ResourceKind::native::<ReplicaSet>());
    r
}

/// `pods/log`: a line naming the pod, so the test sees the path was parsed.
fn log_endpoint() -> Endpoint {
    Arc::new(|parts: http::request::Parts| {
        Box::pin(async move {
            let (ns, name) = subresource_object(parts.uri.path()).expect("a subresource path");
            let body = format!("log of {ns}/{name}\nquery {}\n", parts.uri.query().unwrap_or_default());
            bytes_response(http::StatusCode::OK, "text/plain", body.into())
        })
    })
}

/// `pods/portforward`: a websocket that echoes every message, to prove upgrades reach the endpoint.
fn echo_endpoint() -> Endpoint {
    Arc::new(|mut parts: http::request::Parts| {
        Box::pin(async move {
            let key = parts.headers.get(http::header::SEC_WEBSOCKET_KEY).cloned();
            let (Some(on_upgrade), Some(key)) = (parts.extensions.remove::<hyper::upgrade::OnUpgrade>(), key) else {
                return bytes_response(http::StatusCode::BAD_REQUEST, "text/plain", "not an upgrade".into());
            };
            tokio::spawn(async move {
                let Ok(upgraded) = on_upgrade.await else { return };
                let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                    hyper_util::rt::TokioIo::new(upgraded),
                    tokio_tungstenite::tungstenite::protocol::Role::Server,
                    None,
                )
                .await;
                while let Some(Ok(msg)) = ws.next().await {
                    if msg.is_close() || ws.send(msg).await.is_err() {
                        break;
                    }
                }
            });
            let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
            let mut resp = http::Response::new(Body::default());
            *resp.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
            let h = resp.headers_mut();
            h.insert(http::header::UPGRADE, http::HeaderValue::from_static("websocket"));
            h.insert(http::header::CONNECTION, http::HeaderValue::from_static("Upgrade"));
            h.insert(http::header::SEC_WEBSOCKET_ACCEPT, accept.parse().unwrap());
            h.insert(http::header::SEC_WEBSOCKET_PROTOCOL, http::HeaderValue::from_static("v4.channel.k8s.io"));
            resp
        })
    })
}

async fn start() -> (ApiServer, Client) {
    let subresources = vec![
        Subresource { group: "".into(), plural: "pods".into(), subresource: "log".into(), endpoint: log_endpoint() },
        Subresource {
            group: "".into(),
            plural: "pods".into(),
            subresource: "portforward".into(),
            endpoint: echo_endpoint(),
        },
    ];
    let server =
        ApiServer::start_with_subresources(registry(), Config::default(), Vec::new(), subresources).await.unwrap();
    let kubeconfig: Kubeconfig = serde_json::from_value(server.kubeconfig("test")).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap();
    (server, Client::try_from(config).unwrap())
}

async fn namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    let created = Api::<Namespace>::all(client.clone()).create(&PostParams::default(), &ns).await.unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
}

fn pod(name: &str, image: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"containers": [{"name": "main", "image": image}]},
    }))
    .unwrap()
}

async fn raw(client: &Client, method: &str, path: &str, body: &str) -> (u16, Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(kube::client::Body::from(body.as_bytes().to_vec()))
        .unwrap();
    let resp = client.send(req).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn api_error(err: kube::Error) -> (u16, String) {
    match err {
        kube::Error::Api(s) => (s.code, s.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn same_name_in_two_namespaces_is_two_objects() {
    let (_server, client) = start().await;
    namespace(&client, "a").await;
    namespace(&client, "b").await;
    let in_a: Api<Pod> = Api::namespaced(client.clone(), "a");
    let in_b: Api<Pod> = Api::namespaced(client.clone(), "b");
    let all: Api<Pod> = Api::all(client.clone());

    let a = in_a.create(&PostParams::default(), &pod("web", "nginx:1")).await.unwrap();
    let b = in_b.create(&PostParams::default(), &pod("web", "nginx:2")).await.unwrap();
    assert_eq!((a.namespace().as_deref(), b.namespace().as_deref()), (Some("a"), Some("b")));
    assert_ne!(a.uid(), b.uid());
    assert_eq!(in_b.get("web").await.unwrap().spec.unwrap().containers[0].image.as_deref(), Some("nginx:2"));
    let err = in_a.create(&PostParams::default(), &pod("web", "x")).await.unwrap_err();
    assert_eq!(api_error(err), (409, r#"pods "web" already exists"#.to_string()));

    // Lists: per namespace, across namespaces, by field selector, and paged.
    assert_eq!(in_a.list(&ListParams::default()).await.unwrap().items.len(), 1);
    let everything = all.list(&ListParams::default()).await.unwrap();
    assert_eq!(everything.iter().map(|p| p.namespace().unwrap()).collect::<Vec<_>>(), vec!["a", "b"]);
    let only_b = all.list(&ListParams::default().fields("metadata.namespace=b")).await.unwrap();
    assert_eq!(only_b.items.len(), 1);
    assert_eq!(only_b.items[0].namespace().as_deref(), Some("b"));
    let named = in_b.list(&ListParams::default().fields("metadata.name=web")).await.unwrap();
    assert_eq!(named.items.len(), 1);
    let first = all.list(&ListParams::default().limit(1)).await.unwrap();
    assert_eq!(first.items[0].namespace().as_deref(), Some("a"));
    let token = first.metadata.continue_.clone().expect("a continue token");
    let second = all.list(&ListParams::default().limit(1).continue_token(&token)).await.unwrap();
    assert_eq!(second.items[0].namespace().as_deref(), Some("b"));
    assert!(second.metadata.continue_.is_none());

    // Writes in one namespace leave the other alone.
    let patched = in_a
        .patch("web", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}})))
        .await
        .unwrap();
    assert_eq!(patched.labels().get("x").map(String::as_str), Some("1"));
    assert!(!in_b.get("web").await.unwrap().labels().contains_key("x"));
    let apply = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "b"},
        "spec": {"containers": [{"name": "main", "image": "nginx:3"}]}});
    let applied = in_b.patch("web", &PatchParams::apply("test").force(), &Patch::Apply(&apply)).await.unwrap();
    assert_eq!(applied.spec.as_ref().unwrap().containers[0].image.as_deref(), Some("nginx:3"));
    assert!(applied.managed_fields().iter().any(|m| m.manager.as_deref() == Some("test")));
    assert_eq!(in_a.get("web").await.unwrap().spec.unwrap().containers[0].image.as_deref(), Some("nginx:1"));
    // SSA creates in the namespace of the path.
    let created = in_b
        .patch(
            "api",
            &PatchParams::apply("test"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "api"}, "spec": {"containers": [{"name": "main", "image": "api"}]}})),
        )
        .await
        .unwrap();
    assert_eq!(created.namespace().as_deref(), Some("b"));

    // A body naming another namespace is refused, as kube-apiserver does.
    let mut elsewhere = pod("other", "x");
    elsewhere.metadata.namespace = Some("b".into());
    let (code, message) = api_error(in_a.create(&PostParams::default(), &elsewhere).await.unwrap_err());
    assert_eq!(code, 400);
    assert!(message.contains("does not match the namespace"), "{message}");
    // Wrong types name the field.
    let bad = json!({"metadata": {"name": "bad"}, "spec": {"containers": "nope"}});
    let (code, body) = raw(&client, "POST", "/api/v1/namespaces/a/pods", &bad.to_string()).await;
    assert_eq!((code, body["details"]["causes"][0]["field"].as_str()), (422, Some("spec.containers")), "{body}");

    // generateName, finalizers and deletecollection work per namespace.
    let mut generated = pod("", "x");
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let generated = in_a.create(&PostParams::default(), &generated).await.unwrap();
    assert!(generated.name_any().starts_with("gen-") && generated.namespace().as_deref() == Some("a"));
    in_a.patch("web", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": ["test/hold"]}})))
        .await
        .unwrap();
    in_a.delete("web", &DeleteParams::default()).await.unwrap();
    assert!(in_a.get("web").await.unwrap().metadata.deletion_timestamp.is_some());
    in_a.patch("web", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    assert_eq!(api_error(in_a.get("web").await.unwrap_err()).0, 404);
    assert!(in_b.get("web").await.is_ok());
    in_b.delete_collection(&DeleteParams::default(), &ListParams::default().labels("app=web")).await.unwrap();
    assert_eq!(
        in_b.list(&ListParams::default()).await.unwrap().items.iter().map(|p| p.name_any()).collect::<Vec<_>>(),
        vec!["api"]
    );
    assert_eq!(in_a.list(&ListParams::default()).await.unwrap().items.len(), 1, "a's generated pod stays");

    // Deleting a namespace deletes what is in it.
    Api::<Namespace>::all(client.clone()).delete("b", &DeleteParams::default()).await.unwrap();
    assert!(in_b.list(&ListParams::default()).await.unwrap().items.is_empty());
    assert_eq!(in_a.list(&ListParams::default()).await.unwrap().items.len(), 1);
}

#[tokio::test]
async fn watches_see_only_their_namespace_and_replay_from_a_version() {
    let (_server, client) = start().await;
    namespace(&client, "a").await;
    namespace(&client, "b").await;
    let in_a: Api<ConfigMap> = Api::namespaced(client.clone(), "a");
    let in_b: Api<ConfigMap> = Api::namespaced(client.clone(), "b");
    let cm = |name: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": name}})).unwrap()
    };
    let rv = in_a.list(&ListParams::default()).await.unwrap().metadata.resource_version.unwrap();

    let mut watch_a = in_a.watch(&WatchParams::default().timeout(10), &rv).await.unwrap().boxed();
    let mut watch_all =
        Api::<ConfigMap>::all(client.clone()).watch(&WatchParams::default().timeout(10), &rv).await.unwrap().boxed();
    in_b.create(&PostParams::default(), &cm("x")).await.unwrap();
    in_a.create(&PostParams::default(), &cm("x")).await.unwrap();
    in_b.delete("x", &DeleteParams::default()).await.unwrap();
    in_a.patch("x", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "2"}}))).await.unwrap();

    let describe = |ev: WatchEvent<ConfigMap>| match ev {
        WatchEvent::Added(o) => format!("ADDED {}/{}", o.namespace().unwrap(), o.name_any()),
        WatchEvent::Modified(o) => format!("MODIFIED {}/{}", o.namespace().unwrap(), o.name_any()),
        WatchEvent::Deleted(o) => format!("DELETED {}/{}", o.namespace().unwrap(), o.name_any()),
        other => format!("{other:?}"),
    };
    let mut seen_a = Vec::new();
    for _ in 0..2 {
        seen_a.push(describe(watch_a.try_next().await.unwrap().unwrap()));
    }
    assert_eq!(seen_a, vec!["ADDED a/x", "MODIFIED a/x"]);
    let mut seen_all = Vec::new();
    for _ in 0..4 {
        seen_all.push(describe(watch_all.try_next().await.unwrap().unwrap()));
    }
    assert_eq!(seen_all, vec!["ADDED b/x", "ADDED a/x", "DELETED b/x", "MODIFIED a/x"]);

    // A watch from the list's version replays exactly what followed, still per namespace.
    let replay: Vec<String> = in_a
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .unwrap()
        .map(|ev| describe(ev.unwrap()))
        .collect()
        .await;
    assert_eq!(replay, vec!["ADDED a/x", "MODIFIED a/x"]);
}

#[tokio::test]
async fn wrong_scope_and_missing_namespaces_are_404() {
    let (_server, client) = start().await;
    namespace(&client, "a").await;
    Api::<Pod>::namespaced(client.clone(), "a").create(&PostParams::default(), &pod("web", "x")).await.unwrap();
    for path in [
        "/api/v1/pods/web",                       // a namespaced object outside its namespace
        "/api/v1/namespaces/a/namespaces",        // a cluster kind under a namespace
        "/api/v1/namespaces/a/pods/web/exec",     // an unregistered subresource
        "/apis/apps/v1/namespaces/a/pods",        // a kind of another group
        "/api/v1/namespaces/a/pods/web/status/x", // too deep
    ] {
        let (code, body) = raw(&client, "GET", path, "").await;
        assert_eq!(code, 404, "{path}: {body}");
    }
    let (code, _) = raw(&client, "GET", "/api/v1/namespaces/a/pods/web", "").await;
    assert_eq!(code, 200);
    let (code, ns) = raw(&client, "GET", "/api/v1/namespaces/a/status", "").await;
    assert_eq!((code, ns["status"]["phase"].as_str()), (200, Some("Active")), "the namespace's status subresource");
    let (code, _) = raw(&client, "POST", "/api/v1/pods", &json!({"metadata": {"name": "x"}}).to_string()).await;
    assert_eq!(code, 405, "creates need a namespace");

    let err = Api::<Pod>::namespaced(client.clone(), "nope")
        .create(&PostParams::default(), &pod("web", "x"))
        .await
        .unwrap_err();
    assert_eq!(api_error(err), (404, r#"namespaces "nope" not found"#.to_string()));
    let err = Api::<Deployment>::namespaced(client.clone(), "nope")
        .patch(
            "d",
            &PatchParams::apply("test"),
            &Patch::Apply(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}})),
        )
        .await
        .unwrap_err();
    assert_eq!(api_error(err).0, 404);
    assert_eq!(
        api_error(Api::<Pod>::namespaced(client, "a").get("nope").await.unwrap_err()),
        (404, r#"pods "nope" not found"#.to_string())
    );
}

#[tokio::test]
async fn discovery_finds_core_and_apps_kinds_with_their_scope() {
    let (_server, client) = start().await;
    for discovery in [
        Discovery::new(client.clone()).run().await.unwrap(),
        Discovery::new(client.clone()).run_aggregated().await.unwrap(),
    ] {
        let pods =
            discovery.groups().flat_map(|g| g.recommended_resources()).find(|(r, _)| r.plural == "pods").expect("pods");
        assert_eq!((pods.0.group.as_str(), pods.0.version.as_str(), pods.0.kind.as_str()), ("", "v1", "Pod"));
        assert_eq!(pods.1.scope, Scope::Namespaced);
        assert!(
            pods.1.subresources.iter().any(|(r, _)| r.plural == "pods/status" || r.plural == "status"),
            "{:?}",
            pods.1.subresources
        );
        let ns =
            discovery.groups().flat_map(|g| g.recommended_resources()).find(|(r, _)| r.plural == "namespaces").unwrap();
        assert_eq!(ns.1.scope, Scope::Cluster);
        let apps = discovery.get("apps").expect("the apps group");
        let (deploy, caps) = apps.recommended_kind("Deployment").expect("deployments");
        assert_eq!(
            (deploy.plural.as_str(), deploy.api_version.as_str(), caps.scope.clone()),
            ("deployments", "apps/v1", Scope::Namespaced)
        );
    }
    let (_, api) = raw(&client, "GET", "/api", "").await;
    assert_eq!(api["versions"], json!(["v1"]));
    let (_, apis) = raw(&client, "GET", "/apis", "").await;
    assert_eq!(
        apis["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect::<Vec<_>>(),
        vec!["apps"]
    );
    let (_, v3) = raw(&client, "GET", "/openapi/v3", "").await;
    assert!(v3["paths"]["api/v1"]["serverRelativeURL"].is_string() && v3["paths"]["apis/apps/v1"].is_object(), "{v3}");
    let (code, core) = raw(&client, "GET", "/openapi/v3/api/v1", "").await;
    assert_eq!(code, 200);
    assert!(core["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"].is_object());
    assert!(core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"].is_object());
    let (_, v2) = raw(&client, "GET", "/openapi/v2", "").await;
    let spec = v2["definitions"]["io.k8s.api.core.v1.Pod"]["properties"]["spec"].to_string();
    assert!(spec.contains("#/definitions/io.k8s.api.core.v1.PodSpec"), "{spec}");
}

#[tokio::test]
async fn subresource_endpoints_serve_logs_and_upgrades() {
    let (server, client) = start().await;
    namespace(&client, "a").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "a");
    pods.create(&PostParams::default(), &pod("web", "x")).await.unwrap();
    let logs = pods.logs("web", &LogParams { tail_lines: Some(5), ..LogParams::default() }).await.unwrap();
    assert!(logs.starts_with("log of a/web\n") && logs.contains("tailLines=5"), "{logs}");

    // A websocket through kube's `connect` (HTTP/1.1 Upgrade over TLS) reaches the endpoint and echoes.
    let req = http::Request::get("/api/v1/namespaces/a/pods/web/portforward?ports=80").body(Vec::new()).unwrap();
    let mut ws = client.connect(req).await.unwrap().into_stream();
    ws.send(Message::binary(b"ping".to_vec())).await.unwrap();
    let echoed = ws.next().await.unwrap().unwrap();
    assert_eq!(echoed.into_data().as_ref(), b"ping");
    ws.close(None).await.unwrap();

    // Requests without the token never reach an endpoint.
    let mut kubeconfig = server.kubeconfig("test");
    kubeconfig["users"][0]["user"]["token"] = json!("wrong");
    let kubeconfig: Kubeconfig = serde_json::from_value(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap();
    let stranger: Api<Pod> = Api::namespaced(Client::try_from(config).unwrap(), "a");
    assert_eq!(api_error(stranger.logs("web", &LogParams::default()).await.unwrap_err()).0, 401);

    assert_eq!(subresource_object("/api/v1/namespaces/a/pods/web/log"), Some(("a".into(), "web".into())));
    assert_eq!(subresource_object("/apis/tilt.dev/v1alpha1/cmds/c/logs"), Some((String::new(), "c".into())));
    assert_eq!(subresource_object("/api/v1/namespaces/a/pods/web"), None);
    assert_eq!(subresource_object("/version"), None);
}

/// Runs kubectl against `kubeconfig` with a private HOME (no shared discovery cache).
fn kubectl(dir: &std::path::Path, args: &[&str]) -> Output {
    std::process::Command::new("kubectl")
        .args(args)
        .env("HOME", dir)
        .env("KUBECONFIG", dir.join("config"))
        .output()
        .expect("running kubectl")
}

fn kubectl_ok(dir: &std::path::Path, args: &[&str]) -> String {
    let out = kubectl(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "kubectl {args:?}: {:?}\nstdout: {}\nstderr: {stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
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
        image: nginx:1.27
        ports:
        - containerPort: 80
"#;

#[tokio::test]
async fn kubectl_works_across_namespaces() {
    let (server, client) = start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config"), server.kubeconfig("test").to_string()).unwrap();
    for ns in ["default", "team"] {
        namespace(&client, ns).await;
        Api::<Pod>::namespaced(client.clone(), ns).create(&PostParams::default(), &pod("web", "nginx")).await.unwrap();
    }
    let path = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let dir = path.as_path();
        let all = kubectl_ok(dir, &["get", "pods", "-A"]);
        let lines: Vec<Vec<&str>> = all.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines[0][..2], ["NAMESPACE", "NAME"], "{all}");
        assert_eq!(lines[1][..2], ["default", "web"], "{all}");
        assert_eq!(lines[2][..2], ["team", "web"], "{all}");
        let default = kubectl_ok(dir, &["get", "pods", "-n", "default"]);
        assert!(default.starts_with("NAME") && default.lines().count() == 2 && default.contains("web"), "{default}");
        assert_eq!(
            kubectl_ok(dir, &["get", "po", "web", "-n", "team", "-o", "jsonpath={.metadata.namespace}"]),
            "team"
        );

        let file = dir.join("deploy.yaml");
        std::fs::write(&file, DEPLOYMENT).unwrap();
        let applied = kubectl_ok(dir, &["apply", "--server-side", "-f", file.to_str().unwrap(), "-n", "team"]);
        assert!(applied.contains("deployment.apps/web serverside-applied"), "{applied}");
        let yaml = kubectl_ok(dir, &["get", "deploy", "-n", "team", "-o", "yaml"]);
        assert!(
            yaml.contains("namespace: team") && yaml.contains("replicas: 2") && yaml.contains("image: nginx:1.27"),
            "{yaml}"
        );
        let names = kubectl_ok(dir, &["get", "deploy", "-A", "-o", "name"]);
        assert_eq!(names.trim(), "deployment.apps/web");
        let resources = kubectl_ok(dir, &["api-resources", "--namespaced=true", "-o", "name"]);
        assert!(
            resources.lines().any(|l| l == "pods") && resources.lines().any(|l| l == "deployments.apps"),
            "{resources}"
        );
        let explain = kubectl_ok(dir, &["explain", "pods.spec.containers.image"]);
        assert!(explain.contains("KIND:       Pod") && explain.contains("image"), "{explain}");
        kubectl_ok(dir, &["delete", "pod", "web", "-n", "default"]);
        let out = kubectl(dir, &["get", "pod", "web", "-n", "default"]);
        assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains(r#"pods "web" not found"#));
    })
    .await
    .unwrap();
}
