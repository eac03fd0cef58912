//! What schemathesis found the server accepting against its own OpenAPI document, or answering badly:
//! each must be a clean 4xx `Status` now.

use http_body_util::BodyExt;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};
use tilt_apiserver::{ApiServer, Config, Registry};

async fn start() -> (ApiServer, Client) {
    let server = ApiServer::start(Registry::tilt(), Config::default()).await.unwrap();
    let kubeconfig: Kubeconfig = serde_json::from_value(server.kubeconfig("test")).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap();
    (server, Client::try_from(config).unwrap())
}

/// Sends a request; returns the status code, the number of Warning headers and the JSON body.
async fn send(client: &Client, method: &str, path: &str, content_type: &str, body: &str) -> (u16, usize, Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(kube::client::Body::from(body.as_bytes().to_vec()))
        .unwrap();
    let resp = client.send(req).await.unwrap();
    let code = resp.status().as_u16();
    let warnings = resp.headers().get_all("warning").iter().count();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, warnings, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn json_patch_replacing_the_object_with_a_non_object_is_invalid() {
    let (_server, client) = start().await;
    let base = "/apis/tilt.dev/v1alpha1/cmds";
    let (code, _, _) = send(&client, "POST", base, "application/json", r#"{"metadata":{"name":"a"}}"#).await;
    assert_eq!(code, 201);
    let patch = r#"[{"op":"add","path":"","value":[null,null]}]"#;
    for path in [format!("{base}/a"), format!("{base}/a/status")] {
        let (code, _, body) = send(&client, "PATCH", &path, "application/json-patch+json", patch).await;
        assert_eq!((code, body["reason"].as_str()), (422, Some("Invalid")), "{path}: {body}");
    }
}

#[tokio::test]
async fn server_side_apply_and_generate_name_check_names() {
    let (_server, client) = start().await;
    let base = "/apis/tilt.dev/v1alpha1/configmaps";
    let (code, _, body) =
        send(&client, "PATCH", &format!("{base}/%25x?fieldManager=m"), "application/apply-patch+yaml", "{}").await;
    assert_eq!((code, body["reason"].as_str()), (422, Some("Invalid")), "{body}");
    for prefix in ["a/b", "%", ".", &"x".repeat(249)] {
        let obj = json!({"metadata": {"name": "ok", "generateName": prefix}});
        let (code, _, body) = send(&client, "POST", base, "application/json", &obj.to_string()).await;
        assert_eq!(code, 422, "{prefix}: {body}");
        assert_eq!(body["details"]["causes"][0]["field"], "metadata.generateName");
    }
    let obj = json!({"metadata": {"generateName": "x".repeat(248)}});
    let (code, _, body) = send(&client, "POST", base, "application/json", &obj.to_string()).await;
    assert_eq!(code, 201, "{body}");
}

#[tokio::test]
async fn unknown_field_warnings_stay_within_what_clients_read() {
    let (_server, client) = start().await;
    let mut obj = json!({"metadata": {"name": "many"}});
    for i in 0..500 {
        obj[format!("f{i}")] = json!(i);
    }
    let (code, warnings, _) =
        send(&client, "POST", "/apis/tilt.dev/v1alpha1/configmaps", "application/json", &obj.to_string()).await;
    assert_eq!(code, 201);
    assert!((1..=64).contains(&warnings), "{warnings} Warning headers");
}
