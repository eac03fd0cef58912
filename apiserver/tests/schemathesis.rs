//! schemathesis (property-based API testing from the OpenAPI document) over every kind the server serves
//! (the tilt.dev kinds, their CRDs, the Namespace): no request may get a 5xx, every response must match the
//! status codes, media types and schemas the OpenAPI v3 documents declare, and every operation must be
//! testable from them (path parameters declared, `$ref`s resolving).
//!
//! It runs against the bare server, not `tilt up`: objects schemathesis creates would make tilt's
//! controllers run commands, builds and network fetches with generated arguments.

use std::process::Command;

use tilt_apiserver::{ApiServer, Config, Registry};

const RUNNER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/python/schemathesis_run.py");

/// Whether `python3` can import `module`; a missing one fails under `CI=true` (CI installs
/// tests/requirements.txt) and skips the test elsewhere.
fn python_module(module: &str) -> bool {
    let found = Command::new("python3").args(["-c", &format!("import {module}")]).status().is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "the Python package {module} is missing (pip install -r tests/requirements.txt)"
        );
        eprintln!("skipping: the Python package {module} is not installed");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors_or_schema_mismatches() {
    if !python_module("schemathesis") {
        return;
    }
    let server = ApiServer::start(Registry::tilt(), Config::default()).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let kubeconfig = work.path().join("kubeconfig");
    // JSON is YAML: the runner reads it as a kubeconfig.
    std::fs::write(&kubeconfig, server.kubeconfig("tilt").to_string()).unwrap();
    let (runner_kubeconfig, dir) = (kubeconfig.clone(), work.path().to_path_buf());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(RUNNER)
            .arg(&dir)
            // Examples per operation: a few minutes over ~220 operations on two cores.
            .arg("3")
            .env("KUBECONFIG", &runner_kubeconfig)
            .env("HOME", &dir)
            .current_dir(&dir)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("schemathesis: ok"),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.shutdown().await;
}
