//! Issue 14, differential conformance: `tests/conformance/diff.py` runs the same API scenarios (CRUD, status,
//! patches and server-side apply, watches, pagination, selectors, finalizers, dryRun, generateName, validation,
//! Table, discovery, OpenAPI) against `tilt up`'s apiserver and against the real kube-apiserver serving
//! `tilt crds`, and fails on any difference that is not on its written list of intended ones. And kube-rs, with
//! the typed kinds of `tilt-apis`, against both.

use std::process::Command;

use crate::common::{TiltUp, python_module};
use crate::crds::install_crds;
use crate::kube_cluster::real_cluster;

#[test]
fn embedded_apiserver_answers_as_kube_apiserver_does() {
    let Some(cluster) = real_cluster() else { return };
    if !python_module("kubernetes") {
        return;
    }
    install_crds(cluster);
    let tilt = TiltUp::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/conformance/diff.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(tilt.kubeconfig())
        .arg("tilt")
        .arg(&cluster.kubeconfig)
        .arg("real")
        .env("HOME", tilt.home.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{report}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "differences between the embedded apiserver and kube-apiserver:\n{report}");
    assert!(report.contains(" scenarios, 0 unexpected differences"), "{report}");
}

/// kube-rs with the typed tilt.dev kinds of `tilt-apis`: server-side apply, get, list by label, a status patch, and
/// a streaming-list watcher (`sendInitialEvents`) that sees the initial object, the change and the delete.
async fn kube_rs_round_trip(client: kube::Client, server: &str) {
    use futures::StreamExt;
    use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
    use kube::runtime::watcher;
    use tilt_apis::{ImageMap, ImageMapSpec, ImageMapStatus};

    let api: Api<ImageMap> = Api::all(client);
    let id = std::process::id().to_string();
    let name = format!("kube-rs-{id}");
    let mut desired = ImageMap::new(&name, ImageMapSpec { selector: "busybox".into(), ..Default::default() });
    desired.metadata.labels = Some([("from".to_string(), id.clone())].into());
    let applied = api.patch(&name, &PatchParams::apply("kube-rs-test"), &Patch::Apply(&desired)).await.unwrap();
    assert_eq!(applied.spec.selector, "busybox", "{server}");
    let managers: Vec<_> =
        applied.metadata.managed_fields.iter().flatten().map(|m| (m.manager.clone(), m.operation.clone())).collect();
    assert_eq!(managers, [(Some("kube-rs-test".into()), Some("Apply".into()))], "{server}");
    assert_eq!(api.get(&name).await.unwrap().metadata.uid, applied.metadata.uid, "{server}");
    let listed = api.list(&ListParams::default().labels(&format!("from={id}"))).await.unwrap();
    assert_eq!(listed.items.len(), 1, "{server}");

    let config = watcher::Config::default().labels(&format!("from={id}")).streaming_lists();
    let mut events = watcher(api.clone(), config).boxed();
    let mut next = async || {
        tokio::time::timeout(std::time::Duration::from_secs(10), events.next()).await.unwrap().unwrap().unwrap()
    };
    assert!(matches!(next().await, watcher::Event::Init), "{server}");
    assert!(matches!(next().await, watcher::Event::InitApply(o) if o.metadata.name.as_deref() == Some(&*name)));
    assert!(matches!(next().await, watcher::Event::InitDone), "{server}");

    let status = ImageMapStatus { image: "busybox:tilt-0123456789abcdef".into(), ..Default::default() };
    let patched = api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(serde_json::json!({"status": status})))
        .await
        .unwrap();
    assert_eq!(patched.status.as_ref().map(|s| s.image.as_str()), Some(status.image.as_str()), "{server}");
    match next().await {
        watcher::Event::Apply(o) => assert_eq!(o.status.unwrap().image, status.image, "{server}"),
        other => panic!("{server}: expected the status change, got {other:?}"),
    }
    api.delete(&name, &DeleteParams::default()).await.unwrap();
    assert!(matches!(next().await, watcher::Event::Delete(o) if o.metadata.name.as_deref() == Some(&*name)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_typed_client_against_both_servers() {
    let Some(cluster) = real_cluster() else { return };
    install_crds(cluster);
    let tilt = TiltUp::start();
    kube_rs_round_trip(tilt.client().await, "tilt").await;

    let kubeconfig = kube::config::Kubeconfig::read_from(&cluster.kubeconfig).unwrap();
    let options = kube::config::KubeConfigOptions { context: Some("real".into()), ..Default::default() };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.unwrap();
    kube_rs_round_trip(kube::Client::try_from(config).unwrap(), "kube-apiserver").await;
}
