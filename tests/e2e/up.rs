//! `tilt up` itself: kubeconfig publishing, the Tiltfile object, and shutdown.

use std::time::Duration;

use kube::api::Api;
use serde_json::Value;
use tilt_apis::Tiltfile;

use crate::common::{TiltUp, eventually, kubeconfig_path};

#[tokio::test]
async fn merges_a_tilt_context_without_touching_the_users_config() {
    let home = tempfile::tempdir().unwrap();
    let path = kubeconfig_path(home.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\ncurrent-context: kind-dev\nclusters:\n- name: kind-dev\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: kind-dev\n  context:\n    cluster: kind-dev\n    user: kind-dev\nusers:\n- name: kind-dev\n  user:\n    token: abc\n",
    )
    .unwrap();
    let first = TiltUp::start_in(home);
    let merged: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(merged["current-context"], "kind-dev");
    let names = |list: &str| -> Vec<String> {
        merged[list].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(names("contexts"), ["kind-dev", "tilt"]);
    assert_eq!(names("users"), ["kind-dev", "tilt"]);
    let own = first.home.path().join(".tilt-dev").join("config");
    assert!(std::fs::read_to_string(own).unwrap().contains(&first.url));

    // A second instance while the first is alive gets its own context.
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_tilt"))
        .args(["up", "--api-port", "0"])
        .env("HOME", first.home.path())
        .env("KUBECONFIG", &path)
        .env("TILT_CONFIG", first.home.path().join("second-config"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut second = scopeguard(second);
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(second.0.stdout.take().unwrap()), &mut line).unwrap();
    assert!(line.contains("--context tilt-"), "{line}");
    let merged: Value = serde_saphyr::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(merged["contexts"].as_array().unwrap().len(), 3);
    assert_eq!(merged["current-context"], "kind-dev");
}

/// Kills and reaps a child when dropped.
struct Guard(std::process::Child);
fn scopeguard(child: std::process::Child) -> Guard {
    Guard(child)
}
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn missing_tiltfile_is_an_error_in_status_and_the_server_keeps_running() {
    let mut tilt = TiltUp::start();
    let api: Api<Tiltfile> = Api::all(tilt.client().await);
    eventually("the Tiltfile status", || async {
        api.get("(Tiltfile)")
            .await
            .ok()
            .and_then(|t| t.status)
            .and_then(|s| s.terminated)
            .is_some_and(|t| t.error.contains("No Tiltfile found"))
    })
    .await;
    assert!(tilt.kubectl_ok(&["get", "tiltfiles"]).contains("(Tiltfile)"));
    let took = tilt.stop();
    assert!(took < Duration::from_secs(2), "SIGTERM took {took:?}");
}
