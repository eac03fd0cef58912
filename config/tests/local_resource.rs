//! `local_resource()` and the exact objects it produces.

mod common;

use common::{Project, find, has, names, s};
use serde_json::json;

#[test]
fn representative_local_resource_objects() {
    let p = Project::with_tiltfile(
        r#"
local_resource(
    'api',
    cmd='make build',
    deps=['src', './Makefile'],
    ignore=['*.tmp'],
    serve_cmd=['./bin/api', '--port', '8080'],
    serve_env={'PORT': '8080', 'A': '1'},
    env={'GOFLAGS': '-mod=mod'},
    resource_deps=['db'],
    labels=['backend'],
    readiness_probe=probe(period_secs=5, http_get=http_get_action(port=8080, path='/healthz')),
)
local_resource('db', serve_cmd='./run-db.sh', serve_dir='db')
watch_settings(ignore=['**/node_modules'])
"#,
    );
    let loaded = p.load();
    let dir = s(&p.dir());
    assert_eq!(loaded.resources, vec!["api", "db"]);
    assert_eq!(
        names(&loaded),
        vec![
            "UIResource/api",
            "ToggleButton/api-disable",
            "UIButton/api:trigger",
            "FileWatch/local:api",
            "Cmd/api:update",
            "Cmd/api:serve",
            "UIResource/db",
            "ToggleButton/db-disable",
            "UIButton/db:trigger",
            "Cmd/db:serve",
        ]
    );
    let meta = json!({
        "name": "api",
        "labels": {"backend": "backend", "tilt.dev/owner": "tiltfile", "tilt.dev/resource": "api"},
        "annotations": {"tilt.dev/resource": "api"},
    });
    let with_name = |name: &str| {
        let mut m = meta.clone();
        m["name"] = json!(name);
        m
    };
    let mut ui_meta = meta.clone();
    ui_meta["annotations"]["tilt.dev/trigger-mode"] = json!("0");
    assert_eq!(
        *find(&loaded, "UIResource", "api"),
        json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "UIResource", "metadata": ui_meta, "spec": {}})
    );
    let toggle = find(&loaded, "ToggleButton", "api-disable");
    assert_eq!(
        toggle["spec"]["stateSource"]["configMap"],
        json!({"name": "api-disable", "key": "isDisabled", "onValue": "true", "offValue": "false"})
    );
    assert_eq!(toggle["spec"]["buttonType"], "DisableToggle");
    assert_eq!(
        *find(&loaded, "UIButton", "api:trigger"),
        json!({
            "apiVersion": "tilt.dev/v1alpha1",
            "kind": "UIButton",
            "metadata": {
                "name": "api:trigger",
                "labels": meta["labels"],
                "annotations": {"tilt.dev/resource": "api", "tilt.dev/uibutton-type": "Trigger"},
            },
            "spec": {"location": {"componentID": "api", "componentType": "Resource"}, "text": "Trigger Update"},
        })
    );
    assert_eq!(
        *find(&loaded, "FileWatch", "local:api"),
        json!({
            "apiVersion": "tilt.dev/v1alpha1",
            "kind": "FileWatch",
            "metadata": with_name("local:api"),
            "spec": {
                "watchedPaths": [format!("{dir}/src"), format!("{dir}/Makefile")],
                "ignores": [{"basePath": dir, "patterns": ["*.tmp", "**/node_modules"]}],
            },
        })
    );
    assert_eq!(
        *find(&loaded, "Cmd", "api:update"),
        json!({
            "apiVersion": "tilt.dev/v1alpha1",
            "kind": "Cmd",
            "metadata": {
                "name": "api:update",
                "labels": meta["labels"],
                "annotations": {"tilt.dev/resource": "api", "tilt.dev/auto-file-watches": r#"["local:api"]"#},
            },
            "spec": {
                "args": ["sh", "-c", "make build"],
                "dir": dir,
                "env": ["GOFLAGS=-mod=mod"],
                "restartOn": {"fileWatches": ["local:api"], "uiButtons": ["api:trigger"]},
                "startOn": {"uiResources": ["db"]},
                "disableSource": {"configMap": {"name": "api-disable", "key": "isDisabled"}},
            },
        })
    );
    assert_eq!(
        *find(&loaded, "Cmd", "api:serve"),
        json!({
            "apiVersion": "tilt.dev/v1alpha1",
            "kind": "Cmd",
            "metadata": with_name("api:serve"),
            "spec": {
                "args": ["./bin/api", "--port", "8080"],
                "dir": dir,
                "env": ["A=1", "PORT=8080"],
                "readinessProbe": {
                    "httpGet": {"port": 8080, "path": "/healthz", "scheme": "HTTP"},
                    "initialDelaySeconds": 0,
                    "timeoutSeconds": 1,
                    "periodSeconds": 5,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                },
                "restartOn": {"uiButtons": ["api:trigger"], "cmds": ["api:update"]},
                "startOn": {"cmds": ["api:update"], "uiResources": ["db"]},
                "disableSource": {"configMap": {"name": "api-disable", "key": "isDisabled"}},
            },
        })
    );
    assert_eq!(
        find(&loaded, "Cmd", "db:serve")["spec"],
        json!({
            "args": ["sh", "-c", "./run-db.sh"],
            "dir": format!("{dir}/db"),
            "restartOn": {"uiButtons": ["db:trigger"]},
            "disableSource": {"configMap": {"name": "db-disable", "key": "isDisabled"}},
        })
    );
}

