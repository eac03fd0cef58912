//! The kubectl twins of the `tilt` CLI (`get`, `describe`, `apply`, `patch`, `edit`, `delete`, `wait`,
//! `api-resources`, `explain`) and `enable`/`disable`, `args`, `dump`, `doctor`, against a real `tilt up`:
//! every output format, parsed back where it is data, compared with kubectl where it is text.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tilt_apis::{ConfigMap, Tiltfile, UIResource};

use crate::common::{TiltUp, eventually};

/// Two resources, `a` (a server, label `be`) and `b` (a command), plus one per Tiltfile argument.
const TILTFILE: &str = r#"
config.define_string_list('extra', args=True)
cfg = config.parse()
local_resource('a', serve_cmd='sleep 300', labels=['be'])
local_resource('b', cmd='echo hi')
for name in cfg.get('extra', []):
    local_resource(name, cmd='true')
"#;

/// What one `tilt` run did.
struct Run {
    ok: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run_env(up: &TiltUp, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = up.tilt_command(args).envs(env.iter().copied()).output().unwrap();
    Run {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run(up: &TiltUp, args: &[&str]) -> Run {
    run_env(up, args, &[])
}

/// Runs tilt, asserts it succeeded without a word on stderr, returns stdout.
fn ok(up: &TiltUp, args: &[&str]) -> String {
    let r = run(up, args);
    assert!(
        r.ok && r.stderr.is_empty(),
        "tilt {args:?}: code {:?}\nstdout: {}\nstderr: {}",
        r.code,
        r.stdout,
        r.stderr
    );
    r.stdout
}

/// Runs tilt, asserts it failed with exit code 1 and exactly one line on stderr, returns that line.
fn fails(up: &TiltUp, args: &[&str]) -> String {
    let r = run(up, args);
    assert_eq!(r.code, Some(1), "tilt {args:?} should fail: stdout {} stderr {}", r.stdout, r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "one line on stderr: {:?}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    r.stderr.trim_end().to_string()
}

fn json_of(up: &TiltUp, args: &[&str]) -> Value {
    let out = ok(up, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("tilt {args:?} printed no JSON ({e}): {out}"))
}

fn names(list: &Value) -> Vec<&str> {
    list["items"].as_array().unwrap().iter().map(|o| o["metadata"]["name"].as_str().unwrap()).collect()
}

/// Starts tilt up on `tiltfile` and waits until `a` and `b` are Ready, through `tilt wait` itself.
async fn start_ready(tiltfile: &str) -> TiltUp {
    let up = TiltUp::with_tiltfile(tiltfile);
    let resources: Api<UIResource> = Api::all(up.client().await);
    eventually("the Tiltfile's resources", || async {
        resources.get_opt("a").await.ok().flatten().is_some() && resources.get_opt("b").await.ok().flatten().is_some()
    })
    .await;
    let out = ok(&up, &["wait", "--for=condition=Ready", "uiresource/a", "uiresources/b", "--timeout=60s"]);
    assert_eq!(out, "uiresource.tilt.dev/a condition met\nuiresource.tilt.dev/b condition met\n");
    up
}

#[tokio::test]
async fn get_prints_the_servers_tables_and_every_output_format() {
    let up = start_ready(TILTFILE).await;

    let table = ok(&up, &["get", "uiresources"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split("   ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(header, ["NAME", "CREATED AT", "UPDATE", "RUNTIME"], "{table}");
    let rows: Vec<&str> = lines.map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(rows, ["(Tiltfile)", "a", "b"], "{table}");
    let narrow = ok(&up, &["get", "cmds"]);
    assert!(!narrow.contains("ARGS"), "ARGS is a wide column: {narrow}");
    let wide = ok(&up, &["get", "cmds", "-o", "wide"]);
    assert!(wide.lines().next().unwrap().ends_with("ARGS") && wide.contains(r#"["sh","-c","sleep 300"]"#), "{wide}");
    let several = ok(&up, &["get", "uiresources,cmds"]);
    assert!(
        several.contains("uiresource.tilt.dev/a ")
            && several.contains("\n\nNAME")
            && several.contains("cmd.tilt.dev/b:update "),
        "{several}"
    );

    let list = json_of(&up, &["get", "cmds", "-o", "json"]);
    assert_eq!((list["kind"].as_str(), names(&list)), (Some("List"), vec!["a:serve", "b:update"]));
    assert!(list["items"][0]["metadata"].get("managedFields").is_none(), "managedFields only when asked for");
    let one = json_of(&up, &["get", "cmd", "a:serve", "-o", "json"]);
    assert_eq!((one["kind"].as_str(), &one["spec"]["args"]), (Some("Cmd"), &json!(["sh", "-c", "sleep 300"])));
    assert!(
        json_of(&up, &["get", "cmd", "a:serve", "-o", "json", "--show-managed-fields"])["metadata"]["managedFields"]
            .is_array()
    );
    let yaml: Value = serde_saphyr::from_str(&ok(&up, &["get", "cmds", "-o", "yaml"])).unwrap();
    assert_eq!(yaml["items"][1]["spec"]["args"], json!(["sh", "-c", "echo hi"]));
    assert_eq!(yaml["items"][0]["metadata"]["generation"], 1);
    assert_eq!(ok(&up, &["get", "cmds", "-o", "name"]), "cmd.tilt.dev/a:serve\ncmd.tilt.dev/b:update\n");

    assert_eq!(ok(&up, &["get", "cmds", "-o", "jsonpath={.items[*].metadata.name}"]), "a:serve b:update");
    assert_eq!(
        ok(&up, &["get", "cmds", "-o", r#"jsonpath={range .items[*]}{.metadata.name}={.spec.args[2]}{"\n"}{end}"#]),
        "a:serve=sleep 300\nb:update=echo hi\n"
    );
    assert_eq!(ok(&up, &["get", "cmd/a:serve", "-o", "jsonpath={.spec.args}"]), r#"["sh","-c","sleep 300"]"#);
    assert_eq!(
        ok(&up, &["get", "uiresources", "-o", r#"jsonpath={.items[*].status.conditions[?(@.type=="Ready")].status}"#]),
        "True True True"
    );
    assert_eq!(
        ok(&up, &["get", "cmds", "-o", "custom-columns=NAME:.metadata.name,ARGS:.spec.args"]),
        "NAME       ARGS\na:serve    [sh -c sleep 300]\nb:update   [sh -c echo hi]\n"
    );

    assert_eq!(ok(&up, &["get", "cmds", "-l", "be", "-o", "name"]), "cmd.tilt.dev/a:serve\n");
    assert_eq!(
        ok(&up, &["get", "cmds", "--field-selector", "metadata.name=b:update", "-o", "name"]),
        "cmd.tilt.dev/b:update\n"
    );
    let empty = run(&up, &["get", "cmds", "-l", "nope=x"]);
    assert!(empty.ok && empty.stdout.is_empty() && empty.stderr == "No resources found\n", "{:?}", empty.stderr);
    // Short, singular, kind and group-qualified names all resolve through discovery.
    let fw = ok(&up, &["get", "filewatches", "-o", "name"]);
    assert!(fw.contains("filewatch.tilt.dev/"), "{fw}");
    for alias in ["fw", "filewatch", "FileWatch", "fw.tilt.dev", "filewatches.v1alpha1.tilt.dev"] {
        assert_eq!(ok(&up, &["get", alias, "-o", "name"]), fw, "{alias}");
    }
    assert_eq!(
        ok(&up, &["get", "uiresource/a", "cmd/b:update", "-o", "name"]),
        "uiresource.tilt.dev/a\ncmd.tilt.dev/b:update\n"
    );
}

#[tokio::test]
async fn output_matches_kubectl() {
    let up = start_ready(TILTFILE).await;
    for args in [
        &["get", "cmds"][..],
        &["get", "cmds", "-o", "wide", "--show-labels"],
        &["get", "uiresources,cmds", "--no-headers"],
        &["get", "cmds", "-o", "json"],
        &["get", "cmd", "a:serve", "-o", "yaml"],
        &["get", "cmds", "-o", "custom-columns=A:.kind,NAME:.metadata.name,DIR:.spec.dir"],
        &["describe", "cmd", "a:serve"],
        &["describe", "fw"],
        &["api-resources"],
        &["api-resources", "-o", "wide"],
        &["explain", "cmd.spec"],
        &["explain", "cmd.spec.restartPolicy"],
        &["explain", "filewatches.spec", "--recursive"],
    ] {
        assert_eq!(ok(&up, args), up.kubectl_ok(args), "tilt {args:?} differs from kubectl");
    }
}

#[tokio::test]
async fn describe_and_explain() {
    let up = start_ready(TILTFILE).await;
    let text = ok(&up, &["describe", "cmd", "a:serve"]);
    for line in [
        "Name:         a:serve\n",
        "Labels:       be=be\n",
        "Kind:         Cmd\n",
        "Spec:\n  Args:\n    sh\n    -c\n    sleep 300\n",
    ] {
        assert!(text.contains(line), "{line:?} missing:\n{text}");
    }
    assert!(text.trim_end().ends_with("<none>") && text.contains("Events:"), "{text}");
    // A name that matches nothing exactly describes the objects it prefixes.
    assert!(ok(&up, &["describe", "cmds", "b"]).starts_with("Name:         b:update\n"));
    assert_eq!(
        fails(&up, &["describe", "cmd", "zzz"]),
        r#"Error from server (NotFound): cmds.tilt.dev "zzz" not found"#
    );

    let explain = ok(&up, &["explain", "cmd.spec"]);
    assert!(
        explain.starts_with("GROUP:      tilt.dev\nKIND:       Cmd\nVERSION:    v1alpha1\n\nFIELD: spec <Object>\n"),
        "{explain}"
    );
    assert!(explain.contains("  args\t<[]string>\n") && explain.contains("  readinessProbe\t<Object>\n"), "{explain}");
    assert!(ok(&up, &["explain", "fw.spec.ignores"]).contains("FIELD: ignores <[]Object>"));
    assert_eq!(fails(&up, &["explain", "cmd.spec.nope"]), r#"error: field "nope" does not exist"#);
    let resources = ok(&up, &["api-resources"]);
    assert!(
        resources.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["filewatches", "fw", "tilt.dev/v1alpha1", "false", "FileWatch"]),
        "{resources}"
    );
    assert!(ok(&up, &["api-resources", "-o", "name"]).lines().any(|l| l == "portforwards.tilt.dev"));
}

#[tokio::test]
async fn apply_patch_edit_and_delete() {
    let up = start_ready(TILTFILE).await;
    let file = up.home.path().join("cm.yaml");
    let manifest = "apiVersion: tilt.dev/v1alpha1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels:\n    app: demo\ndata:\n  keep: \"1\"\n  drop: \"2\"\n";
    std::fs::write(&file, manifest).unwrap();
    let path = file.to_str().unwrap();
    assert_eq!(ok(&up, &["apply", "-f", path]), "configmap.tilt.dev/settings created\n");
    assert_eq!(ok(&up, &["apply", "-f", path]), "configmap.tilt.dev/settings unchanged\n");
    // A field set by another client survives the next apply; a field removed from the manifest goes.
    ok(&up, &["patch", "cm", "settings", "-p", r#"{"data":{"other":"x"}}"#]);
    std::fs::write(&file, manifest.replace("  drop: \"2\"\n", "  new: \"3\"\n")).unwrap();
    assert_eq!(ok(&up, &["apply", "-f", path]), "configmap.tilt.dev/settings configured\n");
    let cm = json_of(&up, &["get", "cm", "settings", "-o", "json"]);
    assert_eq!(cm["data"], json!({"keep": "1", "new": "3", "other": "x"}));
    assert!(
        fails(&up, &["apply", "-f", "/nonexistent.yaml"])
            .starts_with("error: the path \"/nonexistent.yaml\" does not exist")
    );
    let wrong = up.home.path().join("wrong.yaml");
    std::fs::write(&wrong, "apiVersion: tilt.dev/v1alpha1\nkind: Nope\nmetadata:\n  name: x\n").unwrap();
    assert_eq!(
        fails(&up, &["apply", "-f", wrong.to_str().unwrap()]),
        r#"error: no matches for kind "Nope" in version "tilt.dev/v1alpha1""#
    );

    assert_eq!(
        ok(&up, &["patch", "cm", "settings", "--type=merge", "-p", r#"{"data":{"keep":"10"}}"#]),
        "configmap.tilt.dev/settings patched\n"
    );
    assert_eq!(
        ok(&up, &["patch", "cm/settings", "-p", r#"{"data":{"keep":"10"}}"#]),
        "configmap.tilt.dev/settings patched (no change)\n"
    );
    assert_eq!(
        ok(&up, &["patch", "configmap", "settings", "--type=json", "-p", r#"[{"op":"remove","path":"/data/other"}]"#]),
        "configmap.tilt.dev/settings patched\n"
    );
    let patched = json_of(&up, &["patch", "cm", "settings", "-p", "data: {yaml: 'yes'}", "-o", "json"]);
    assert_eq!(patched["data"], json!({"keep": "10", "new": "3", "yaml": "yes"}));
    assert!(
        fails(&up, &["patch", "cm", "settings", "--type=strategic", "-p", "{}"])
            .contains("use --type=merge or --type=json")
    );

    let edited = run_env(&up, &["edit", "cm", "settings"], &[("EDITOR", "sed -i s/yes/edited/")]);
    assert!(
        edited.ok && edited.stdout == "configmap.tilt.dev/settings edited\n",
        "{} {}",
        edited.stdout,
        edited.stderr
    );
    assert_eq!(ok(&up, &["get", "cm", "settings", "-o", "jsonpath={.data.yaml}"]), "edited");
    let untouched = run_env(&up, &["edit", "cm/settings"], &[("EDITOR", "true"), ("KUBE_EDITOR", "")]);
    assert_eq!(untouched.stdout, "Edit cancelled, no changes made.\n");

    assert_eq!(ok(&up, &["delete", "cm", "settings"]), "configmap.tilt.dev \"settings\" deleted\n");
    assert_eq!(
        fails(&up, &["get", "cm", "settings"]),
        r#"Error from server (NotFound): configmaps.tilt.dev "settings" not found"#
    );
    assert_eq!(
        fails(&up, &["delete", "cm", "settings"]),
        r#"Error from server (NotFound): configmaps.tilt.dev "settings" not found"#
    );
    assert!(ok(&up, &["delete", "cm", "settings", "--ignore-not-found"]).is_empty());
    for name in ["l1", "l2"] {
        std::fs::write(&file, manifest.replace("name: settings", &format!("name: {name}"))).unwrap();
        ok(&up, &["apply", "-f", path]);
    }
    assert_eq!(
        ok(&up, &["delete", "cm", "-l", "app=demo"]),
        "configmap.tilt.dev \"l1\" deleted\nconfigmap.tilt.dev \"l2\" deleted\n"
    );
    assert!(fails(&up, &["get", "cm", "l1"]).contains("NotFound"));
    assert!(fails(&up, &["delete", "cm"]).contains("no name was specified"));
}

#[tokio::test]
async fn get_watch_sees_changes_made_by_another_client() {
    let up = start_ready(TILTFILE).await;
    let mut watch =
        up.tilt_command(&["get", "configmaps", "-w"]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut json_watch =
        up.tilt_command(&["get", "cmd", "b:update", "-w", "-o", "json"]).stdout(Stdio::piped()).spawn().unwrap();
    let lines = forward_lines(watch.stdout.take().unwrap());
    let json_lines = forward_lines(json_watch.stdout.take().unwrap());
    // The JSON watch prints the object first: its closing brace means the watch is about to start.
    expect_line(&json_lines, |l| l == "}");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let client = up.client().await;
    let cms: Api<ConfigMap> = Api::all(client.clone());
    cms.create(&PostParams::default(), &ConfigMap::new("watched", [("k".to_string(), "v".to_string())].into()))
        .await
        .unwrap();
    assert_eq!(
        expect_line(&lines, |l| l.starts_with("NAME")).split_whitespace().collect::<Vec<_>>(),
        ["NAME", "CREATED", "AT"]
    );
    expect_line(&lines, |l| l.starts_with("watched "));
    cms.patch("watched", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "w"}}))).await.unwrap();
    expect_line(&lines, |l| l.starts_with("watched "));
    ok(&up, &["trigger", "b"]);
    expect_line(&json_lines, |l| l == "}");
    for mut child in [watch, json_watch] {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn forward_lines(out: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits up to 10 s for a line that `matches`, skipping others.
fn expect_line(lines: &mpsc::Receiver<String>, matches: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if matches(&line) => return line,
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    panic!("no matching line; saw {seen:?}");
}

#[tokio::test]
async fn wait_for_conditions_jsonpath_and_deletion_and_time_out() {
    let up = start_ready(TILTFILE).await;
    assert_eq!(
        ok(&up, &["wait", "--for=condition=Ready=true", "uiresource", "a"]),
        "uiresource.tilt.dev/a condition met\n"
    );
    assert_eq!(
        ok(&up, &["wait", "--for=jsonpath={.status.ready}=true", "cmd/a:serve"]),
        "cmd.tilt.dev/a:serve condition met\n"
    );
    assert_eq!(
        ok(&up, &["wait", "--for=jsonpath=.spec.args[0]=sh", "cmds", "--all"]),
        "cmd.tilt.dev/a:serve condition met\ncmd.tilt.dev/b:update condition met\n"
    );
    assert_eq!(
        ok(&up, &["wait", "--for=condition=Ready", "uiresources", "-l", "be"]),
        "uiresource.tilt.dev/a condition met\n"
    );

    let started = Instant::now();
    let r = run(&up, &["wait", "--for=condition=Ready=false", "uiresource/a", "--timeout=1s"]);
    assert_eq!((r.code, r.stderr.as_str()), (Some(1), "error: timed out waiting for the condition on uiresources/a\n"));
    assert!(
        started.elapsed() >= Duration::from_secs(1) && started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        fails(&up, &["wait", "--for=jsonpath={.status.ready}=false", "cmd/a:serve", "--timeout=500ms"])
            .contains("timed out")
    );
    assert_eq!(
        fails(&up, &["wait", "--for=condition=Ready", "uiresource/nope"]),
        r#"Error from server (NotFound): uiresources.tilt.dev "nope" not found"#
    );
    let bad = run(&up, &["wait", "--for=ready", "uiresource/a"]);
    assert_eq!(bad.code, Some(2), "a bad --for is a usage error: {}", bad.stderr);

    // A wait that starts before the change sees it.
    let cms: Api<ConfigMap> = Api::all(up.client().await);
    cms.create(&PostParams::default(), &ConfigMap::new("doomed", Default::default())).await.unwrap();
    let mut waiting = up.tilt_command(&["wait", "--for=delete", "cm/doomed", "--timeout=20s"]);
    let waiter = std::thread::spawn(move || waiting.output().unwrap());
    tokio::time::sleep(Duration::from_millis(500)).await;
    cms.delete("doomed", &Default::default()).await.unwrap();
    let out = tokio::task::spawn_blocking(move || waiter.join().unwrap()).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "configmap.tilt.dev/doomed condition met\n");
}

#[tokio::test]
async fn enable_and_disable_write_the_disable_configmaps() {
    let up = start_ready(TILTFILE).await;
    let cms: Api<ConfigMap> = Api::all(up.client().await);
    let flag = |name: &'static str| {
        let cms = cms.clone();
        async move { cms.get_opt(&format!("{name}-disable")).await.unwrap().and_then(|c| c.data.get("isDisabled").cloned()) }
    };
    assert_eq!(ok(&up, &["disable", "a"]), "");
    assert_eq!((flag("a").await.as_deref(), flag("b").await), (Some("true"), None));
    ok(&up, &["enable", "a"]);
    assert_eq!(flag("a").await.as_deref(), Some("false"));
    ok(&up, &["disable", "--labels", "be"]);
    assert_eq!((flag("a").await.as_deref(), flag("b").await), (Some("true"), None));
    ok(&up, &["enable", "--all"]);
    assert_eq!((flag("a").await.as_deref(), flag("b").await.as_deref()), (Some("false"), Some("false")));
    ok(&up, &["disable", "--all"]);
    assert_eq!((flag("a").await.as_deref(), flag("b").await.as_deref()), (Some("true"), Some("true")));
    ok(&up, &["enable", "--only", "b"]);
    assert_eq!((flag("a").await.as_deref(), flag("b").await.as_deref()), (Some("true"), Some("false")));

    assert_eq!(fails(&up, &["disable", "nope"]), r#"error: no such resource "nope""#);
    assert_eq!(fails(&up, &["enable", "--labels", "nope"]), r#"error: no resources have the labels ["nope"]"#);
    assert!(fails(&up, &["enable"]).contains("must specify at least one resource"));
    assert_eq!(run(&up, &["disable", "--all", "a"]).code, Some(2), "--all with names is a usage error");
}

#[tokio::test]
async fn args_change_the_tiltfile_and_it_runs_again() {
    let up = start_ready(TILTFILE).await;
    let client = up.client().await;
    let tiltfiles: Api<Tiltfile> = Api::all(client.clone());
    let resources: Api<UIResource> = Api::all(client);
    assert_eq!(ok(&up, &["args", "--", "x", "--", "y"]), "Changed config args for Tilt to [x -- y]\n");
    assert_eq!(tiltfiles.get("(Tiltfile)").await.unwrap().spec.args, ["x", "--", "y"]);
    ok(&up, &["args", "c1", "c2"]);
    assert_eq!(tiltfiles.get("(Tiltfile)").await.unwrap().spec.args, ["c1", "c2"]);
    eventually("the re-run Tiltfile's resources", || async {
        resources.get_opt("c1").await.ok().flatten().is_some() && resources.get_opt("c2").await.ok().flatten().is_some()
    })
    .await;
    assert_eq!(ok(&up, &["args", "c1", "c2"]), "Tilt is already running with those args -- no action taken\n");
    let edited = run_env(&up, &["args"], &[("EDITOR", r#"sed -i "s/c2/'c 3'/""#), ("TILT_EDITOR", "")]);
    assert!(edited.ok, "{}", edited.stderr);
    assert_eq!(tiltfiles.get("(Tiltfile)").await.unwrap().spec.args, ["c1", "c 3"]);
    ok(&up, &["args", "--clear"]);
    assert!(tiltfiles.get("(Tiltfile)").await.unwrap().spec.args.is_empty());
    eventually("c1 removed again", || async { resources.get_opt("c1").await.ok().flatten().is_none() }).await;
    assert!(fails(&up, &["args", "--clear", "x"]).contains("--clear cannot be specified with other values"));
}

#[tokio::test]
async fn dump_and_doctor() {
    let up = start_ready(TILTFILE).await;
    let engine = json_of(&up, &["dump", "engine"]);
    assert_eq!(names(&json!({"items": engine["cmds"]})), ["a:serve", "b:update"]);
    assert_eq!(engine["tiltfiles"][0]["spec"]["path"].as_str(), up.home.path().join("Tiltfile").to_str());
    for plural in ["uiresources", "filewatches", "sessions", "portforwards", "kubernetesapplys"] {
        assert!(engine[plural].is_array(), "{plural} missing");
    }
    let webview = json_of(&up, &["dump", "webview"]);
    assert_eq!(names(&json!({"items": webview["uiResources"]})), ["(Tiltfile)", "a", "b"]);
    assert!(webview["uiButtons"].as_array().unwrap().iter().any(|b| b["metadata"]["name"] == "a:trigger"));
    assert_eq!(webview["session"]["kind"], "Session");
    assert!(webview.as_object().unwrap().contains_key("uiSession"));
    assert_eq!(run(&up, &["dump", "nonsense"]).code, Some(2));

    let doctor = run_env(&up, &["doctor"], &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")]);
    assert!(doctor.ok, "{}", doctor.stderr);
    let kubeconfig = format!("- Kubeconfig: {}", up.kubeconfig().display());
    for line in [
        "Tilt: tilt-rs v",
        "Kubernetes",
        &kubeconfig,
        "- Context: none",
        "Docker",
        "- Host: unix:///nonexistent/docker.sock",
        "- Daemon: not reachable",
        "- API server: reachable",
    ] {
        assert!(doctor.stdout.lines().any(|l| l.starts_with(line)), "{line:?} missing:\n{}", doctor.stdout);
    }
}

#[test]
fn clear_one_line_errors() {
    let home = tempfile::tempdir().unwrap();
    for args in [
        &["get", "cmds"][..],
        &["describe", "cmd", "x"],
        &["wait", "--for=delete", "cmd/x"],
        &["enable", "a"],
        &["args", "x"],
        &["dump", "engine"],
        &["api-resources"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tilt"))
            .args(args)
            .env("HOME", home.path())
            .env_remove("TILT_CONFIG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "tilt {args:?}");
        assert!(
            stderr.starts_with("error: no tilt up found")
                && stderr.ends_with("start one with `tilt up`\n")
                && stderr.lines().count() == 1,
            "tilt {args:?}: {stderr}"
        );
    }
    // doctor reports what it cannot reach and still succeeds.
    let out = Command::new(env!("CARGO_BIN_EXE_tilt"))
        .arg("doctor")
        .env("HOME", home.path())
        .env_remove("TILT_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("- API server: not reachable: no tilt up found"));
    let out = Command::new(env!("CARGO_BIN_EXE_tilt"))
        .args(["get", "cmds", "-o", "xml"])
        .env("HOME", home.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("unable to match a printer suitable for the output format \"xml\"")
    );
}

#[tokio::test]
async fn unknown_types_and_missing_objects_read_like_kubectl() {
    let up = start_ready(TILTFILE).await;
    for args in [
        &["get", "nope"][..],
        &["describe", "nope"],
        &["delete", "nope", "x"],
        &["wait", "--for=delete", "nope/x"],
        &["explain", "nope"],
    ] {
        assert_eq!(fails(&up, args), r#"error: the server doesn't have a resource type "nope""#, "tilt {args:?}");
        assert_eq!(up.kubectl(args).status.code(), Some(1));
    }
    assert_eq!(fails(&up, &["get", "cmd", "nope"]), r#"Error from server (NotFound): cmds.tilt.dev "nope" not found"#);
    assert_eq!(
        fails(&up, &["get", "cmd", "nope"]),
        String::from_utf8_lossy(&up.kubectl(&["get", "cmd", "nope"]).stderr).trim_end()
    );
    assert!(fails(&up, &["get", "cmds", "a:serve", "b:update", "-w"]).starts_with("error: watch is only supported"));
    assert!(fails(&up, &["get", "cmd", "uiresource/a"]).contains("no need to specify a resource type"));
}
