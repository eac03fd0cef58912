//! `tilt up`'s terminal modes as a person meets them: the full-screen view and the prompt in a real
//! terminal (tmux: keys in with send-keys, the screen out with capture-pane), the log stream's filters, and
//! a terminal that cannot draw.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A tmux server of our own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// A detached session running `command` in a 130×40 terminal; `None` (a skip) when tmux is missing
    /// outside CI.
    fn start(command: &str) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            assert!(std::env::var("CI").is_err(), "tmux is missing (apt-get install tmux)");
            eprintln!("skipping: tmux is not installed");
            return None;
        }
        let socket = format!("tilt-test-{}-{}", std::process::id(), rand_suffix());
        let ok = Command::new("tmux")
            .args(["-L", &socket, "new-session", "-d", "-s", "t", "-x", "130", "-y", "40", command])
            .status()
            .unwrap()
            .success();
        assert!(ok, "tmux new-session");
        Some(Tmux { socket })
    }

    fn keys(&self, keys: &[&str]) {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket, "send-keys", "-t", "t"]).args(keys);
        assert!(cmd.status().unwrap().success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux").args(["-L", &self.socket, "capture-pane", "-p", "-t", "t"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Waits until the screen satisfies `ok`; returns it.
    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).stderr(Stdio::null()).status();
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
}

/// The shell command that runs `tilt up ARGS` in `home`, then stays (so the screen can be read after
/// tilt exits).
fn tilt_up_command(home: &Path, args: &str, env: &str) -> String {
    format!(
        "cd {home} && env HOME={home} KUBECONFIG={home}/kubeconfig TERM=xterm-256color {env} {bin} up --port 0 {args}; \
         echo TILT-EXITED-$?; sleep 60",
        home = home.display(),
        bin = env!("CARGO_BIN_EXE_tilt"),
    )
}

const TILTFILE: &str = "local_resource('ticker', serve_cmd='i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.5; done', labels=['backend'])\n\
local_resource('broken', cmd='echo compiling; exit 2', labels=['backend'])\n\
local_resource('web', serve_cmd='sleep 3600')\n";

fn project() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("Tiltfile"), TILTFILE).unwrap();
    home
}

#[test]
fn the_full_screen_view_shows_resources_and_logs_and_takes_keys() {
    let home = project();
    let Some(tmux) = Tmux::start(&tilt_up_command(home.path(), "--legacy", "")) else { return };
    let s = tmux.wait("the resources, ready", |s| {
        s.contains("RESOURCE NAME") && s.contains("Ready") && s.contains("exited with code 2") && s.contains("tick 2")
    });
    let line = |s: &str, needle: &str| s.lines().find(|l| l.contains(needle)).unwrap_or_default().to_string();
    assert!(line(&s, "(Tiltfile)").contains("OK"), "{s}");
    assert!(line(&s, "broken").contains("Error"), "{s}");
    assert!(s.contains("── backend"), "label groups: {s}");
    assert!(line(&s, "✓").contains("1 error"), "the status bar counts: {s}");
    assert!(line(&s, "ticker ┊ tick").contains("ticker ┊ tick"), "the log pane: {s}");

    // Select `ticker` (Tiltfile, broken, ticker), disable it, see it disabled and its logs stop.
    tmux.keys(&["j", "j", "d"]);
    tmux.wait("ticker disabled", |s| line(s, "ticker ").contains("Disabled") && s.contains("⊘ 1 disabled"));
    // Its runtime tab, the filter, the log size.
    tmux.keys(&["3"]);
    tmux.wait("the runtime tab of ticker", |s| s.contains("(ticker)"));
    tmux.keys(&["/", "w", "e", "Enter"]);
    let s = tmux.wait("the filter", |s| s.contains("filter: we"));
    assert!(!s.contains("broken"), "filtered out: {s}");
    // (No Escape here: a terminal cannot tell Escape then `t` from Alt-t when they come together.)
    tmux.keys(&["/", "BSpace", "BSpace", "Enter"]);
    tmux.wait("the filter cleared", |s| s.contains("broken") && !s.contains("filter:"));
    tmux.keys(&["t"]);
    tmux.wait("web triggered", |s| s.contains("Triggered web"));

    // `q` quits tilt up and gives the terminal back.
    tmux.keys(&["q"]);
    let s = tmux.wait("tilt to exit", |s| s.contains("TILT-EXITED-0"));
    assert!(s.contains("quitting, shutting down") && !s.contains("RESOURCE NAME"), "the screen is restored: {s}");
}

