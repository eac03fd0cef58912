//! Owner-reference garbage collection in the server, driven by kube-rs and kubectl: background, foreground
//! (with `blockOwnerDeletion`) and orphan propagation, dangling references, several owners, and the scope rules.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tilt_apis::{Cmd, CmdSpec};
use tilt_apiserver::{ApiServer, Config, Registry, ResourceKind};

/// tilt's kinds (cluster-scoped) plus core Namespaces and ConfigMaps (namespaced).
async fn start() -> (ApiServer, Client) {
    let mut registry = Registry::tilt();
    registry.add(ResourceKind::native::<Namespace>());
    registry.add(ResourceKind::native::<ConfigMap>());
    let server = ApiServer::start(registry, Config::default()).await.unwrap();
    let kubeconfig: Kubeconfig = serde_json::from_value(server.kubeconfig("test")).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap();
    (server, Client::try_from(config).unwrap())
}

fn owner_ref<K: Resource<DynamicType = ()>>(owner: &K, block: Option<bool>) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.name_any(),
        uid: owner.uid().expect("a stored object has a uid"),
        controller: None,
        block_owner_deletion: block,
    }
}

async fn cmd(api: &Api<Cmd>, name: &str, owners: Vec<OwnerReference>, finalizers: &[&str]) -> Cmd {
    let mut c = Cmd::new(name, CmdSpec { args: vec!["true".into()], ..Default::default() });
    c.meta_mut().owner_references = (!owners.is_empty()).then_some(owners);
    c.meta_mut().finalizers = (!finalizers.is_empty()).then(|| finalizers.iter().map(|f| f.to_string()).collect());
    api.create(&PostParams::default(), &c).await.unwrap()
}

/// Waits (up to 10 s) until `name` is gone.
async fn gone<K>(api: &Api<K>, name: &str)
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    for _ in 0..500 {
        if api.get_opt(name).await.unwrap().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{name} was not deleted: {:?}", api.get_opt(name).await.unwrap());
}

/// Gives the collector time to act on what it has seen, for checks that something did NOT happen.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

