//! The API server driven over HTTPS by kube-rs, as every controller and client will drive it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt, predicates, reflector, watcher};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tilt_apis::{Cmd, CmdSpec, CmdStatus};
use tilt_apiserver::{ApiServer, Config, Registry};

async fn start(history: usize) -> (ApiServer, Client) {
    let server = ApiServer::start(Registry::tilt(), Config { history, ..Config::default() }).await.unwrap();
    let client = client_for(server.kubeconfig("test")).await;
    (server, client)
}

async fn client_for(kubeconfig: Value) -> Client {
    let kubeconfig: Kubeconfig = serde_json::from_value(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.unwrap();
    Client::try_from(config).unwrap()
}

fn cmd(name: &str, args: &[&str]) -> Cmd {
    Cmd::new(name, CmdSpec { args: args.iter().map(|s| s.to_string()).collect(), ..Default::default() })
}

/// Sends a raw request and returns the status code and the JSON body.
async fn raw(client: &Client, method: &str, path: &str, content_type: &str, body: &str) -> (u16, Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(kube::client::Body::from(body.as_bytes().to_vec()))
        .unwrap();
    let resp = client.send(req).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn crud_and_conflict_on_stale_update() {
    let (_server, client) = start(100).await;
    let api: Api<Cmd> = Api::all(client);
    let created = api.create(&PostParams::default(), &cmd("a", &["ls"])).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    let err = api.create(&PostParams::default(), &cmd("a", &["ls"])).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"), "{err:?}");

    let mut first = api.get("a").await.unwrap();
    let mut second = first.clone();
    first.spec.args = vec!["pwd".into()];
    let updated = api.replace("a", &PostParams::default(), &first).await.unwrap();
    assert_eq!(updated.metadata.generation, Some(2));
    second.spec.args = vec!["stale".into()];
    let err = api.replace("a", &PostParams::default(), &second).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"), "{err:?}");

    // A write to the main resource never changes status; a write to /status changes only status.
    let mut with_status = updated.clone();
    with_status.status = Some(CmdStatus { ready: true, ..Default::default() });
    let after = api.replace("a", &PostParams::default(), &with_status).await.unwrap();
    assert_eq!(after.status, None);
    let status = json!({"status": {"ready": true}, "spec": {"args": ["ignored"]}});
    let after = api.patch_status("a", &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
    assert!(after.status.as_ref().unwrap().ready);
    assert_eq!(after.spec.args, vec!["pwd".to_string()]);
    assert_eq!(after.metadata.generation, Some(2), "a status write does not bump generation");

    // A write that changes nothing keeps the resourceVersion.
    let same =
        api.patch("a", &PatchParams::default(), &Patch::Merge(json!({"spec": {"args": ["pwd"]}}))).await.unwrap();
    assert_eq!(same.resource_version(), after.resource_version());

    api.delete("a", &DeleteParams::default()).await.unwrap();
    let err = api.get("a").await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 404), "{err:?}");
}

#[tokio::test]
async fn watch_replays_history_and_expires_old_versions() {
    let (_server, client) = start(5).await;
    let api: Api<Cmd> = Api::all(client);
    let first = api.create(&PostParams::default(), &cmd("w0", &["x"])).await.unwrap();
    let from = first.resource_version().unwrap();
    for i in 1..4 {
        api.create(&PostParams::default(), &cmd(&format!("w{i}"), &["x"])).await.unwrap();
    }
    api.patch("w1", &PatchParams::default(), &Patch::Merge(json!({"spec": {"args": ["y"]}}))).await.unwrap();
    let events: Vec<_> =
        api.watch(&WatchParams::default().timeout(1), &from).await.unwrap().take(4).try_collect().await.unwrap();
    let seen: Vec<String> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(o) => format!("ADDED {}", o.name_any()),
            WatchEvent::Modified(o) => format!("MODIFIED {}", o.name_any()),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(seen, ["ADDED w1", "ADDED w2", "ADDED w3", "MODIFIED w1"]);

    // Push the version out of the five-event history: the watch gets a 410 Expired ERROR event.
    for i in 4..10 {
        api.create(&PostParams::default(), &cmd(&format!("w{i}"), &["x"])).await.unwrap();
    }
    let mut stream = api.watch(&WatchParams::default().timeout(1), &from).await.unwrap().boxed();
    match stream.next().await {
        Some(Ok(WatchEvent::Error(e))) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn finalizers_delay_delete() {
    let (_server, client) = start(100).await;
    let api: Api<Cmd> = Api::all(client);
    let mut c = cmd("held", &["x"]);
    c.metadata.finalizers = Some(vec!["tilt.dev/test".into()]);
    api.create(&PostParams::default(), &c).await.unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();
    let held = api.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some(), "delete marks the object");
    let rv = held.resource_version().unwrap();
    let mut events = api.watch(&WatchParams::default().timeout(2), &rv).await.unwrap().boxed();
    api.patch("held", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))).await.unwrap();
    match events.next().await {
        Some(Ok(WatchEvent::Deleted(o))) => assert_eq!(o.name_any(), "held"),
        other => panic!("expected DELETED, got {other:?}"),
    }
    assert!(api.get_opt("held").await.unwrap().is_none());
}

