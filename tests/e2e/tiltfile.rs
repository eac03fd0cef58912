//! Tiltfiles end to end: the example project, re-evaluation, `tilt ci` and `tilt down`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::Api;
use tilt_apis::{Cmd, Tiltfile, UIResource};

use crate::common::{TiltUp, eventually, poll};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn ready(r: &UIResource) -> bool {
    r.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn serve_pid(api: &Api<Cmd>, name: &str) -> Option<i32> {
    api.get(name).await.ok()?.status?.running.map(|r| r.pid)
}

#[tokio::test]
async fn example_project_comes_up_and_an_edit_restarts_only_the_affected_server() {
    let home = tempfile::tempdir().unwrap();
    copy_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/hello")), home.path());
    let (api_port, web_port) = (free_port(), free_port());
    let tilt = TiltUp::start_with(home, &[("API_PORT", &api_port.to_string()), ("WEB_PORT", &web_port.to_string())]);
    let client = tilt.client().await;
    let resources: Api<UIResource> = Api::all(client.clone());
    let started = Instant::now();
    eventually("build, api and web to be Ready", || async {
        let list = resources.list(&Default::default()).await.unwrap().items;
        list.len() == 4 && list.iter().all(ready) // the three and the Tiltfile's own
    })
    .await;
    eprintln!("example up in {:?}", started.elapsed());
    let table = tilt.kubectl_ok(&["get", "uiresources"]);
    for name in ["build", "api", "web"] {
        assert!(table.contains(name), "{table}");
    }
    let cmds: Api<Cmd> = Api::all(client.clone());
    let (api1, web1) = (serve_pid(&cmds, "api:serve").await.unwrap(), serve_pid(&cmds, "web:serve").await.unwrap());

    std::fs::write(tilt.home.path().join("src/api.txt"), "api v2\n").unwrap();
    eventually("api to restart with the new content", || async {
        let body = reqwest_get(api_port, "/api.txt").await;
        serve_pid(&cmds, "api:serve").await.is_some_and(|p| p != api1) && body.as_deref() == Some("api v2\n")
    })
    .await;
    assert_eq!(serve_pid(&cmds, "web:serve").await, Some(web1), "web was not restarted");
}

/// A plain HTTP GET on loopback, returning the body of a 200.
async fn reqwest_get(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200").then(|| body.to_string())
}

#[tokio::test]
async fn reevaluation_adds_and_removes_resources_and_errors_leave_them_running() {
    let home = tempfile::tempdir().unwrap();
    let tiltfile = home.path().join("Tiltfile");
    std::fs::write(
        &tiltfile,
        "local_resource('a', serve_cmd='sleep 300')\nlocal_resource('b', serve_cmd='sleep 300')\n",
    )
    .unwrap();
    let tilt = TiltUp::start_in(home);
    let client = tilt.client().await;
    let cmds: Api<Cmd> = Api::all(client.clone());
    eventually("a and b to run", || async {
        serve_pid(&cmds, "a:serve").await.is_some() && serve_pid(&cmds, "b:serve").await.is_some()
    })
    .await;
    let a = serve_pid(&cmds, "a:serve").await.unwrap();

    // A syntax error: reported with file:line, and nothing that runs is touched.
    std::fs::write(
        &tiltfile,
        "local_resource('a', serve_cmd='sleep 300')\nlocal_resource('b',, serve_cmd='sleep 300')\n",
    )
    .unwrap();
    let tiltfiles: Api<Tiltfile> = Api::all(client.clone());
    let error = poll("the syntax error in status", || async {
        let error = tiltfiles.get("(Tiltfile)").await.ok()?.status?.terminated?.error;
        (!error.is_empty()).then_some(error)
    })
    .await;
    assert!(error.contains("Tiltfile:2"), "{error}");
    assert_eq!(serve_pid(&cmds, "a:serve").await, Some(a));
    assert!(serve_pid(&cmds, "b:serve").await.is_some());

    // Fixed, with b removed and c added: b is deleted and stopped, c starts, a is untouched.
    let b = serve_pid(&cmds, "b:serve").await.unwrap();
    std::fs::write(
        &tiltfile,
        "local_resource('a', serve_cmd='sleep 300')\nlocal_resource('c', serve_cmd='sleep 300')\n",
    )
    .unwrap();
    eventually("c to run and b to be gone", || async {
        serve_pid(&cmds, "c:serve").await.is_some() && cmds.get_opt("b:serve").await.unwrap().is_none()
    })
    .await;
    assert_eq!(serve_pid(&cmds, "a:serve").await, Some(a));
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{b}")).exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stat = std::fs::read_to_string(format!("/proc/{b}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.contains(") Z "), "b's process was stopped");
    let resources: Api<UIResource> = Api::all(client);
    eventually("the UIResources to be a and c", || async {
        let names: Vec<String> =
            resources.list(&Default::default()).await.unwrap().items.iter().map(|r| r.name_any()).collect();
        names == ["(Tiltfile)", "a", "c"]
    })
    .await;
}

