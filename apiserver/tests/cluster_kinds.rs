//! What every kube-apiserver serves besides custom kinds, and clients such as kopf wait for before they watch
//! anything: the CustomResourceDefinitions of the served kinds and the `default` Namespace, read-only.

use futures::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, CustomResourceExt};
use serde_json::Value;
use tilt_apiserver::{ApiServer, Config, Registry};

async fn start() -> (ApiServer, Client) {
    let server = ApiServer::start(Registry::tilt(), Config::default()).await.unwrap();
    let kubeconfig: Kubeconfig = serde_json::from_value(server.kubeconfig("test")).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap();
    (server, Client::try_from(config).unwrap())
}

async fn get(client: &Client, path: &str) -> (u16, Value) {
    let resp = client.send(http::Request::get(path).body(kube::client::Body::empty()).unwrap()).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// `(name, verbs)` of each resource of a discovery APIResourceList.
fn resources(list: &Value) -> Vec<(String, Vec<String>)> {
    list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let verbs = r["verbs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
            (r["name"].as_str().unwrap().to_string(), verbs)
        })
        .collect()
}

#[tokio::test]
async fn discovery_lists_namespaces_and_crds_with_read_verbs() {
    let (_server, client) = start().await;
    let (_, api) = get(&client, "/api").await;
    assert_eq!(api["versions"], serde_json::json!(["v1"]));
    let (code, core) = get(&client, "/api/v1").await;
    assert_eq!(code, 200);
    let core = resources(&core);
    assert!(core.contains(&("namespaces".into(), vec!["get".into(), "list".into(), "watch".into()])), "{core:?}");
    let (_, groups) = get(&client, "/apis").await;
    let names: Vec<&str> = groups["groups"].as_array().unwrap().iter().map(|g| g["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"tilt.dev") && names.contains(&"apiextensions.k8s.io"), "{names:?}");
    let (_, ext) = get(&client, "/apis/apiextensions.k8s.io/v1").await;
    let ext = resources(&ext);
    assert!(
        ext.contains(&("customresourcedefinitions".into(), vec!["get".into(), "list".into(), "watch".into()])),
        "{ext:?}"
    );
    assert!(ext.contains(&("customresourcedefinitions/status".into(), vec!["get".into()])), "{ext:?}");
}

#[tokio::test]
async fn every_tilt_kind_has_an_established_crd() {
    let (_server, client) = start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let list = crds.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 22, "one CRD per tilt.dev kind");
    let cmd = crds.get("cmds.tilt.dev").await.unwrap();
    assert_eq!(cmd.spec, tilt_apis::Cmd::crd().spec, "the CRD the kind was generated from");
    let status = cmd.status.unwrap();
    let established = status.conditions.unwrap().into_iter().find(|c| c.type_ == "Established").unwrap();
    assert_eq!(established.status, "True");
    assert_eq!(status.accepted_names.unwrap().plural, "cmds");
    assert_eq!(status.stored_versions, Some(vec!["v1alpha1".to_string()]));
    assert!(cmd.metadata.uid.is_some() && cmd.metadata.creation_timestamp.is_some());
    // Watching from the list's version starts quietly; from 0 it replays the CRDs.
    let rv = list.metadata.resource_version.unwrap();
    let params = WatchParams::default().timeout(1);
    let events: Vec<_> = crds.watch(&params, &rv).await.unwrap().try_collect().await.unwrap();
    assert!(events.iter().all(|e| matches!(e, WatchEvent::Bookmark(_))), "{events:?}");
    let added = crds
        .watch(&params, "0")
        .await
        .unwrap()
        .filter(|e| std::future::ready(matches!(e, Ok(WatchEvent::Added(_)))))
        .count()
        .await;
    assert_eq!(added, 22);
}

#[tokio::test]
async fn the_default_namespace_exists_and_neither_kind_takes_writes() {
    let (_server, client) = start().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let default = namespaces.get("default").await.unwrap();
    assert_eq!(default.status.unwrap().phase.as_deref(), Some("Active"));
    let mut other = Namespace::default();
    other.metadata.name = Some("other".into());
    let err = namespaces.create(&PostParams::default(), &other).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 405 && s.reason == "MethodNotAllowed"), "{err:?}");
    let err = namespaces.delete("default", &Default::default()).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 405), "{err:?}");
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let err = crds.create(&PostParams::default(), &tilt_apis::Cmd::crd()).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 405), "{err:?}");
    let err = crds.delete("cmds.tilt.dev", &Default::default()).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 405), "{err:?}");
    assert!(crds.get("cmds.tilt.dev").await.is_ok());
}