#[test]
fn serve_only_resource_restarts_on_its_file_watch() {
    let p = Project::with_tiltfile("local_resource('web', serve_cmd='npm start', deps='package.json')\n");
    let loaded = p.load();
    assert_eq!(
        find(&loaded, "Cmd", "web:serve")["spec"]["restartOn"],
        json!({"fileWatches": ["local:web"], "uiButtons": ["web:trigger"]})
    );
    assert!(!has(&loaded, "Cmd", "web:update"));
    assert!(find(&loaded, "Cmd", "web:serve")["spec"].get("startOn").is_none());
}

#[test]
fn manual_trigger_mode_and_auto_init_false() {
    let p = Project::with_tiltfile(
        r#"
local_resource('a', 'echo a', deps=['.'], trigger_mode=TRIGGER_MODE_MANUAL)
local_resource('b', 'echo b', deps=['.'], auto_init=False)
local_resource('c', 'echo c', deps=['.'])
trigger_mode(TRIGGER_MODE_MANUAL)  # applies to resources declared before it too
local_resource('d', 'echo d', deps=['.'], trigger_mode=TRIGGER_MODE_AUTO)
"#,
    );
    let loaded = p.load();
    let spec = |n: &str| find(&loaded, "Cmd", &format!("{n}:update"))["spec"].clone();
    assert_eq!(spec("a")["restartOn"], json!({"uiButtons": ["a:trigger"]}));
    assert!(spec("a").get("startOn").is_none());
    assert_eq!(spec("b")["restartOn"], json!({"uiButtons": ["b:trigger"]}), "global default is manual");
    assert_eq!(spec("b")["startOn"], json!({"uiButtons": ["b:trigger"]}));
    assert_eq!(spec("c")["restartOn"], json!({"uiButtons": ["c:trigger"]}));
    assert_eq!(spec("d")["restartOn"], json!({"fileWatches": ["local:d"], "uiButtons": ["d:trigger"]}));
}

#[test]
fn trigger_mode_twice_is_an_error() {
    let p = Project::with_tiltfile("trigger_mode(TRIGGER_MODE_MANUAL)\ntrigger_mode(TRIGGER_MODE_AUTO)\n");
    let err = p.load_err();
    assert!(err.message.contains("trigger_mode can only be called once"), "{}", err.message);
    assert!(err.message.contains("Tiltfile:2"), "{}", err.message);
}