async fn remove_finalizers(api: &Api<Cmd>, name: &str) {
    api.patch(name, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
}

#[tokio::test]
async fn background_deletes_dependents_after_the_owner() {
    let (server, client) = start().await;
    let api: Api<Cmd> = Api::all(client);
    let owner = cmd(&api, "owner", vec![], &[]).await;
    let child = cmd(&api, "child", vec![owner_ref(&owner, None)], &[]).await;
    cmd(&api, "grandchild", vec![owner_ref(&child, Some(true))], &[]).await;
    cmd(&api, "unrelated", vec![], &[]).await;
    settle().await;
    assert!(api.get_opt("child").await.unwrap().is_some(), "a dependent of a live owner stays");

    // Background is the default: the owner goes at once, the collector follows the chain.
    api.delete("owner", &DeleteParams::default()).await.unwrap();
    assert!(api.get_opt("owner").await.unwrap().is_none());
    gone(&api, "child").await;
    gone(&api, "grandchild").await;
    assert!(api.get_opt("unrelated").await.unwrap().is_some());
    server.shutdown().await;
}

#[tokio::test]
async fn foreground_keeps_the_owner_until_blocking_dependents_are_gone() {
    let (server, client) = start().await;
    let api: Api<Cmd> = Api::all(client);
    let owner = cmd(&api, "owner", vec![], &[]).await;
    // A blocking dependent that a finalizer holds, and one that does not block.
    cmd(&api, "blocker", vec![owner_ref(&owner, Some(true))], &["test.tilt.dev/hold"]).await;
    cmd(&api, "free", vec![owner_ref(&owner, Some(false))], &[]).await;

    let deleted = api.delete("owner", &DeleteParams::foreground()).await.unwrap();
    let marked = deleted.left().expect("a foreground delete leaves the owner in place");
    assert!(marked.metadata.deletion_timestamp.is_some());
    assert_eq!(marked.finalizers(), ["foregroundDeletion".to_string()]);
    gone(&api, "free").await;
    // The blocking dependent is being deleted, but its finalizer holds it, so the owner waits.
    let mut blocker = api.get("blocker").await.unwrap();
    for _ in 0..100 {
        if blocker.metadata.deletion_timestamp.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        blocker = api.get("blocker").await.unwrap();
    }
    assert!(blocker.metadata.deletion_timestamp.is_some(), "the collector deletes the blocking dependent");
    settle().await;
    let waiting = api.get("owner").await.expect("the owner waits for its blocking dependent");
    assert_eq!(waiting.finalizers(), ["foregroundDeletion".to_string()]);

    // A plain delete of an owner deleting in the foreground changes nothing.
    assert!(api.delete("owner", &DeleteParams::default()).await.unwrap().is_left());
    assert!(api.get("owner").await.unwrap().finalizers().contains(&"foregroundDeletion".to_string()));

    remove_finalizers(&api, "blocker").await;
    gone(&api, "blocker").await;
    gone(&api, "owner").await;
    server.shutdown().await;
}

#[tokio::test]
async fn foreground_with_only_non_blocking_dependents_deletes_them_all() {
    let (server, client) = start().await;
    let api: Api<Cmd> = Api::all(client);
    let owner = cmd(&api, "owner", vec![], &["test.tilt.dev/hold"]).await;
    let child = cmd(&api, "child", vec![owner_ref(&owner, Some(true))], &[]).await;
    cmd(&api, "grandchild", vec![owner_ref(&child, Some(true))], &["test.tilt.dev/hold"]).await;
    api.delete("owner", &DeleteParams::foreground()).await.unwrap();
    // The child has a dependent of its own, so it is deleted in the foreground too and waits for it.
    let mut child_state = api.get("child").await.unwrap();
    for _ in 0..100 {
        if child_state.metadata.deletion_timestamp.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        child_state = api.get("child").await.unwrap();
    }
    assert_eq!(child_state.finalizers(), ["foregroundDeletion".to_string()]);
    remove_finalizers(&api, "grandchild").await;
    gone(&api, "grandchild").await;
    gone(&api, "child").await;
    // The owner lost foregroundDeletion, but its own finalizer still holds it.
    let mut owner_state = api.get("owner").await.unwrap();
    for _ in 0..100 {
        if owner_state.finalizers() == ["test.tilt.dev/hold".to_string()] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        owner_state = api.get("owner").await.unwrap();
    }
    assert_eq!(owner_state.finalizers(), ["test.tilt.dev/hold".to_string()]);
    remove_finalizers(&api, "owner").await;
    gone(&api, "owner").await;
    server.shutdown().await;
}

#[tokio::test]
async fn orphan_keeps_dependents_without_the_reference() {
    let (server, client) = start().await;
    let api: Api<Cmd> = Api::all(client.clone());
    let owner = cmd(&api, "owner", vec![], &[]).await;
    let other = cmd(&api, "other", vec![], &[]).await;
    cmd(&api, "child", vec![owner_ref(&owner, Some(true)), owner_ref(&other, None)], &[]).await;
    api.delete("owner", &DeleteParams::orphan()).await.unwrap();
    gone(&api, "owner").await;
    settle().await;
    let child = api.get("child").await.expect("an orphaned dependent stays");
    assert_eq!(child.owner_references().iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["other"]);

    // The deprecated `orphanDependents: true` does the same.
    let owner = cmd(&api, "owner2", vec![], &[]).await;
    cmd(&api, "child2", vec![owner_ref(&owner, None)], &[]).await;
    let req = http::Request::delete("/apis/tilt.dev/v1alpha1/cmds/owner2")
        .header("content-type", "application/json")
        .body(
            serde_json::to_vec(&json!({"kind": "DeleteOptions", "apiVersion": "v1", "orphanDependents": true}))
                .unwrap(),
        )
        .unwrap();
    let marked: Cmd = client.request(req).await.unwrap();
    assert_eq!(marked.finalizers(), ["orphan".to_string()]);
    gone(&api, "owner2").await;
    settle().await;
    assert!(api.get("child2").await.unwrap().owner_references().is_empty());

    // Both at once is refused.
    let req = http::Request::delete("/apis/tilt.dev/v1alpha1/cmds/child2")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&json!({"orphanDependents": true, "propagationPolicy": "Foreground"})).unwrap())
        .unwrap();
    let err = client.request::<Cmd>(req).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 422), "{err:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn dangling_references_are_collected() {
    let (server, client) = start().await;
    let api: Api<Cmd> = Api::all(client);
    let owner = cmd(&api, "owner", vec![], &[]).await;
    // An owner that never existed, and one whose name now belongs to another object.
    let ghost = OwnerReference { name: "ghost".into(), uid: "no-such-uid".into(), ..owner_ref(&owner, None) };
    let stale = OwnerReference { uid: "an-earlier-owner".into(), ..owner_ref(&owner, None) };
    cmd(&api, "orphan-of-ghost", vec![ghost], &[]).await;
    cmd(&api, "orphan-of-stale", vec![stale], &[]).await;
    gone(&api, "orphan-of-ghost").await;
    gone(&api, "orphan-of-stale").await;
    assert!(api.get_opt("owner").await.unwrap().is_some());
    server.shutdown().await;
}

