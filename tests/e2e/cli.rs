//! The `tilt` CLI as an API client: logs and trigger against a running `tilt up`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use kube::api::Api;
use serde_json::Value;
use tilt_apis::Cmd;

use crate::common::{TiltUp, eventually};

fn tilt(up: &TiltUp, args: &[&str]) -> Output {
    up.tilt_command(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "tilt failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn logs_filter_tail_json_and_follow() {
    let up = TiltUp::with_tiltfile(
        "local_resource('a', serve_cmd='echo a1; echo a2; echo a3; sleep 300')\nlocal_resource('b', cmd='echo from-b')\n",
    );
    let cmds: Api<Cmd> = Api::all(up.client().await);
    eventually("b to finish", || async {
        cmds.get("b:update").await.ok().and_then(|c| c.status).and_then(|s| s.terminated).is_some()
    })
    .await;
    eventually("a's lines", || async { stdout(&tilt(&up, &["logs", "a"])).contains("a3") }).await;
    let a = stdout(&tilt(&up, &["logs", "a"]));
    assert!(a.contains("a │ a1") && !a.contains("from-b"), "only the named resource's lines: {a}");
    assert_eq!(stdout(&tilt(&up, &["logs", "a", "--tail", "1"])).trim(), "a │ a3");
    let json = stdout(&tilt(&up, &["logs", "b", "--json"]));
    let line: Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!((line["resource"].as_str(), line["text"].as_str()), (Some("b"), Some("from-b")));
    assert!(line["time"].is_string() && line["seq"].is_u64());

    // -f streams a line written after it started.
    let mut follow = up.tilt_command(&["logs", "-f", "b"]).stdout(Stdio::piped()).spawn().unwrap();
    let reader = BufReader::new(follow.stdout.take().unwrap());
    let lines = std::thread::spawn(move || reader.lines().map_while(Result::ok).take(2).collect::<Vec<_>>());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(stdout(&tilt(&up, &["trigger", "b"])).contains("Triggered b"));
    let seen = tokio::task::spawn_blocking(move || lines.join().unwrap()).await.unwrap();
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(seen, ["b │ from-b", "b │ from-b"], "the triggered rerun's line arrived");
}

#[test]
fn clear_errors_without_tilt_up_and_for_unknown_resources() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tilt"))
        .args(["logs"])
        .env("HOME", home.path())
        .env_remove("TILT_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tilt up found"));
    let out = Command::new(env!("CARGO_BIN_EXE_tilt"))
        .args(["logs", "--port", "1"])
        .env("HOME", home.path())
        .env("KUBECONFIG", home.path().join("none"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no tilt up found on port 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let up = TiltUp::with_tiltfile("local_resource('a', cmd='true')\n");
    let out = tilt(&up, &["trigger", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no resource named \"nope\""));
}

#[tokio::test]
async fn disable_stops_a_resource_and_enable_starts_it_again() {
    use tilt_apis::UIResource;
    let up = TiltUp::with_tiltfile(
        "local_resource('a', serve_cmd='sleep 300')\nlocal_resource('b', serve_cmd='sleep 300')\n",
    );
    let client = up.client().await;
    let cmds: Api<Cmd> = Api::all(client.clone());
    let pid = |name: &'static str| {
        let cmds = cmds.clone();
        async move { cmds.get(name).await.ok()?.status?.running.map(|r| r.pid) }
    };
    eventually("a and b to run", || async { pid("a:serve").await.is_some() && pid("b:serve").await.is_some() }).await;
    let first = pid("a:serve").await.unwrap();
    let b = pid("b:serve").await;

    assert!(tilt(&up, &["disable", "a"]).status.success());
    let resources: Api<UIResource> = Api::all(client.clone());
    eventually("a to be disabled", || async {
        let state = resources.get("a").await.ok().and_then(|r| r.status).map(|s| s.disable_status.state);
        state.as_deref() == Some("Disabled") && pid("a:serve").await.is_none()
    })
    .await;
    let stat = std::fs::read_to_string(format!("/proc/{first}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.contains(") Z "), "a's process was stopped");
    assert_eq!(pid("b:serve").await, b, "b is untouched");

    assert!(tilt(&up, &["enable", "a"]).status.success());
    eventually("a to run again", || async { pid("a:serve").await.is_some_and(|p| p != first) }).await;
}
