//! The Python `kubernetes` client (DynamicClient and watch.Watch) against `tilt up`, and the same script against
//! the real kube-apiserver serving `tilt crds`.

use std::path::Path;
use std::process::Command;

use crate::common::{TiltUp, python_module};
use crate::crds::install_crds;
use crate::kube_cluster::real_cluster;

/// Runs tests/python/client_test.py with this kubeconfig and context; asserts it passed.
fn run_client_test(kubeconfig: &Path, context: &str, home: &Path) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/python/client_test.py");
    let out = Command::new("python3")
        .arg(script)
        .env("KUBECONFIG", kubeconfig)
        .env("KUBE_CONTEXT", context)
        .env("HOME", home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python client test against {context} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("python client: ok"));
}

#[test]
fn python_dynamic_client_and_watch() {
    if !python_module("kubernetes") {
        return;
    }
    let tilt = TiltUp::start();
    run_client_test(&tilt.kubeconfig(), "tilt", tilt.home.path());
}

#[test]
fn python_dynamic_client_and_watch_against_kube_apiserver() {
    let Some(cluster) = real_cluster() else { return };
    if !python_module("kubernetes") {
        return;
    }
    install_crds(cluster);
    let home = tempfile::tempdir().unwrap();
    run_client_test(&cluster.kubeconfig, "real", home.path());
}
