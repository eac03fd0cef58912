//! A `tilt up` in an isolated HOME/KUBECONFIG, stopped (and reaped) when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};

pub struct TiltUp {
    pub home: tempfile::TempDir,
    pub child: Child,
    pub url: String,
    /// The web UI, `http://localhost:PORT/`.
    pub web_url: String,
}

impl TiltUp {
    /// Starts `tilt up` with HOME and KUBECONFIG inside a fresh temp dir.
    pub fn start() -> TiltUp {
        let home = tempfile::tempdir().unwrap();
        Self::start_in(home)
    }

    /// Starts `tilt up` in an existing temp HOME (whose kubeconfig a test may have prepared).
    pub fn start_in(home: tempfile::TempDir) -> TiltUp {
        Self::start_with(home, &[])
    }

    /// Like `start_in`, with extra environment variables.
    pub fn start_with(home: tempfile::TempDir, env: &[(&str, &str)]) -> TiltUp {
        let tiltfile = home.path().join("Tiltfile");
        Self::start_at(home, &tiltfile, env)
    }

    /// Starts `tilt up -f TILTFILE` (a project anywhere, e.g. inside HOME) with HOME's kubeconfig.
    pub fn start_at(home: tempfile::TempDir, tiltfile: &Path, env: &[(&str, &str)]) -> TiltUp {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tilt"))
            .args(["up", "--api-port", "0", "-f"])
            .arg(tiltfile)
            .env("HOME", home.path())
            .env("KUBECONFIG", kubeconfig_path(home.path()))
            .env_remove("TILT_CONFIG")
            .env_remove("TILT_API_PORT")
            .env("TILT_PORT", "0")
            .current_dir(home.path())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting tilt up");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next().and_then(Result::ok).unwrap_or_default();
        let web_line = lines.next().and_then(Result::ok).unwrap_or_default();
        // Keep draining stdout so tilt never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("https://"))
            .unwrap_or_else(|| panic!("tilt up printed no URL: {line:?}"))
            .to_string();
        let web_url = web_line
            .strip_prefix("Tilt started on ")
            .unwrap_or_else(|| panic!("tilt up did not say where the web UI is: {web_line:?}"))
            .to_string();
        TiltUp { home, child, url, web_url }
    }

    /// Starts `tilt up` on a Tiltfile with this text, in a fresh temp HOME.
    pub fn with_tiltfile(tiltfile: &str) -> TiltUp {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("Tiltfile"), tiltfile).unwrap();
        Self::start_in(home)
    }

    /// A `tilt` client command (logs, get, down, …) aimed at this instance.
    pub fn tilt_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tilt"));
        c.args(args)
            .env("HOME", self.home.path())
            .env("KUBECONFIG", self.kubeconfig())
            .env_remove("TILT_CONFIG")
            .env_remove("DOCKER_HOST");
        c
    }

    pub fn kubeconfig(&self) -> PathBuf {
        kubeconfig_path(self.home.path())
    }

    /// Runs kubectl against this instance's kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_env(args, &[])
    }

    pub fn kubectl_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.kubectl_command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("running kubectl")
    }

    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--context").arg("tilt").args(args);
        cmd.env("HOME", self.home.path()).env("KUBECONFIG", self.kubeconfig());
        cmd
    }

    /// Runs kubectl, asserts success and that nothing was printed on stderr (no warnings), returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert_clean(args, &out);
        String::from_utf8(out.stdout).unwrap()
    }

    /// A kube-rs client for this instance, through the merged kubeconfig.
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = Kubeconfig::read_from(self.kubeconfig()).unwrap();
        let options = KubeConfigOptions { context: Some("tilt".into()), ..Default::default() };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.unwrap();
        kube::Client::try_from(config).unwrap()
    }

    /// Sends SIGTERM and waits for exit; returns how long it took.
    pub fn stop(&mut self) -> Duration {
        let start = Instant::now();
        signal(&self.child, "TERM");
        while start.elapsed() < Duration::from_secs(10) {
            if self.child.try_wait().unwrap().is_some() {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("tilt up did not exit within 10s of SIGTERM");
    }
}

impl Drop for TiltUp {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            signal(&self.child, "TERM");
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && self.child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn kubeconfig_path(home: &Path) -> PathBuf {
    home.join(".kube").join("config")
}

pub fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill").arg(format!("-{sig}")).arg(child.id().to_string()).status();
}

/// Asserts a kubectl run succeeded and printed nothing on stderr.
pub fn assert_clean(args: &[&str], out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "kubectl {args:?} failed or warned: status {:?}\nstdout: {}\nstderr: {stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Polls `check` every 20 ms for up to 10 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Polls `check` every 20 ms for up to 10 s until it returns a value.
pub async fn poll<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Whether `python3` can import `module`. A missing module fails the test under `CI=true` (CI installs
/// tests/requirements.txt), and elsewhere lets the caller skip it.
pub fn python_module(module: &str) -> bool {
    let found = Command::new("python3").args(["-c", &format!("import {module}")]).status().is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "the Python package {module} is missing (python3 -m pip install -r tests/requirements.txt)"
        );
        eprintln!("skipping: the Python package {module} is not installed");
    }
    found
}

/// A child process in its own process group, whose whole group is stopped (TERM, then KILL) when dropped.
pub struct GroupChild(pub Child);

impl GroupChild {
    /// Spawns `cmd` as the leader of a new process group.
    pub fn spawn(cmd: &mut Command) -> GroupChild {
        use std::os::unix::process::CommandExt;
        GroupChild(cmd.process_group(0).spawn().expect("spawning a child process"))
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && self.0.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Whatever is left of the group (the leader, or children it left behind).
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.0.wait();
    }
}