fn tilt_ci(dir: &Path, tiltfile: &str, timeout: &str) -> (bool, String) {
    std::fs::write(dir.join("Tiltfile"), tiltfile).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tilt"))
        .args(["ci", "--port", "0", "--timeout", timeout])
        .current_dir(dir)
        .env("HOME", dir)
        .env("KUBECONFIG", dir.join("kubeconfig"))
        .env_remove("TILT_CONFIG")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn tilt_ci_succeeds_fails_and_times_out_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out) = tilt_ci(
        dir.path(),
        "local_resource('build', cmd='echo building')\nlocal_resource('check', cmd='true', resource_deps=['build'])\n",
        "60s",
    );
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS") && out.contains("building"), "{out}");

    let (ok, out) = tilt_ci(
        dir.path(),
        "local_resource('good', cmd='true')\nlocal_resource('bad', cmd='echo oops; exit 3')\n",
        "60s",
    );
    assert!(!ok);
    assert!(out.contains("FAILED") && out.contains("bad") && out.contains("code 3"), "{out}");

    let (ok, out) = tilt_ci(
        dir.path(),
        "local_resource('slow', serve_cmd='sleep 60', readiness_probe=probe(exec=exec_action(['false'])))\n",
        "2s",
    );
    assert!(!ok);
    assert!(out.contains("TIMED OUT") && out.contains("slow"), "{out}");

    let (ok, out) = tilt_ci(dir.path(), "local_resource('x', cmd='true', bogus=1)\n", "60s");
    assert!(!ok);
    assert!(out.contains("bogus"), "{out}");
}

#[tokio::test]
async fn tilt_down_deletes_what_the_tiltfile_declared_and_can_stop_tilt_up() {
    let mut tilt = TiltUp::with_tiltfile("local_resource('srv', serve_cmd='sleep 300')\n");
    let cmds: Api<Cmd> = Api::all(tilt.client().await);
    eventually("srv to run", || async { serve_pid(&cmds, "srv:serve").await.is_some() }).await;
    let pid = serve_pid(&cmds, "srv:serve").await.unwrap();
    let out = tilt.tilt_command(&["down"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eventually("the Cmd to be deleted", || async { cmds.get_opt("srv:serve").await.unwrap().is_none() }).await;
    eventually("its process to stop", || async {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    })
    .await;
    let out = tilt.tilt_command(&["down", "--stop"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(5);
    while tilt.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(tilt.child.try_wait().unwrap().is_some(), "tilt up stopped");
}

#[test]
fn tilt_down_without_tilt_up_says_so() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tilt"))
        .arg("down")
        .env("HOME", home.path())
        .env_remove("TILT_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no tilt up found") && err.contains("tilt up"), "{err}");
}

/// A burst of 1,000 writes restarts the server exactly once, and the new process sees the final content.
#[tokio::test]
async fn a_burst_of_writes_restarts_the_server_once_with_the_final_content() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("src")).unwrap();
    std::fs::write(home.path().join("src/data"), "0").unwrap();
    std::fs::write(
        home.path().join("Tiltfile"),
        "local_resource('srv', serve_cmd='echo started $(cat src/data); exec sleep 300', deps=['src'])\n",
    )
    .unwrap();
    // A generous debounce: the burst below is written by a test process that may be descheduled on a
    // loaded CI machine, and a pause longer than the debounce legitimately splits a burst.
    let tilt = TiltUp::start_with(home, &[("TILT_FILE_DEBOUNCE_MS", "1000")]);
    let cmds: Api<Cmd> = Api::all(tilt.client().await);
    let logs = || {
        let out = tilt.tilt_command(&["logs", "srv"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("started"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    eventually("the first start", || async { logs() == ["srv │ started 0"] }).await;
    let first = serve_pid(&cmds, "srv:serve").await.unwrap();
    for i in 1..=1000 {
        std::fs::write(tilt.home.path().join("src/data"), i.to_string()).unwrap();
    }
    eventually("the restart", || async {
        serve_pid(&cmds, "srv:serve").await.is_some_and(|p| p != first) && logs().len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(logs(), ["srv │ started 0", "srv │ started 1000"], "exactly one restart, with the final content");
}

/// Names with spaces and parentheses (`bootstrap (secrets)`) go through every API call percent-encoded: the
/// Tiltfile controller creates the objects, the controllers update their status by name, `tilt ci` finishes,
/// and `tilt get`/`trigger`, kubectl and the kube client find them by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_spaces_and_parentheses_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let tiltfile = "local_resource(name='bootstrap (secrets)', cmd='echo boot')\n\
                    local_resource(name='srv (x)', serve_cmd='sleep 300', resource_deps=['bootstrap (secrets)'])\n";
    let (ok, out) = tilt_ci(dir.path(), tiltfile, "60s");
    assert!(ok && out.contains("SUCCESS"), "{out}");

    let up = TiltUp::with_tiltfile(tiltfile);
    let name = "bootstrap (secrets)";
    let client = up.client().await;
    let resources: Api<UIResource> = Api::all(client);
    poll("srv (x) ready", || {
        let resources = resources.clone();
        async move {
            let r = resources.get_opt(&tilt_apis::path_name("srv (x)")).await.ok().flatten()?;
            let conditions = r.status?.conditions;
            conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True").then_some(())
        }
    })
    .await;
    let get = up.tilt_command(&["get", "uiresource", name]).output().unwrap();
    let text = String::from_utf8_lossy(&get.stdout);
    assert!(get.status.success() && text.contains(name), "{text}{}", String::from_utf8_lossy(&get.stderr));
    let trigger = up.tilt_command(&["trigger", name]).output().unwrap();
    assert!(trigger.status.success(), "{}", String::from_utf8_lossy(&trigger.stderr));
    let by_kubectl = up.kubectl_ok(&["get", "cmd", "srv (x):serve", "-o", "jsonpath={.status.ready}"]);
    assert_eq!(by_kubectl, "true");
}