#[test]
fn argv_commands_dirs_links_and_ignored_windows_args() {
    let p = Project::with_tiltfile(
        r#"
local_resource('x', cmd=['go', 'build', './...'], cmd_bat='go build', dir='sub', allow_parallel=True,
               links=['http://localhost:8080', link('http://localhost:9090', 'metrics')], tags=['t'])
"#,
    );
    let loaded = p.load();
    let spec = &find(&loaded, "Cmd", "x:update")["spec"];
    assert_eq!(spec["args"], json!(["go", "build", "./..."]));
    assert_eq!(spec["dir"], json!(s(&p.path("sub"))));
    let ui = find(&loaded, "UIResource", "x");
    let links: serde_json::Value =
        serde_json::from_str(ui["metadata"]["annotations"]["tilt.dev/links"].as_str().unwrap()).unwrap();
    assert_eq!(
        links,
        json!([{"url": "http://localhost:8080", "name": ""}, {"url": "http://localhost:9090", "name": "metrics"}])
    );
}

#[test]
fn resource_deps_on_unknown_resources_are_dropped_with_a_warning() {
    let p = Project::with_tiltfile("local_resource('a', 'true', resource_deps=['nope'])\n");
    let loaded = p.load();
    assert!(find(&loaded, "Cmd", "a:update")["spec"].get("startOn").is_none());
    assert!(loaded.output.iter().any(|l| l.contains("unknown resource nope")), "{:?}", loaded.output);
}

#[test]
fn dependency_cycle_is_an_error() {
    let p = Project::with_tiltfile(
        "local_resource('a', 'true', resource_deps=['b'])\nlocal_resource('b', 'true', resource_deps=['a'])\n",
    );
    assert!(p.load_err().message.contains("cycle"));
}

#[test]
fn invalid_local_resources() {
    for (tiltfile, wanted) in [
        ("local_resource('a')", "must have a cmd and/or a serve_cmd"),
        ("local_resource('a', 'x')\nlocal_resource('a', 'y')", "defined multiple times"),
        ("local_resource('a', serve_cmd='x', dir='d')", "Did you mean to use 'serve_dir'"),
        ("local_resource('a/b', 'x')", "may not contain '/'"),
        ("local_resource('a', 'x', labels=['bad label'])", "Invalid label"),
        ("local_resource('a', 'x', trigger_mode='auto')", "TRIGGER_MODE_AUTO or TRIGGER_MODE_MANUAL"),
        ("local_resource('a', 'x', readiness_probe='http')", "must be a probe()"),
        ("local_resource('a', 'x', env={'': 'v'})", "empty key"),
    ] {
        let err = Project::with_tiltfile(tiltfile).load_err();
        assert!(err.message.contains(wanted), "{tiltfile}: {}", err.message);
    }
}

#[test]
fn readiness_probe_without_serve_cmd_is_ignored_with_a_warning() {
    let p =
        Project::with_tiltfile("local_resource('a', 'x', readiness_probe=probe(tcp_socket=tcp_socket_action(5432)))\n");
    let loaded = p.load();
    assert!(loaded.output.iter().any(|l| l.contains("Ignoring readiness probe")));
}

#[test]
fn enabled_resources_limit_what_runs() {
    let p = Project::with_tiltfile(
        r#"
local_resource('a', 'true', resource_deps=['b'])
local_resource('b', 'true')
local_resource('c', 'true')
config.set_enabled_resources(['a'])
"#,
    );
    let loaded = p.load();
    assert!(has(&loaded, "Cmd", "a:update"));
    assert!(has(&loaded, "Cmd", "b:update"), "dependencies of enabled resources are enabled");
    assert!(!has(&loaded, "Cmd", "c:update"));
    assert_eq!(find(&loaded, "UIResource", "c")["metadata"]["annotations"]["tilt.dev/disabled"], "true");
    assert_eq!(loaded.resources, vec!["a", "b", "c"]);
}
