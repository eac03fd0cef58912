//! The Python `kubernetes` client (DynamicClient and watch.Watch) against `tilt up`.

use std::process::Command;

use crate::common::TiltUp;

#[test]
fn python_dynamic_client_and_watch() {
    let has_client = Command::new("python3").args(["-c", "import kubernetes"]).status().is_ok_and(|s| s.success());
    if !has_client {
        assert!(
            std::env::var("CI").is_err(),
            "the Python kubernetes client is missing (pip install -r tests/requirements.txt)"
        );
        eprintln!("skipping: the Python kubernetes client is not installed");
        return;
    }
    let tilt = TiltUp::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/python/client_test.py");
    let out = Command::new("python3")
        .arg(script)
        .env("KUBECONFIG", tilt.kubeconfig())
        .env("HOME", tilt.home.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python client test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("python client: ok"));
}
