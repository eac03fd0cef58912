//! A kopf operator (the Python operator framework) against `tilt up`: it finds the tilt.dev kinds through
//! discovery, waits for the CRD and Namespace resources every kube-apiserver serves, handles a create with a
//! merge patch and a delete behind its finalizer. The same operator and steps run against the real
//! kube-apiserver serving `tilt crds`.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{GroupChild, TiltUp, python_module};
use crate::crds::install_crds;
use crate::kube_cluster::real_cluster;

const OPERATOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/python/kopf_operator.py");
const FINALIZER: &str = "kopf.zalando.org/KopfFinalizerMarker";

/// Polls `check` every 100 ms for up to `secs` seconds; on timeout fails with `what` and the operator's log.
fn wait_for<T>(what: &str, secs: u64, log: &Path, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; kopf's log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn kopf_operator_handles_create_and_delete() {
    if !python_module("kopf") {
        return;
    }
    let tilt = TiltUp::start();
    let dir = tempfile::tempdir().unwrap();
    // kopf logs in through the current context: give it a kubeconfig whose current context is tilt's.
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, tilt.kubectl_ok(&["config", "view", "--raw", "--minify", "--flatten"])).unwrap();
    run_operator(dir.path(), &kubeconfig, tilt.home.path(), "kopf-demo", |args| tilt.kubectl(args));
}

#[test]
fn kopf_operator_handles_create_and_delete_on_kube_apiserver() {
    let Some(cluster) = real_cluster() else { return };
    if !python_module("kopf") {
        return;
    }
    install_crds(cluster);
    let dir = tempfile::tempdir().unwrap();
    let name = format!("kopf-demo-{}", std::process::id());
    run_operator(dir.path(), &cluster.kubeconfig, dir.path(), &name, |args| cluster.kubectl(args));
}

/// Starts the operator with this kubeconfig (its current context), creates a tilt.dev ConfigMap `name` with
/// kubectl, and checks the create handler's patch, kopf's finalizer and the delete handler.
fn run_operator(dir: &Path, kubeconfig: &Path, home: &Path, name: &str, kubectl: impl Fn(&[&str]) -> Output) {
    let log = dir.join("kopf.log");
    let _operator = GroupChild::spawn(
        Command::new("python3")
            .args(["-m", "kopf", "run", "--standalone", "--all-namespaces", "--verbose", OPERATOR])
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", home)
            .env("KOPF_TEST_OUT", dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("kopf.stderr")).unwrap()),
    );
    // The create must arrive through the watch, not kopf's initial listing.
    wait_for("kopf to watch tilt.dev configmaps", 60, &log, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default()
            + &std::fs::read_to_string(dir.join("kopf.stderr")).unwrap_or_default();
        text.contains("Starting the watch-stream for configmaps.v1alpha1.tilt.dev").then_some(())
    });
    let manifest = dir.join("cm.yaml");
    std::fs::write(
        &manifest,
        format!(
            "apiVersion: tilt.dev/v1alpha1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  greeting: hello\n"
        ),
    )
    .unwrap();
    let created = kubectl(&["create", "-f", manifest.to_str().unwrap()]);
    assert!(created.status.success(), "kubectl create: {}", String::from_utf8_lossy(&created.stderr));

    let get = || -> Option<Value> {
        let out = kubectl(&["get", "configmaps.tilt.dev", name, "-o", "json"]);
        out.status.success().then(|| serde_json::from_slice(&out.stdout).unwrap())
    };
    let handled = wait_for("the create handler's annotation", 30, &log, || {
        get().filter(|cm| cm["metadata"]["annotations"]["kopf-test/created"] == name)
    });
    assert!(
        handled["metadata"]["finalizers"].as_array().is_some_and(|f| f.iter().any(|v| v == FINALIZER)),
        "kopf did not add its finalizer: {handled}"
    );
    assert_eq!(handled["data"]["greeting"], "hello", "the patch lost data: {handled}");

    // kubectl waits until the object is gone, which takes kopf's delete handler removing its finalizer.
    let out = kubectl(&["delete", "configmaps.tilt.dev", name, "--timeout=60s"]);
    assert!(
        out.status.success(),
        "kubectl delete: {}{}\nkopf's log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(std::fs::read_to_string(dir.join(format!("deleted-{name}"))).ok().as_deref(), Some(name));
    let gone = kubectl(&["get", "configmaps.tilt.dev", name]);
    assert!(!gone.status.success() && String::from_utf8_lossy(&gone.stderr).contains("NotFound"));
}
