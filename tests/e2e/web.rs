//! The web UI's server against a real `tilt up`: Go Tilt's routes and their auth rules (through curl), and
//! the `/ws/view` stream (through a WebSocket client): a complete view, then deltas with contiguous log
//! checkpoints, deletion stubs, and button clicks written back through `/proxy`.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::TiltUp;

/// How a request proves it may use `/api` and `/proxy`.
enum Auth<'a> {
    None,
    Cookie(&'a str),
    Header(&'a str),
}

/// The web UI of one `tilt up`.
pub struct Web {
    base: String,
    token: String,
}

impl Web {
    /// Loads the page, as a browser would, and keeps the token cookie it sets.
    fn open(up: &TiltUp) -> Web {
        Web::at(&up.web_url)
    }

    /// [`Web::open`] for the web UI at `url` (`http://localhost:PORT/`).
    pub fn at(url: &str) -> Web {
        // localhost may resolve to ::1 first; the server listens on 127.0.0.1.
        let base = url.replace("localhost", "127.0.0.1");
        let out = Command::new("curl").args(["-s", "-D", "-", "-o", "/dev/null", &base]).output().unwrap();
        let headers = String::from_utf8_lossy(&out.stdout).to_string();
        let token = headers
            .lines()
            .find_map(|l| l.to_ascii_lowercase().starts_with("set-cookie: tilt-token=").then(|| l.to_string()))
            .and_then(|l| l.split_once('=').map(|(_, v)| v.split(';').next().unwrap_or_default().trim().to_string()))
            .unwrap_or_else(|| panic!("the page set no Tilt-Token cookie:\n{headers}"));
        Web { base, token }
    }

    /// `(status, body)` of a request.
    fn request(&self, method: &str, path: &str, body: Option<&str>, auth: Auth<'_>, extra: &[&str]) -> (u16, String) {
        let url = format!("{}{}", self.base, path.trim_start_matches('/'));
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-X", method, "-o", "-", "-w", "\n%{http_code}"]);
        match auth {
            Auth::None => {}
            Auth::Cookie(t) => {
                cmd.args(["-H", &format!("Cookie: Tilt-Token={t}")]);
            }
            Auth::Header(t) => {
                cmd.args(["-H", &format!("X-Tilt-Token: {t}")]);
            }
        }
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "--data-binary", b]);
        }
        for h in extra {
            cmd.args(["-H", h]);
        }
        let out = cmd.arg(&url).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path, None, Auth::Cookie(&self.token.clone()), &[])
    }

    fn post(&self, path: &str, body: &str) -> (u16, String) {
        self.request("POST", path, Some(body), Auth::Cookie(&self.token.clone()), &[])
    }

    pub fn view(&self) -> Value {
        let (code, body) = self.get("/api/view");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Waits for the view to satisfy `ok`.
    fn wait_view(&self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.view();
            if ok(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; view: {v:#}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks UIButton `name` as the page does: PUT of `{metadata, status}` to its status through the proxy.
    fn click(&self, name: &str, inputs: Value) -> (u16, String) {
        let (code, body) = self.get(&format!("/proxy/apis/tilt.dev/v1alpha1/uibuttons/{name}"));
        assert_eq!(code, 200, "{body}");
        let button: Value = serde_json::from_str(&body).unwrap();
        let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string();
        let put = json!({"metadata": button["metadata"], "status": {"lastClickedAt": now, "inputs": inputs}});
        self.request(
            "PUT",
            &format!("/proxy/apis/tilt.dev/v1alpha1/uibuttons/{name}/status"),
            Some(&put.to_string()),
            Auth::Cookie(&self.token.clone()),
            &[],
        )
    }
}

fn resource<'a>(view: &'a Value, name: &str) -> Option<&'a Value> {
    view["uiResources"].as_array()?.iter().find(|r| r["metadata"]["name"] == name)
}

#[test]
fn routes_check_the_token_the_origin_and_their_input() {
    let up = TiltUp::with_tiltfile("local_resource('hello', serve_cmd='echo hi; sleep 3600')\n");
    let web = Web::open(&up);
    let token = web.token.clone();

    // The page, and the page again for its own routes.
    for path in ["/", "/r/hello/overview"] {
        let (code, body) = web.request("GET", path, None, Auth::None, &[]);
        assert_eq!(code, 200);
        assert!(body.to_ascii_lowercase().contains("<!doctype html"), "{path}: {body}");
    }

    // Every /api and /proxy route wants the token.
    for path in ["/api/view", "/api/websocket_token", "/proxy/apis/tilt.dev/v1alpha1/uiresources"] {
        assert_eq!(web.request("GET", path, None, Auth::None, &[]).0, 401, "{path}");
        assert_eq!(web.request("GET", path, None, Auth::Cookie("wrong"), &[]).0, 403, "{path}");
        assert_eq!(web.request("GET", path, None, Auth::Header(&token), &[]).0, 200, "{path}");
    }
    // A page of another origin cannot use it; the same origin can.
    let host = web.base.trim_start_matches("http://").trim_end_matches('/').to_string();
    let (code, body) = web.request("GET", "/api/view", None, Auth::Cookie(&token), &["Origin: http://evil.example"]);
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("origin"), "{body}");
    let same = format!("Origin: http://{host}");
    assert_eq!(web.request("GET", "/api/view", None, Auth::Cookie(&token), &[&same]).0, 200);
    // The socket wants the CSRF token of /api/websocket_token.
    assert_eq!(web.request("GET", "/ws/view?csrf=nope", None, Auth::Cookie(&token), &[]).0, 403);
    assert_eq!(web.get("/api/nothing-here").0, 404);

    let v = web.wait_view("hello and the Tiltfile", |v| {
        resource(v, "hello").is_some_and(|r| r["status"]["runtimeStatus"] == "ok")
            && resource(v, "(Tiltfile)").is_some_and(|r| r["status"]["updateStatus"] == "ok")
    });
    assert_eq!(v["isComplete"], true);
    assert_eq!(v["uiResources"][0]["metadata"]["name"], "(Tiltfile)", "the Tiltfile comes first");
    assert!(v["uiSession"]["status"]["tiltStartTime"].is_string());
    assert!(v["tiltStartTime"].is_string());
    assert!(resource(&v, "hello").unwrap()["status"]["localResourceInfo"]["pid"].as_i64().unwrap() > 0);
    let texts: Vec<&str> =
        v["logList"]["segments"].as_array().unwrap().iter().filter_map(|s| s["text"].as_str()).collect();
    assert!(texts.contains(&"hi\n"), "{texts:?}");

    // Trigger: exactly one known name.
    for (body, code) in [
        ("{bad", 400),
        (r#"{"manifest_names":["hello","(Tiltfile)"]}"#, 400),
        (r#"{"manifest_names":["nope"],"build_reason":16}"#, 404),
        (r#"{"manifest_names":["hello"],"build_reason":16}"#, 200),
    ] {
        let (got, text) = web.post("/api/trigger", body);
        assert_eq!(got, code, "{body}: {text}");
        assert!(code == 200 || !text.trim().is_empty(), "a 4xx says why");
    }
    // Trigger mode: Go Tilt's payload, nothing more.
    for (body, code) in [
        (r#"{"manifest_names":["hello"],"trigger_mode":1,"extra":1}"#, 400),
        (r#"{"manifest_names":["hello"],"trigger_mode":9}"#, 400),
        (r#"{"manifest_names":["nope"],"trigger_mode":2}"#, 404),
        (r#"{"manifest_names":["hello"],"trigger_mode":2}"#, 200),
    ] {
        assert_eq!(web.post("/api/override/trigger_mode", body).0, code, "{body}");
    }
    web.wait_view("manual trigger mode", |v| resource(v, "hello").is_some_and(|r| r["status"]["triggerMode"] == 2));
    // Tiltfile args.
    assert_eq!(web.post("/api/set_tiltfile_args", r#""not a list""#).0, 400);
    assert_eq!(web.post("/api/set_tiltfile_args", r#"["--flag","x"]"#).0, 200);
    let args = up.kubectl_ok(&["get", "tiltfile", "(Tiltfile)", "-o", "jsonpath={.spec.args}"]);
    assert_eq!(serde_json::from_str::<Value>(&args).unwrap(), json!(["--flag", "x"]));

    // Snapshots: `now` is the live view; no other id exists.
    let (code, body) = web.get("/api/snapshot/now");
    assert_eq!(code, 200);
    assert!(serde_json::from_str::<Value>(&body).unwrap()["view"]["uiResources"].is_array());
    assert_eq!(web.get("/api/snapshot/abc").0, 404);
}

/// The messages of one socket, with when each arrived.
struct Socket {
    stream: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl Socket {
    async fn open(web: &Web) -> Socket {
        let (code, csrf) = web.get("/api/websocket_token");
        assert_eq!(code, 200);
        let url = format!("{}ws/view?csrf={}", web.base.replace("http://", "ws://"), csrf.trim());
        let (stream, _) = tokio_tungstenite::connect_async(url).await.expect("the socket opens");
        Socket { stream }
    }

    async fn next(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.stream.next())
                .await
                .expect("a message within 30 s")
                .expect("the socket stays open")
                .unwrap();
            if let Message::Text(t) = msg {
                return serde_json::from_str(&t).unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_sends_a_complete_view_then_deltas() {
    // `bulk` prints ~600 KB at once: more than one message's worth of backlog.
    let tiltfile = "local_resource('ticker', serve_cmd='i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.02; done')\n\
                    local_resource('other', serve_cmd='sleep 3600')\n\
                    local_resource('bulk', serve_cmd='python3 -c \"print(chr(10).join([str(i) + 999 * chr(120) for i in range(600)]))\"; sleep 3600')\n";
    let up = TiltUp::with_tiltfile(tiltfile);
    let web = Web::open(&up);
    web.wait_view("the servers and bulk's lines", |v| {
        ["ticker", "other", "bulk"].iter().all(|n| resource(v, n).is_some_and(|r| r["status"]["runtimeStatus"] == "ok"))
            && v["logList"]["segments"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["text"].as_str().is_some_and(|t| t.starts_with("599x"))))
    });
    let connected_at = jiff::Timestamp::now();
    let mut socket = Socket::open(&web).await;
    let first = socket.next().await;
    assert_eq!(first["isComplete"], true);
    let names: Vec<&str> =
        first["uiResources"].as_array().unwrap().iter().map(|r| r["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["(Tiltfile)", "bulk", "other", "ticker"]);
    let buttons: Vec<&str> =
        first["uiButtons"].as_array().unwrap().iter().map(|b| b["metadata"]["name"].as_str().unwrap()).collect();
    assert!(buttons.contains(&"ticker-disable") && buttons.contains(&"ticker:trigger"), "{buttons:?}");
    assert!(first["uiResources"][0]["metadata"].get("managedFields").is_none());
    let mut checkpoint = first["logList"]["toCheckpoint"].as_u64().unwrap();
    assert_eq!(first["logList"]["fromCheckpoint"], 0);

    // Deltas: only new lines, contiguous checkpoints, no gap in the ticks, at most one message per 200 ms.
    let tick = |s: &Value| s["text"].as_str()?.strip_prefix("tick ")?.trim().parse::<u64>().ok();
    let mut last_tick = first["logList"]["segments"].as_array().unwrap().iter().filter_map(tick).max();
    let mut arrivals = Vec::new();
    let mut ticks_seen = 0;
    let mut backlog_messages = 0;
    while ticks_seen < 60 {
        let m = socket.next().await;
        // The backlog comes in several messages at once; only later ones are paced.
        let times: Vec<jiff::Timestamp> = m["logList"]["segments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["time"].as_str()?.parse().ok())
            .collect();
        if !times.is_empty() && times.iter().all(|t| *t < connected_at) {
            backlog_messages += 1;
        } else {
            arrivals.push(Instant::now());
        }
        assert!(m.get("isComplete").is_none(), "a delta is not complete: {m}");
        let Some(list) = m.get("logList") else { continue };
        assert_eq!(list["fromCheckpoint"].as_u64(), Some(checkpoint), "checkpoints are contiguous");
        let to = list["toCheckpoint"].as_u64().unwrap();
        let segments = list["segments"].as_array().unwrap();
        assert_eq!(segments.len() as u64, to - checkpoint, "every line between the checkpoints, once");
        for s in segments {
            let span = s["spanId"].as_str().unwrap();
            assert!(list["spans"][span]["manifestName"].is_string(), "{span}");
            assert!(!span.starts_with("build:") || span.contains("(Tiltfile)"), "a server's output is runtime: {span}");
            if let Some(t) = tick(s) {
                if let Some(prev) = last_tick {
                    assert_eq!(t, prev + 1, "no tick lost or repeated");
                }
                last_tick = Some(t);
                ticks_seen += 1;
            }
        }
        checkpoint = to;
    }
    assert!(backlog_messages >= 1, "600 KB of backlog comes in more than one message");
    let gaps: Vec<Duration> = arrivals.windows(2).map(|w| w[1] - w[0]).collect();
    // Sent at least 200 ms apart; arrival may bunch a little.
    assert!(gaps.iter().all(|g| *g >= Duration::from_millis(120)), "{gaps:?}");

    // Removing a resource from the Tiltfile sends its deletion stub.
    std::fs::write(up.home.path().join("Tiltfile"), tiltfile.lines().next().unwrap()).unwrap();
    let stub = loop {
        let m = socket.next().await;
        let other = m["uiResources"].as_array().and_then(|rs| rs.iter().find(|r| r["metadata"]["name"] == "other"));
        if let Some(r) = other.filter(|r| r["metadata"].get("deletionTimestamp").is_some()) {
            break r.clone();
        }
    };
    assert!(stub.get("status").is_none() && stub.get("spec").is_none(), "{stub}");

    // The disable switch, clicked as the page clicks it, disables the resource and stops its server.
    let (code, body) = web.click("ticker-disable", json!([{"name": "action", "hidden": {"value": "on"}}]));
    assert_eq!(code, 200, "{body}");
    let mut changes: BTreeMap<String, Value> = BTreeMap::new();
    loop {
        let m = socket.next().await;
        for r in m["uiResources"].as_array().into_iter().flatten() {
            changes.insert(r["metadata"]["name"].as_str().unwrap().to_string(), r.clone());
        }
        let ticker = &changes.get("ticker").cloned().unwrap_or_default();
        if ticker["status"]["disableStatus"]["state"] == "Disabled"
            && ticker["status"]["localResourceInfo"]["pid"].as_i64().unwrap_or(0) == 0
        {
            break;
        }
    }
    socket.stream.close(None).await.unwrap();
}

#[test]
fn a_busy_port_is_a_one_line_error_naming_the_flag() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("Tiltfile"), "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tilt"))
        .args(["up", "--api-port", "0", "--host", "127.0.0.1", "--port", &port])
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("KUBECONFIG", home.path().join("kubeconfig"))
        .env_remove("TILT_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&port) && err.contains("--port"), "{err}");
}

#[test]
fn snapshot_view_serves_a_saved_snapshot() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("snap.json");
    let snapshot = json!({"view": {"uiResources": [{"metadata": {"name": "api"}}], "isComplete": true},
                          "createdAt": "2026-12-04T10:00:00Z"});
    std::fs::write(&file, snapshot.to_string()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tilt"))
        .args(["snapshot", "view", "--port", "0"])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let url = line.trim().strip_prefix("Serving snapshot at ").unwrap_or_else(|| panic!("{line}")).to_string();
    let base = url.trim_end_matches("snapshot/local").replace("localhost", "127.0.0.1");
    let web = {
        let out = Command::new("curl").args(["-s", "-D", "-", "-o", "/dev/null", &base]).output().unwrap();
        let headers = String::from_utf8_lossy(&out.stdout).to_string();
        let token = headers.split("Tilt-Token=").nth(1).and_then(|t| t.split(';').next()).unwrap().to_string();
        Web { base, token }
    };
    let (code, body) = web.get("/api/snapshot/local");
    assert_eq!(code, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), snapshot);
    assert_eq!(web.post("/api/trigger", r#"{"manifest_names":["api"]}"#).0, 404, "a snapshot is read only");
    let _ = child.kill();
    let _ = child.wait();

    // Not a snapshot: a one-line error.
    std::fs::write(&file, "[]").unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_tilt")).args(["snapshot", "view", "--port", "0"]).arg(&file).output().unwrap();
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}
