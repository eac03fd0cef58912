//! The Kubernetes JavaScript client (@kubernetes/client-node, tests/js) against `tilt up`, and the same test
//! against the real kube-apiserver serving `tilt crds`.

use std::path::Path;
use std::process::Command;

use crate::common::TiltUp;
use crate::crds::install_crds;
use crate::kube_cluster::real_cluster;

const JS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/js");

/// Whether tests/js has its packages (`npm ci --prefix tests/js`); a must under `CI=true`.
fn installed() -> bool {
    let found = Path::new(JS).join("node_modules/@kubernetes/client-node").exists();
    if !found {
        assert!(std::env::var("CI").is_err(), "tests/js has no node_modules: run npm ci --prefix tests/js");
        eprintln!("skipping: tests/js has no node_modules (npm ci --prefix tests/js)");
    }
    found
}

fn run_node_test(kubeconfig: &Path, context: &str, home: &Path) {
    let out = Command::new("node")
        .args(["--test", "client.test.mjs"])
        .current_dir(JS)
        .env("KUBECONFIG", kubeconfig)
        .env("KUBE_CONTEXT", context)
        .env("HOME", home)
        .output()
        .expect("running node");
    assert!(
        out.status.success(),
        "the JS client test against {context} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn js_client_node_against_tilt() {
    if !installed() {
        return;
    }
    let tilt = TiltUp::start();
    run_node_test(&tilt.kubeconfig(), "tilt", tilt.home.path());
}

#[test]
fn js_client_node_against_kube_apiserver() {
    let Some(cluster) = real_cluster() else { return };
    if !installed() {
        return;
    }
    install_crds(cluster);
    let home = tempfile::tempdir().unwrap();
    run_node_test(&cluster.kubeconfig, "real", home.path());
}