#[tokio::test]
async fn a_dependent_stays_while_one_owner_lives() {
    let (server, client) = start().await;
    let api: Api<Cmd> = Api::all(client);
    let a = cmd(&api, "a", vec![], &[]).await;
    let b = cmd(&api, "b", vec![], &[]).await;
    cmd(&api, "shared", vec![owner_ref(&a, None), owner_ref(&b, None)], &[]).await;
    api.delete("a", &DeleteParams::default()).await.unwrap();
    // The reference to the deleted owner goes; the dependent stays.
    let mut shared = api.get("shared").await.unwrap();
    for _ in 0..100 {
        if shared.owner_references().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        shared = api.get("shared").await.unwrap();
    }
    assert_eq!(shared.owner_references().iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["b"]);
    api.delete("b", &DeleteParams::default()).await.unwrap();
    gone(&api, "shared").await;
    server.shutdown().await;
}

#[tokio::test]
async fn scope_rules_and_unknown_kinds() {
    let (server, client) = start().await;
    let cmds: Api<Cmd> = Api::all(client.clone());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in ["a", "b"] {
        let mut n = Namespace::default();
        n.metadata.name = Some(ns.into());
        namespaces.create(&PostParams::default(), &n).await.unwrap();
    }
    let config_maps = |ns: &str| Api::<ConfigMap>::namespaced(client.clone(), ns);
    let config_map = |name: &str, owners: Vec<OwnerReference>| {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cm.metadata.owner_references = Some(owners);
        cm
    };
    let owner = cmd(&cmds, "owner", vec![], &[]).await;
    let pp = PostParams::default();
    // A namespaced dependent of a cluster-scoped owner.
    config_maps("a").create(&pp, &config_map("of-cmd", vec![owner_ref(&owner, None)])).await.unwrap();
    // A namespaced owner, and dependents in its namespace and in another one (where it is absent).
    let cm_owner = config_maps("a").create(&pp, &config_map("owner", vec![])).await.unwrap();
    config_maps("a").create(&pp, &config_map("same-ns", vec![owner_ref(&cm_owner, None)])).await.unwrap();
    config_maps("b").create(&pp, &config_map("other-ns", vec![owner_ref(&cm_owner, None)])).await.unwrap();
    // A cluster-scoped dependent cannot have a namespaced owner, and an unserved kind cannot be resolved:
    // neither is ever collected.
    cmd(&cmds, "of-config-map", vec![owner_ref(&cm_owner, None)], &[]).await;
    let unknown = OwnerReference {
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
        name: "w".into(),
        uid: "w-uid".into(),
        ..Default::default()
    };
    cmd(&cmds, "of-widget", vec![unknown], &[]).await;

    gone(&config_maps("b"), "other-ns").await;
    settle().await;
    assert!(config_maps("a").get_opt("same-ns").await.unwrap().is_some());
    assert!(config_maps("a").get_opt("of-cmd").await.unwrap().is_some());
    cmds.delete("owner", &DeleteParams::default()).await.unwrap();
    gone(&config_maps("a"), "of-cmd").await;
    config_maps("a").delete("owner", &DeleteParams::default()).await.unwrap();
    gone(&config_maps("a"), "same-ns").await;
    settle().await;
    assert!(cmds.get_opt("of-config-map").await.unwrap().is_some());
    assert!(cmds.get_opt("of-widget").await.unwrap().is_some());
    server.shutdown().await;
}

