//! `tilt up` itself: kubeconfig publishing, the Tiltfile object, and shutdown.

use std::time::Duration;

use kube::api::Api;
use serde_json::Value;
use tilt_apis::Tiltfile;

use crate::common::{TiltUp, eventually, kubeconfig_path, poll};

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
        .args(["up", "--api-port", "0", "--port", "0"])
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

/// Live (non-zombie) processes in process group `pgid`.
fn group_members(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // Fields after the parenthesized command: state, ppid, pgrp, …
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect::<Vec<_>>()) else { continue };
        if rest.len() > 2 && rest[0] != "Z" && rest[2] == pgid.to_string() {
            out.push(pid);
        }
    }
    out
}

async fn start_server_cmd(tilt: &TiltUp, name: &str) -> i32 {
    use kube::api::PostParams;
    use tilt_apis::{Cmd, CmdSpec};
    let api: Api<Cmd> = Api::all(tilt.client().await);
    // A shell with two grandchildren, all ignoring SIGTERM.
    let spec = CmdSpec {
        args: vec!["sh".into(), "-c".into(), "trap '' TERM; sleep 300 & sleep 300 & wait".into()],
        ..Default::default()
    };
    api.create(&PostParams::default(), &Cmd::new(name, spec)).await.unwrap();
    poll("the Cmd to run", || async {
        let r = api.get(name).await.ok()?.status?.running?;
        (group_members(r.pid).len() >= 3).then_some(r.pid)
    })
    .await
}

async fn gone(pgid: i32) -> bool {
    for _ in 0..100 {
        if group_members(pgid).is_empty() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn sigkill_of_tilt_leaves_no_children_or_grandchildren() {
    let tilt = TiltUp::start();
    let a = start_server_cmd(&tilt, "a").await;
    let b = start_server_cmd(&tilt, "b").await;
    crate::common::signal(&tilt.child, "KILL");
    assert!(gone(a).await, "group {a} survived: {:?}", group_members(a));
    assert!(gone(b).await, "group {b} survived: {:?}", group_members(b));
}

#[tokio::test]
async fn sigterm_of_tilt_stops_children_within_a_second() {
    let mut tilt = TiltUp::start();
    let a = start_server_cmd(&tilt, "a").await;
    let took = tilt.stop();
    assert!(took < Duration::from_secs(1), "tilt took {took:?} to exit");
    assert!(group_members(a).is_empty(), "group {a} survived: {:?}", group_members(a));
}

/// The binary links starlark, which turns on serde_json's `arbitrary_precision`: YAML output must still
/// write numbers as numbers.
#[tokio::test]
async fn yaml_output_has_native_numbers() {
    use http_body_util::BodyExt;
    let tilt = TiltUp::start();
    let client = tilt.client().await;
    let text = poll("the Tiltfile object as YAML", || async {
        let req = http::Request::get("/apis/tilt.dev/v1alpha1/tiltfiles/(Tiltfile)")
            .header("accept", "application/yaml")
            .body(kube::client::Body::from(Vec::new()))
            .unwrap();
        let resp = client.send(req).await.unwrap();
        let ok = resp.status().is_success();
        let text = String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
        ok.then_some(text)
    })
    .await;
    assert!(text.contains("generation: 1\n") && !text.contains("serde_json"), "{text}");
}