/// kube-runtime's `finalizer()` adds the first finalizer with `test /metadata/finalizers == null`, which
/// kube-apiserver passes for an absent field; a `test` for a value that is not there still fails.
#[tokio::test]
async fn json_patch_test_for_null_passes_on_an_absent_field() {
    let (_server, client) = start(100).await;
    let api: Api<Cmd> = Api::all(client);
    api.create(&PostParams::default(), &cmd("fin", &["x"])).await.unwrap();
    let add: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": null},
        {"op": "add", "path": "/metadata/finalizers", "value": ["tilt.dev/x"]}
    ]))
    .unwrap();
    let patched = api.patch("fin", &PatchParams::default(), &Patch::<()>::Json(add)).await.unwrap();
    assert_eq!(patched.metadata.finalizers, Some(vec!["tilt.dev/x".to_string()]));
    let wrong: json_patch::Patch =
        serde_json::from_value(json!([{"op": "test", "path": "/spec/dir", "value": "/nowhere"}])).unwrap();
    let err = api.patch("fin", &PatchParams::default(), &Patch::<()>::Json(wrong)).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 422), "{err:?}");
}

#[tokio::test]
async fn paging_with_continue_over_1200_objects() {
    let (_server, client) = start(100).await;
    let api: Api<Cmd> = Api::all(client.clone());
    let creates = (0..1200).map(|i| {
        let api = api.clone();
        async move { api.create(&PostParams::default(), &cmd(&format!("page-{i:04}"), &["x"])).await.map(|_| ()) }
    });
    futures::stream::iter(creates).buffer_unordered(32).try_collect::<Vec<_>>().await.unwrap();
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    let mut list_rv = None;
    loop {
        let mut lp = ListParams::default().limit(500);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let page = api.list(&lp).await.unwrap();
        pages += 1;
        let rv = page.metadata.resource_version.clone().unwrap();
        assert!(rv.parse::<u64>().is_ok(), "list resourceVersion is a decimal string: {rv}");
        assert_eq!(*list_rv.get_or_insert(rv.clone()), rv, "every page reports the first page's version");
        names.extend(page.items.iter().map(|c| c.name_any()));
        token = page.metadata.continue_;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 1200);
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, names, "pages are in name order without duplicates");
    let (code, body) = raw(&client, "GET", "/apis/tilt.dev/v1alpha1/cmds?limit=10&continue=bogus", "", "").await;
    assert_eq!((code, body["reason"].as_str()), (400, Some("BadRequest")));
}

