//! A kopf operator (the Python operator framework) against `tilt up`: it finds the tilt.dev kinds through
//! discovery, waits for the CRD and Namespace resources every kube-apiserver serves, handles a create with a
//! merge patch and a delete behind its finalizer.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{GroupChild, TiltUp, python_module};

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
    let log = dir.path().join("kopf.log");
    let _operator = GroupChild::spawn(
        Command::new("python3")
            .args(["-m", "kopf", "run", "--standalone", "--all-namespaces", "--verbose", OPERATOR])
            .env("KUBECONFIG", &kubeconfig)
            .env("HOME", tilt.home.path())
            .env("KOPF_TEST_OUT", dir.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("kopf.stderr")).unwrap()),
    );
    // The create must arrive through the watch, not kopf's initial listing.
    wait_for("kopf to watch tilt.dev configmaps", 60, &log, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default()
            + &std::fs::read_to_string(dir.path().join("kopf.stderr")).unwrap_or_default();
        text.contains("Starting the watch-stream for configmaps.v1alpha1.tilt.dev").then_some(())
    });
    let manifest = dir.path().join("cm.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: tilt.dev/v1alpha1\nkind: ConfigMap\nmetadata:\n  name: kopf-demo\ndata:\n  greeting: hello\n",
    )
    .unwrap();
    tilt.kubectl_ok(&["create", "-f", manifest.to_str().unwrap()]);

    let get = || -> Option<Value> {
        let out = tilt.kubectl(&["get", "configmaps.tilt.dev", "kopf-demo", "-o", "json"]);
        out.status.success().then(|| serde_json::from_slice(&out.stdout).unwrap())
    };
    let handled = wait_for("the create handler's annotation", 30, &log, || {
        get().filter(|cm| cm["metadata"]["annotations"]["kopf-test/created"] == "kopf-demo")
    });
    assert!(
        handled["metadata"]["finalizers"].as_array().is_some_and(|f| f.iter().any(|v| v == FINALIZER)),
        "kopf did not add its finalizer: {handled}"
    );
    assert_eq!(handled["data"]["greeting"], "hello", "the patch lost data: {handled}");

    // kubectl waits until the object is gone, which takes kopf's delete handler removing its finalizer.
    let out = tilt.kubectl(&["delete", "configmaps.tilt.dev", "kopf-demo", "--timeout=60s"]);
    assert!(
        out.status.success(),
        "kubectl delete: {}{}\nkopf's log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(std::fs::read_to_string(dir.path().join("deleted-kopf-demo")).ok().as_deref(), Some("kopf-demo"));
    let gone = tilt.kubectl(&["get", "configmaps.tilt.dev", "kopf-demo"]);
    assert!(!gone.status.success() && String::from_utf8_lossy(&gone.stderr).contains("NotFound"));
}
