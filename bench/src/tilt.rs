//! Driving the real `tilt` binary: `tilt up` in an isolated home (its own `HOME`, `TILT_CONFIG` and
//! `KUBECONFIG`), its API reached with the bearer token and CA of the kubeconfig it writes, and `tilt ci`.
//!
//! `tilt up` runs in its own process group; stopping it sends SIGTERM to tilt (which stops its commands) and
//! waits, then SIGKILLs whatever is left of the group.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::client::{Conn, Endpoint, Req};
use crate::proc::Group;

/// The tilt.dev API group prefix.
pub const API: &str = "/apis/tilt.dev/v1alpha1";

/// Nanoseconds since the Unix epoch (CLOCK_REALTIME), the clock `status` timestamps and stamp files use.
pub fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
}

/// An API timestamp (RFC 3339, e.g. a MicroTime) in nanoseconds since the Unix epoch.
pub fn parse_time(v: &Value) -> Option<i64> {
    let ts: jiff::Timestamp = v.as_str()?.parse().ok()?;
    i64::try_from(ts.as_nanosecond()).ok()
}

/// The `tilt` binary next to this executable (`bash bench/run.sh` builds both into the same directory).
pub fn default_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("tilt")))
        .unwrap_or_else(|| PathBuf::from("tilt"))
}

/// Points `cmd` at a private home under `home` so that it reads and writes no user file.
fn isolate(cmd: &mut Command, home: &Path) {
    cmd.env("HOME", home)
        .env("TILT_CONFIG", home.join("tilt-config"))
        .env("KUBECONFIG", home.join("kubeconfig"))
        .env_remove("TILT_LOG")
        .env_remove("TILT_API_PORT")
        .env("TILT_PORT", "0")
        .env_remove("TILT_FILE_DEBOUNCE_MS");
}

/// A running `tilt up`.
pub struct TiltUp {
    group: Group,
    /// tilt's pid.
    pub pid: u32,
    /// Its API server.
    pub ep: Endpoint,
    /// When it was spawned (monotonic).
    pub spawned: Instant,
    /// When it was spawned (CLOCK_REALTIME ns, comparable with API timestamps).
    pub spawned_ns: i64,
    /// How long after spawning it printed the line with its API URL.
    pub url_line: Duration,
    conn: Option<Conn>,
    tail: Arc<Mutex<VecDeque<String>>>,
    stderr: PathBuf,
}

impl TiltUp {
    /// Spawns `tilt up -f TILTFILE [extra…]` with `home` as its home and waits (≤ 30 s) for the stdout line
    /// with its API URL; then reads its kubeconfig for the token and CA.
    pub async fn start(bin: &Path, tiltfile: &Path, extra: &[&str], home: &Path) -> Result<TiltUp> {
        Ok(Self::start_with(bin, tiltfile, extra, home, None).await?.0)
    }

    /// Like [`TiltUp::start`], also spawning `companion` (in its own process group, with the same isolated
    /// `HOME`, `TILT_CONFIG` and `KUBECONFIG`) right after tilt, before anything waits on tilt: a user's
    /// script started at the same moment as `tilt up`.
    pub async fn start_with(
        bin: &Path,
        tiltfile: &Path,
        extra: &[&str],
        home: &Path,
        companion: Option<&mut Command>,
    ) -> Result<(TiltUp, Option<Group>)> {
        std::fs::create_dir_all(home)?;
        let stderr = home.join("tilt.stderr");
        let mut cmd = Command::new(bin);
        cmd.arg("up").arg("-f").arg(tiltfile).args(extra);
        cmd.current_dir(tiltfile.parent().unwrap_or(Path::new("/")));
        isolate(&mut cmd, home);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(std::fs::File::create(&stderr)?);
        let spawned_ns = now_ns();
        let spawned = Instant::now();
        let mut group = Group::spawn(&mut cmd).with_context(|| format!("starting {}", bin.display()))?;
        let companion = match companion {
            Some(c) => {
                isolate(c, home);
                Some(Group::spawn(c).context("starting the companion process")?)
            }
            None => None,
        };
        let pid = group.pid;
        let stdout = group.take_stdout().context("tilt stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                push_tail(&tail, &line);
                if let Some(url) = url_in(&line) {
                    return anyhow::Ok(Some(url));
                }
            }
            Ok(None)
        })
        .await;
        let url_line = spawned.elapsed();
        let why = match found {
            Ok(Ok(Some(url))) => Ok(url),
            Err(_) => Err("no API URL on stdout within 30 s".to_string()),
            Ok(Err(e)) => Err(format!("reading its stdout: {e}")),
            Ok(Ok(None)) => Err(format!("it exited ({:?})", group.try_wait().ok().flatten())),
        };
        let url = match why {
            Ok(url) => url,
            Err(why) => {
                let err = std::fs::read_to_string(&stderr).unwrap_or_default();
                bail!("tilt up: {why}; stderr: {}", last_chars(&err, 1500));
            }
        };
        // Keep draining stdout so that tilt never blocks on a full pipe; keep the last lines for errors.
        let drain_tail = tail.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                push_tail(&drain_tail, &line);
            }
        });
        let ep = endpoint(&home.join("tilt-config"), &url)?;
        Ok((TiltUp { group, pid, ep, spawned, spawned_ns, url_line, conn: None, tail, stderr }, companion))
    }

    /// GETs `path` (JSON), reconnecting once if the kept connection broke.
    pub async fn get(&mut self, path: &str) -> Result<Value> {
        let req = Req::get(path);
        for attempt in 0..2 {
            if self.conn.is_none() {
                self.conn = Some(self.ep.connect().await?);
            }
            let conn = self.conn.as_mut().context("connection")?;
            match conn.send(&req).await {
                Ok(body) => return Ok(serde_json::from_slice(&body)?),
                Err(_) if attempt == 0 => self.conn = None,
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns")
    }

    /// Items of a LIST of `plural` (e.g. `uiresources`) in the tilt.dev group.
    pub async fn list(&mut self, plural: &str) -> Result<Vec<Value>> {
        let v = self.get(&format!("{API}/{plural}")).await?;
        Ok(v["items"].as_array().cloned().unwrap_or_default())
    }

    /// Fails with its stderr when tilt has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.group.try_wait()? {
            bail!("tilt up exited ({status}); {}", self.diagnostics());
        }
        Ok(())
    }

    /// The end of its stdout and stderr, for error messages.
    pub fn diagnostics(&self) -> String {
        let out: Vec<String> = self.tail.lock().map(|t| t.iter().cloned().collect()).unwrap_or_default();
        let err = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        format!("stdout tail: {}; stderr tail: {}", last_chars(&out.join(" / "), 800), last_chars(&err, 800))
    }

    /// SIGTERM, wait up to `grace` for tilt to exit, then SIGKILL whatever is left of its process group.
    /// Returns how long tilt took to exit after SIGTERM (None if it had to be killed).
    pub async fn stop(self, grace: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        let status = self.group.stop(libc::SIGTERM, false, grace).await;
        let took = t0.elapsed();
        status.filter(|_| took < grace).map(|_| took)
    }
}