#[tokio::test]
async fn bad_input_gets_a_status_never_a_500() {
    let (_server, client) = start(100).await;
    let base = "/apis/tilt.dev/v1alpha1/cmds";
    let (code, body) = raw(&client, "POST", base, "application/json", "{not json").await;
    assert_eq!((code, body["kind"].as_str()), (400, Some("Status")));

    let (code, body) =
        raw(&client, "POST", base, "application/json", r#"{"metadata":{"name":"t"},"spec":{"args":"ls"}}"#).await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["reason"], "Invalid");
    assert_eq!(body["details"]["causes"][0]["field"], "spec.args");

    let (code, body) = raw(
        &client,
        "POST",
        &format!("{base}?fieldValidation=Strict"),
        "application/json",
        r#"{"metadata":{"name":"t"},"spec":{"bogus":1}}"#,
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("unknown field \"spec.bogus\""));

    let (code, _) = raw(
        &client,
        "POST",
        base,
        "application/json",
        r#"{"apiVersion":"tilt.dev/v1alpha1","kind":"Cmd","metadata":{"name":"ok"}}"#,
    )
    .await;
    assert_eq!(code, 201);
    let (code, body) =
        raw(&client, "DELETE", &format!("{base}/ok"), "application/json", "{\"preconditions\": 7}").await;
    assert_eq!((code, body["kind"].as_str()), (400, Some("Status")));
    let (code, _) = raw(&client, "DELETE", &format!("{base}/ok"), "application/json", "[[[").await;
    assert_eq!(code, 400);
    let (code, _) = raw(&client, "PATCH", &format!("{base}/ok"), "application/strategic-merge-patch+json", "{}").await;
    assert_eq!(code, 415);
    let (code, _) = raw(
        &client,
        "PATCH",
        &format!("{base}/ok"),
        "application/json-patch+json",
        r#"[{"op":"test","path":"/spec/dir","value":"x"}]"#,
    )
    .await;
    assert_eq!(code, 422);
    let (code, _) =
        raw(&client, "PUT", &format!("{base}/ok"), "application/json", r#"{"metadata":{"name":"ok"}}"#).await;
    assert_eq!(code, 422, "an update without resourceVersion is invalid");

    for selector in ["labelSelector=a%20in%20b", "labelSelector=%3D%3D", "fieldSelector=spec.args%3Dx"] {
        let (code, body) = raw(&client, "GET", &format!("{base}?{selector}"), "", "").await;
        assert_eq!((code, body["reason"].as_str()), (400, Some("BadRequest")), "{selector}");
    }
    let (code, _) = raw(&client, "GET", "/apis/tilt.dev/v1alpha1/nothings", "", "").await;
    assert_eq!(code, 404);
    let big = format!(r#"{{"metadata":{{"name":"big"}},"spec":{{"dir":"{}"}}}}"#, "x".repeat(4 * 1024 * 1024));
    let (code, _) = raw(&client, "POST", base, "application/json", &big).await;
    assert_eq!(code, 413);
}

#[tokio::test]
async fn requests_without_the_token_are_unauthorized() {
    let (server, _client) = start(100).await;
    let mut no_token = server.kubeconfig("test");
    no_token["users"][0]["user"] = json!({});
    let anonymous = client_for(no_token).await;
    let err = Api::<Cmd>::all(anonymous).list(&ListParams::default()).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 401), "{err:?}");
    let mut wrong = server.kubeconfig("test");
    wrong["users"][0]["user"]["token"] = json!("nope");
    let err = Api::<Cmd>::all(client_for(wrong).await).get("x").await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 401), "{err:?}");
}

#[tokio::test]
async fn server_side_apply_tracks_managers_and_conflicts() {
    let (_server, client) = start(100).await;
    let api: Api<Cmd> = Api::all(client);
    let cfg = json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "Cmd", "metadata": {"name": "ssa"}, "spec": {"args": ["a"], "dir": "/d"}});
    let created = api.patch("ssa", &PatchParams::apply("one"), &Patch::Apply(&cfg)).await.unwrap();
    assert_eq!(created.metadata.managed_fields.as_ref().unwrap()[0].manager.as_deref(), Some("one"));
    let other =
        json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "Cmd", "metadata": {"name": "ssa"}, "spec": {"args": ["b"]}});
    let err = api.patch("ssa", &PatchParams::apply("two"), &Patch::Apply(&other)).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.message.contains(".spec.args")), "{err:?}");
    let forced = api.patch("ssa", &PatchParams::apply("two").force(), &Patch::Apply(&other)).await.unwrap();
    assert_eq!(forced.spec.args, ["b"]);
    assert_eq!(forced.spec.dir, "/d");
    // "one" applies again without dir: it drops the field it alone owned.
    let one_again = json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "Cmd", "metadata": {"name": "ssa"}, "spec": {"env": ["A=1"]}});
    let after = api.patch("ssa", &PatchParams::apply("one"), &Patch::Apply(&one_again)).await.unwrap();
    assert_eq!(
        (after.spec.dir.as_str(), after.spec.args.clone(), after.spec.env.clone()),
        ("", vec!["b".to_string()], vec!["A=1".to_string()])
    );
}

#[tokio::test]
async fn dry_run_generate_name_and_table() {
    let (_server, client) = start(100).await;
    let api: Api<Cmd> = Api::all(client.clone());
    api.create(&PostParams { dry_run: true, ..Default::default() }, &cmd("dry", &["x"])).await.unwrap();
    assert!(api.get_opt("dry").await.unwrap().is_none());
    let mut generated = cmd("", &["x"]);
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let made = api.create(&PostParams::default(), &generated).await.unwrap();
    assert!(made.name_any().starts_with("gen-") && made.name_any().len() == 9, "{}", made.name_any());

    let req = http::Request::get("/apis/tilt.dev/v1alpha1/cmds")
        .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json")
        .body(kube::client::Body::from(Vec::new()))
        .unwrap();
    let resp = client.send(req).await.unwrap();
    let table: Value = serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["columnDefinitions"][0]["name"], "Name");
    assert_eq!(table["rows"][0]["cells"][0], made.name_any());
}