/// Runs kubectl with a private HOME and kubeconfig; panics with its output when it fails.
fn kubectl(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("kubectl")
        .args(args)
        .env("HOME", dir)
        .env("KUBECONFIG", dir.join("config"))
        .output()
        .expect("running kubectl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "kubectl {args:?}: {:?}\nstderr: {stderr}", out.status);
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn kubectl_delete_cascade_foreground_and_orphan() {
    let (server, client) = start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config"), server.kubeconfig("test").to_string()).unwrap();
    let api: Api<Cmd> = Api::all(client);
    let fg = cmd(&api, "fg", vec![], &[]).await;
    cmd(&api, "fg-child", vec![owner_ref(&fg, Some(true))], &[]).await;
    let orphaning = cmd(&api, "orph", vec![], &[]).await;
    cmd(&api, "orph-child", vec![owner_ref(&orphaning, Some(true))], &[]).await;

    let path = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        // kubectl waits until the object is gone; with foreground that is after its dependent.
        let fg = kubectl(&path, &["delete", "cmd", "fg", "--cascade=foreground", "--timeout=20s"]);
        let orphan = kubectl(&path, &["delete", "cmd", "orph", "--cascade=orphan", "--timeout=20s"]);
        (fg, orphan)
    })
    .await
    .unwrap();
    assert!(out.0.contains("deleted"), "{}", out.0);
    assert!(out.1.contains("deleted"), "{}", out.1);
    assert!(api.get_opt("fg").await.unwrap().is_none());
    assert!(api.get_opt("fg-child").await.unwrap().is_none(), "foreground: the dependent went first");
    assert!(api.get_opt("orph").await.unwrap().is_none());
    let child = api.get("orph-child").await.expect("orphan: the dependent stays");
    assert!(child.owner_references().is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn many_dependents_are_collected_in_one_pass() {
    use futures::StreamExt;
    let (server, client) = start().await;
    let api: Api<Cmd> = Api::all(client);
    let owner = cmd(&api, "owner", vec![], &[]).await;
    let reference = owner_ref(&owner, Some(true));
    const N: usize = 500;
    futures::stream::iter(0..N)
        .for_each_concurrent(16, |i| {
            let (api, reference) = (api.clone(), reference.clone());
            async move {
                cmd(&api, &format!("dep-{i}"), vec![reference], &[]).await;
            }
        })
        .await;
    let started = std::time::Instant::now();
    // Foreground: the owner goes only after all of them.
    api.delete("owner", &DeleteParams::foreground()).await.unwrap();
    gone(&api, "owner").await;
    let elapsed = started.elapsed();
    let left = api.list(&Default::default()).await.unwrap().items.len();
    assert_eq!(left, 0, "every dependent went before the owner");
    eprintln!("foreground deletion of an owner with {N} dependents: {elapsed:?}");
    server.shutdown().await;
}

/// Sends a raw request; returns the status code and the JSON body.
async fn raw(client: &Client, method: &str, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    use http_body_util::BodyExt;
    let body = if body.is_null() { Vec::new() } else { serde_json::to_vec(&body).unwrap() };
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/merge-patch+json")
        .body(kube::client::Body::from(body))
        .unwrap();
    let resp = client.send(req).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or_default())
}

#[tokio::test]
async fn delete_options_in_the_query_and_finalizer_rules() {
    let (server, client) = start().await;
    let api: Api<Cmd> = Api::all(client.clone());
    let owner = cmd(&api, "owner", vec![], &[]).await;
    cmd(&api, "child", vec![owner_ref(&owner, None)], &[]).await;
    // As curl would send it: the policy in the query, no body.
    let path = "/apis/tilt.dev/v1alpha1/cmds";
    let (code, body) = raw(&client, "DELETE", &format!("{path}/owner?propagationPolicy=Orphan"), json!(null)).await;
    assert_eq!((code, &body["metadata"]["finalizers"]), (200, &json!(["orphan"])), "{body}");
    gone(&api, "owner").await;
    settle().await;
    assert!(api.get("child").await.unwrap().owner_references().is_empty());
    let (code, _) = raw(&client, "DELETE", &format!("{path}/child?propagationPolicy=Sideways"), json!(null)).await;
    assert_eq!(code, 400);

    // An object cannot ask for both orphaning and foreground deletion.
    let both = json!({"metadata": {"finalizers": ["orphan", "foregroundDeletion"]}});
    let (code, body) = raw(&client, "PATCH", &format!("{path}/child"), both).await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["details"]["causes"][0]["field"], "metadata.finalizers");

    // An object left in place answers 202 when the client asked not to orphan (as kube-apiserver does).
    cmd(&api, "held", vec![], &["test.tilt.dev/hold"]).await;
    let (code, body) = raw(&client, "DELETE", &format!("{path}/held"), json!({"orphanDependents": false})).await;
    assert_eq!(code, 202, "{body}");
    assert!(body["metadata"]["deletionTimestamp"].is_string());
    remove_finalizers(&api, "held").await;
    gone(&api, "held").await;
    server.shutdown().await;
}
