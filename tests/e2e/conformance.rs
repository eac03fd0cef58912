//! Issue 14, differential conformance: `tests/conformance/diff.py` runs the same API scenarios (CRUD, status,
//! patches and server-side apply, watches, pagination, selectors, finalizers, dryRun, generateName, validation,
//! Table, discovery, OpenAPI) against `tilt up`'s apiserver and against the real kube-apiserver serving
//! `tilt crds`, and fails on any difference that is not on its written list of intended ones.

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