/// A kube-runtime Controller reconciles each spec change exactly once — also across the re-watches its
/// watcher makes every second — and writes status through `/status`.
#[tokio::test]
async fn controller_reconciles_each_change_once() {
    let (_server, client) = start(1000).await;
    let api: Api<Cmd> = Api::all(client.clone());
    let count = Arc::new(AtomicUsize::new(0));
    let ctx = Arc::new((client.clone(), count.clone()));
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api.clone(), watcher::Config::default().timeout(1)))
        .default_backoff()
        .applied_objects()
        .predicate_filter(predicates::generation, Default::default());
    let controller = tokio::spawn(
        Controller::for_stream(stream, reader)
            .run(
                |c: Arc<Cmd>, ctx: Arc<(Client, Arc<AtomicUsize>)>| async move {
                    ctx.1.fetch_add(1, Ordering::SeqCst);
                    let api: Api<Cmd> = Api::all(ctx.0.clone());
                    let status = json!({"status": {"waiting": {"reason": format!("seen generation {}", c.metadata.generation.unwrap_or(0))}}});
                    api.patch_status(&c.name_any(), &PatchParams::default(), &Patch::Merge(&status)).await?;
                    Ok::<_, kube::Error>(Action::await_change())
                },
                |_, _, _| Action::requeue(Duration::from_millis(100)),
                ctx,
            )
            .for_each(|_| async {}),
    );
    api.create(&PostParams::default(), &cmd("ctl", &["v0"])).await.unwrap();
    for generation in 1..=4 {
        let want = format!("seen generation {generation}");
        wait_until(|| async {
            api.get("ctl").await.ok().and_then(|c| c.status).and_then(|s| s.waiting).is_some_and(|w| w.reason == want)
        })
        .await;
        if generation < 4 {
            api.patch(
                "ctl",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"args": [format!("v{generation}")]}})),
            )
            .await
            .unwrap();
        }
    }
    // Let the watcher time out and re-watch a few times: nothing is replayed.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(count.load(Ordering::SeqCst), 4);
    controller.abort();
}

async fn wait_until<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("condition not met within 5s");
}

#[tokio::test]
async fn streaming_list_watcher_sees_initial_objects_and_changes() {
    let (_server, client) = start(100).await;
    let api: Api<Cmd> = Api::all(client);
    api.create(&PostParams::default(), &cmd("s1", &["x"])).await.unwrap();
    let mut events = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut seen = Vec::new();
    while let Some(ev) = events.try_next().await.unwrap() {
        match ev {
            watcher::Event::InitApply(o) => seen.push(format!("init {}", o.name_any())),
            watcher::Event::InitDone => {
                seen.push("done".into());
                api.create(&PostParams::default(), &cmd("s2", &["x"])).await.unwrap();
            }
            watcher::Event::Apply(o) => {
                seen.push(format!("apply {}", o.name_any()));
                break;
            }
            _ => {}
        }
    }
    assert_eq!(seen, ["init s1", "done", "apply s2"]);
}

#[tokio::test]
async fn server_side_apply_on_status_removes_fields_the_manager_stopped_sending() {
    let (_server, client) = start(100).await;
    let api: Api<Cmd> = Api::all(client);
    api.create(&PostParams::default(), &cmd("st", &["x"])).await.unwrap();
    let running =
        json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "Cmd", "status": {"running": {"pid": 1}, "ready": true}});
    api.patch_status("st", &PatchParams::apply("ctl").force(), &Patch::Apply(&running)).await.unwrap();
    let done =
        json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "Cmd", "status": {"terminated": {"pid": 1, "exitCode": 0}}});
    let after = api.patch_status("st", &PatchParams::apply("ctl").force(), &Patch::Apply(&done)).await.unwrap();
    let status = after.status.unwrap();
    assert!(status.running.is_none() && !status.ready, "{status:?}");
    assert_eq!(status.terminated.unwrap().exit_code, 0);
    let managers = after.metadata.managed_fields.unwrap();
    assert!(managers.iter().any(|m| m.manager.as_deref() == Some("ctl") && m.subresource.as_deref() == Some("status")));
}

#[tokio::test]
async fn status_writes_never_create_objects() {
    let (_server, client) = start(100).await;
    let api: Api<Cmd> = Api::all(client);
    let status = json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "Cmd", "status": {"ready": true}});
    let err = api.patch_status("ghost", &PatchParams::apply("ctl").force(), &Patch::Apply(&status)).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 404), "{err:?}");
    assert!(api.get_opt("ghost").await.unwrap().is_none());
}