#[test]
fn sigterm_restores_the_terminal_too() {
    let home = project();
    let Some(tmux) = Tmux::start(&tilt_up_command(home.path(), "--legacy", "")) else { return };
    tmux.wait("the view", |s| s.contains("RESOURCE NAME"));
    // The tilt process is the one whose cwd is the project.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "for p in $(pgrep -x tilt); do [ \"$(readlink /proc/$p/cwd)\" = '{}' ] && echo $p; done",
            home.path().display()
        ))
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&out.stdout).lines().next().expect("tilt's pid").trim().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let s = tmux.wait("tilt to exit", |s| s.contains("TILT-EXITED-"));
    assert!(s.contains("SIGTERM received") && !s.contains("RESOURCE NAME"), "{s}");
}

#[test]
fn the_prompt_opens_the_browser_and_switches_to_the_stream() {
    let home = project();
    let opened = home.path().join("opened");
    let browser = home.path().join("browser.sh");
    std::fs::write(&browser, format!("#!/bin/sh\necho \"$1\" > {}\n", opened.display())).unwrap();
    std::fs::set_permissions(&browser, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let Some(tmux) = Tmux::start(&tilt_up_command(home.path(), "", &format!("BROWSER={}", browser.display()))) else {
        return;
    };
    let s = tmux.wait("the prompt", |s| s.contains("(ctrl-c) to exit"));
    for line in [
        "Tilt started on http://localhost:",
        "(space) to open the browser",
        "(s) to stream logs",
        "(t) to open the terminal view",
    ] {
        assert!(s.contains(line), "{line}: {s}");
    }
    tmux.keys(&["Space"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !opened.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = std::fs::read_to_string(&opened).expect("the browser was started");
    assert!(url.starts_with("http://localhost:"), "{url}");
    tmux.keys(&["s"]);
    tmux.wait("the stream", |s| s.contains("ticker ┊ tick"));
    tmux.keys(&["C-c"]);
    tmux.wait("tilt to exit", |s| s.contains("TILT-EXITED-"));
}

#[test]
fn the_stream_filters_by_source_and_resource() {
    let home = project();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tilt"))
        .args(["up", "--port", "0", "--api-port", "0", "--stream", "--log-source", "build", "--log-resource", "broken"])
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("KUBECONFIG", home.path().join("kubeconfig"))
        .env_remove("TILT_CONFIG")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && !seen.iter().any(|l: &String| l.contains("compiling")) {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
    }
    // A little longer, for lines that must not come.
    let until = Instant::now() + Duration::from_secs(2);
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        if let Ok(l) = rx.recv_timeout(left) {
            seen.push(l);
        }
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let logs: Vec<&String> = seen.iter().filter(|l| l.contains(" ┊ ")).collect();
    assert!(logs.iter().any(|l| l.trim_start() == "broken ┊ compiling"), "{seen:#?}");
    assert!(logs.iter().all(|l| l.trim_start().starts_with("broken ┊")), "only broken's build lines: {seen:#?}");
    assert!(!seen.iter().any(|l| l.starts_with('▶')), "--stream prints no status lines: {seen:#?}");
}

#[test]
fn a_terminal_that_cannot_draw_gets_a_one_line_error() {
    let home = project();
    let out = Command::new(env!("CARGO_BIN_EXE_tilt"))
        .args(["up", "--port", "0", "--legacy"])
        .current_dir(home.path())
        .env("HOME", home.path())
        .env("TERM", "dumb")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--stream"), "{err}");
}

/// Issue 15: the full-screen view works the same on a session of a shared apiserver (`--api-context`).
#[test]
fn the_full_screen_view_works_on_a_shared_apiserver_session() {
    let Some(cluster) = crate::kube_cluster::scaleout_cluster() else { return };
    crate::crds::install(cluster, &["--namespaced"]);
    let home = project();
    std::fs::copy(&cluster.kubeconfig, home.path().join("kubeconfig")).unwrap();
    let args = format!("--legacy --api-context real --session hud-{}", std::process::id());
    let Some(tmux) = Tmux::start(&tilt_up_command(home.path(), &args, "")) else { return };
    let line = |s: &str, needle: &str| s.lines().find(|l| l.contains(needle)).unwrap_or_default().to_string();
    // Tilt's names (`(Tiltfile)`), not the ones the apiserver stores.
    let s = tmux.wait("the resources, ready", |s| {
        line(s, "(Tiltfile)").contains("OK")
            && s.contains("Ready")
            && s.contains("exited with code 2")
            && s.contains("tick 2")
    });
    assert!(line(&s, "broken").contains("Error"), "{s}");
    tmux.keys(&["q"]);
    tmux.wait("tilt to exit", |s| s.contains("TILT-EXITED-0"));
}