fn push_tail(tail: &Mutex<VecDeque<String>>, line: &str) {
    if let Ok(mut t) = tail.lock() {
        if t.len() >= 40 {
            t.pop_front();
        }
        t.push_back(line.to_string());
    }
}

fn last_chars(s: &str, n: usize) -> String {
    let chars: Vec<char> = s.trim().chars().collect();
    chars[chars.len().saturating_sub(n)..].iter().collect()
}

/// The `https://127.0.0.1:PORT` URL in a line, if any.
fn url_in(line: &str) -> Option<String> {
    let start = line.find("https://")?;
    let url: String = line[start..].chars().take_while(|c| !c.is_whitespace() && *c != ')' && *c != ',').collect();
    Some(url.trim_end_matches('/').to_string())
}

/// An endpoint for `url` with the token and CA of the kubeconfig at `path`.
fn endpoint(path: &Path, url: &str) -> Result<Endpoint> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config: Value = serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let token = config["users"][0]["user"]["token"].as_str().context("kubeconfig without a token")?;
    let ca =
        config["clusters"][0]["cluster"]["certificate-authority-data"].as_str().context("kubeconfig without a CA")?;
    let ca = base64::engine::general_purpose::STANDARD.decode(ca).context("decoding the CA")?;
    Endpoint::https(url, &String::from_utf8(ca)?, Some(token))
}

/// Runs `tilt ci -f TILTFILE` with `home` as its home; returns its wall time and whether it exited 0, or an
/// error if it did not finish within `limit` (it is then killed).
pub async fn ci(bin: &Path, tiltfile: &Path, home: &Path, limit: Duration) -> Result<(Duration, bool)> {
    std::fs::create_dir_all(home)?;
    let mut cmd = Command::new(bin);
    cmd.arg("ci").arg("-f").arg(tiltfile).arg("--timeout").arg(format!("{}s", limit.as_secs().max(1)));
    cmd.current_dir(tiltfile.parent().unwrap_or(Path::new("/")));
    isolate(&mut cmd, home);
    let log = home.join("tilt-ci.log");
    cmd.stdin(Stdio::null()).stdout(std::fs::File::create(&log)?).stderr(Stdio::null());
    let t0 = Instant::now();
    let mut group = Group::spawn(&mut cmd).with_context(|| format!("starting {} ci", bin.display()))?;
    match tokio::time::timeout(limit + Duration::from_secs(5), group.wait()).await {
        Ok(status) => {
            let took = t0.elapsed();
            let ok = status?.success();
            group.stop(libc::SIGKILL, true, Duration::ZERO).await;
            Ok((took, ok))
        }
        Err(_) => {
            group.stop(libc::SIGTERM, false, Duration::from_secs(2)).await;
            let out = std::fs::read_to_string(&log).unwrap_or_default();
            bail!("tilt ci did not finish within {} s: {}", limit.as_secs(), last_chars(&out, 800))
        }
    }
}
