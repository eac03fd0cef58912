//! kubectl 1.32 against `tilt up`: every command users rely on, with no warnings on stderr.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tilt_apis::{Cmd, CmdSpec, UIResource};

use crate::common::{TiltUp, assert_clean};

const FILEWATCH: &str = r#"
apiVersion: tilt.dev/v1alpha1
kind: FileWatch
metadata:
  name: src
  labels:
    app: demo
spec:
  watchedPaths: ["/tmp/src"]
  ignores:
  - basePath: /tmp/src
    patterns: ["*.log"]
"#;

#[test]
fn discovery_explain_and_openapi() {
    let tilt = TiltUp::start();
    let resources = tilt.kubectl_ok(&["api-resources"]);
    for expected in ["filewatches", "fw", "cmds", "kubernetesapplys", "uiresources", "portforwards"] {
        assert!(
            resources.split_whitespace().any(|w| w.split(',').any(|s| s == expected)),
            "{expected} missing:\n{resources}"
        );
    }
    let explain = tilt.kubectl_ok(&["explain", "cmd.spec"]);
    assert!(
        explain.contains("KIND:       Cmd") && explain.contains("args") && explain.contains("readinessProbe"),
        "{explain}"
    );
    let explain = tilt.kubectl_ok(&["explain", "filewatches.spec.ignores"]);
    assert!(explain.contains("patterns"), "{explain}");
    let v3: Value = serde_json::from_str(&tilt.kubectl_ok(&["get", "--raw", "/openapi/v3"])).unwrap();
    assert!(v3["paths"]["apis/tilt.dev/v1alpha1"]["serverRelativeURL"].is_string(), "{v3}");
    let version = tilt.kubectl_ok(&["version", "-o", "json"]);
    assert!(version.contains("serverVersion"), "{version}");
}

#[test]
fn get_apply_patch_edit_delete() {
    let tilt = TiltUp::start();
    let file = tilt.home.path().join("fw.yaml");
    std::fs::write(&file, FILEWATCH).unwrap();
    let path = file.to_str().unwrap();
    assert!(tilt.kubectl_ok(&["apply", "-f", path]).contains("filewatch.tilt.dev/src created"));
    std::fs::write(&file, FILEWATCH.replace("*.log", "*.tmp")).unwrap();
    assert!(tilt.kubectl_ok(&["apply", "-f", path]).contains("configured"));

    let table = tilt.kubectl_ok(&["get", "filewatches"]);
    assert!(table.starts_with("NAME") && table.contains("CREATED AT") && table.contains("src"), "{table}");
    assert!(tilt.kubectl_ok(&["get", "fw", "-o", "wide"]).contains("src"));
    let obj: Value = serde_json::from_str(&tilt.kubectl_ok(&["get", "fw", "src", "-o", "json"])).unwrap();
    assert_eq!(obj["spec"]["ignores"][0]["patterns"], json!(["*.tmp"]));
    assert_eq!(obj["metadata"]["generation"], 2);
    let yaml = tilt.kubectl_ok(&["get", "fw", "src", "-o", "yaml"]);
    assert!(yaml.contains("watchedPaths:") && yaml.contains("kind: FileWatch"), "{yaml}");
    assert_eq!(tilt.kubectl_ok(&["get", "fw", "src", "-o", "jsonpath={.spec.watchedPaths[0]}"]), "/tmp/src");
    assert_eq!(tilt.kubectl_ok(&["get", "fw", "-l", "app=demo", "-o", "name"]).trim(), "filewatch.tilt.dev/src");
    assert_eq!(tilt.kubectl_ok(&["get", "fw", "-l", "app,app!=demo", "-o", "name"]).trim(), "");

    let applied = tilt.kubectl_ok(&["apply", "--server-side", "-f", path]);
    assert!(applied.contains("serverside-applied"), "{applied}");
    tilt.kubectl_ok(&["patch", "fw", "src", "--type=merge", "-p", r#"{"spec":{"watchedPaths":["/tmp/a"]}}"#]);
    tilt.kubectl_ok(&[
        "patch",
        "fw",
        "src",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/spec/watchedPaths/-","value":"/tmp/b"}]"#,
    ]);
    assert_eq!(tilt.kubectl_ok(&["get", "fw", "src", "-o", "jsonpath={.spec.watchedPaths}"]), r#"["/tmp/a","/tmp/b"]"#);

    let out = tilt.kubectl_env(&["edit", "fw", "src"], &[("EDITOR", "sed -i s#/tmp/b#/tmp/edited#")]);
    assert_clean(&["edit"], &out);
    assert_eq!(tilt.kubectl_ok(&["get", "fw", "src", "-o", "jsonpath={.spec.watchedPaths[1]}"]), "/tmp/edited");

    // Bad input: a clear error from the server, not a crash.
    let out = tilt.kubectl(&["patch", "fw", "src", "--type=merge", "-p", r#"{"spec":{"watchedPaths":"nope"}}"#]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("spec.watchedPaths"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert!(tilt.kubectl_ok(&["delete", "fw", "src"]).contains("deleted"));
    let out = tilt.kubectl(&["get", "fw", "src"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("NotFound"));
}

#[tokio::test]
async fn get_watch_sees_changes_from_another_client() {
    let tilt = TiltUp::start();
    let api: Api<Cmd> = Api::all(tilt.client().await);
    api.create(&PostParams::default(), &Cmd::new("first", CmdSpec { args: vec!["a".into()], ..Default::default() }))
        .await
        .unwrap();
    let mut watch =
        tilt.kubectl_command(&["get", "cmds", "-w"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = watch.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let done = line.starts_with("second");
            seen.push(line);
            if done {
                break;
            }
        }
        seen
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    api.create(&PostParams::default(), &Cmd::new("second", CmdSpec { args: vec!["b".into()], ..Default::default() }))
        .await
        .unwrap();
    let seen = tokio::task::spawn_blocking(move || lines.join().unwrap()).await.unwrap();
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(
        seen[0].starts_with("NAME") && seen[1].starts_with("first") && seen.last().unwrap().starts_with("second"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn wait_for_condition_and_jsonpath() {
    let tilt = TiltUp::start();
    let api: Api<UIResource> = Api::all(tilt.client().await);
    api.create(&PostParams::default(), &UIResource::new("svc", Default::default())).await.unwrap();
    let condition = tilt
        .kubectl_command(&["wait", "--for=condition=Ready", "uiresource/svc", "--timeout=20s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let jsonpath = tilt
        .kubectl_command(&["wait", "--for=jsonpath={.status.runtimeStatus}=ok", "uiresource/svc", "--timeout=20s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The UIResource controller summarizes this resource (it has no Cmds) and writes its own status back, so
    // the patch is repeated until both waits, however late kubectl starts watching, have seen it.
    let (mut condition, mut jsonpath) = (condition, jsonpath);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for i in 0.. {
        let status = json!({"status": {
            "runtimeStatus": "ok",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": format!("2026-01-01T00:00:{:02}.000000Z", i % 60)}],
        }});
        api.patch_status("svc", &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
        let done = condition.try_wait().unwrap().is_some() && jsonpath.try_wait().unwrap().is_some();
        if done || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for child in [condition, jsonpath] {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
        assert_clean(&["wait"], &out);
        assert!(String::from_utf8_lossy(&out.stdout).contains("condition met"));
    }
    // A wait that can never be met times out with a non-zero exit.
    let out = tilt.kubectl(&["wait", "--for=condition=Nope", "uiresource/svc", "--timeout=1s"]);
    assert!(!out.status.success());
}
