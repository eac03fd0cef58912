//! Child processes: the servers and tools under test run apart from the client so that their RSS is theirs
//! alone; plus what `/proc` tells about a process (RSS, CPU time, inotify watches).
//!
//! Each child is killed when its guard is dropped (also while unwinding from a panic) and, through
//! `PR_SET_PDEATHSIG`, when this process dies without unwinding. Our own `serve`/`floor` children also exit
//! when their stdin closes. Tools that start processes of their own run as a [`Group`] (their own process
//! group, killed as a whole), registered so that [`kill_groups`] can end them before an early exit.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::client::{Endpoint, Req};

/// Makes `cmd`'s child die with SIGKILL when this process (the spawning thread) dies, and be killed when its
/// handle is dropped.
pub fn guard(cmd: &mut Command) {
    cmd.kill_on_drop(true);
    // SAFETY: the closure runs between fork and exec and calls only prctl, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Waits up to `grace` for `child` to exit, then kills it.
async fn reap(child: &mut Child, grace: Duration) {
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

/// This binary re-executed with a server subcommand (`serve` or `floor`).
pub struct SelfServer {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// What it printed on its first stdout line: `url`, `ca_pem` and (for `serve`) `token`.
    pub info: Value,
}

impl SelfServer {
    /// Starts `current_exe() <subcommand>` and reads its JSON handshake line.
    pub async fn start(subcommand: &str) -> Result<SelfServer> {
        let exe = std::env::current_exe().context("locating this executable")?;
        let mut cmd = Command::new(exe);
        cmd.arg(subcommand).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        guard(&mut cmd);
        let mut child = cmd.spawn().with_context(|| format!("starting the {subcommand} child"))?;
        let pid = child.id().context("child pid")?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(20), BufReader::new(stdout).read_line(&mut line))
            .await
            .with_context(|| format!("the {subcommand} child did not report its address within 20 s"))??;
        let info: Value = serde_json::from_str(&line).with_context(|| format!("{subcommand} handshake {line:?}"))?;
        Ok(SelfServer { child, pid, info })
    }

    /// An HTTPS endpoint for it, with its bearer token when it has one.
    pub fn endpoint(&self) -> Result<Endpoint> {
        let url = self.info["url"].as_str().context("handshake without url")?;
        let ca = self.info["ca_pem"].as_str().context("handshake without ca_pem")?;
        Endpoint::https(url, ca, self.info["token"].as_str())
    }

    /// Closes its stdin (its signal to exit) and waits for it, killing it after 3 s.
    pub async fn stop(mut self) {
        drop(self.child.stdin.take());
        reap(&mut self.child, Duration::from_secs(3)).await;
    }
}

/// A throwaway single-member etcd on loopback, its data directory on tmpfs when there is one.
pub struct Etcd {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// Its client endpoint (plain HTTP; the gRPC gateway serves JSON there).
    pub ep: Endpoint,
    _dir: tempfile::TempDir,
}

/// The `etcd` executable on `PATH` (or `/usr/bin/etcd`), if installed.
pub fn find_etcd() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|d| d.join("etcd"))
        .find(|p| p.is_file())
}

/// Prefix of etcd data directories, followed by the benchmark's pid and a dash.
const DIR_PREFIX: &str = "tilt-bench-etcd-";

/// Removes data directories left by benchmark runs that were killed (their pid is gone).
fn remove_stale_dirs(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)).and_then(|r| r.split('-').next()) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Etcd {
    /// Starts `bin` on two free loopback ports and waits (≤ 20 s) until it answers a range request.
    pub async fn start(bin: &Path) -> Result<Etcd> {
        let shm = Path::new("/dev/shm");
        let parent = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
        remove_stale_dirs(&parent);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
            .tempdir_in(&parent)
            .context("creating etcd's data directory")?;
        let (client, peer) = (free_port()?, free_port()?);
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let mut cmd = Command::new(bin);
        cmd.arg("--name=bench")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=bench={peer_url}"))
            .arg("--logger=zap")
            .arg("--log-level=error")
            .env("ETCD_UNSUPPORTED_ARCH", std::env::consts::ARCH)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        guard(&mut cmd);
        let mut child = cmd.spawn().with_context(|| format!("starting {}", bin.display()))?;
        let pid = child.id().context("etcd pid")?;
        let addr: SocketAddr = ([127, 0, 0, 1], client).into();
        let ep = Endpoint::http(addr);
        let deadline = Instant::now() + Duration::from_secs(20);
        let probe = Req::with_body(http::Method::POST, "/v3/kv/range", "application/json", r#"{"key":"AA=="}"#);
        loop {
            if let Some(status) = child.try_wait()? {
                bail!("etcd exited during startup: {status}");
            }
            if let Ok(mut conn) = ep.connect().await
                && conn.send(&probe).await.is_ok()
            {
                break;
            }
            if Instant::now() > deadline {
                bail!("etcd did not answer on {addr} within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Etcd { child, pid, ep, _dir: dir })
    }

    /// Its version, from `/version`.
    pub async fn version(&self) -> String {
        match async { self.ep.connect().await?.send(&Req::get("/version")).await }.await {
            Ok(body) => serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["etcdserver"].as_str().map(str::to_string))
                .unwrap_or_else(|| "?".into()),
            Err(_) => "?".into(),
        }
    }

    /// Terminates it and waits (≤ 3 s), then kills it.
    pub async fn stop(mut self) {
        // SAFETY: kill(2) on our own child's pid, which it still is until we reap it below.
        unsafe {
            libc::kill(self.pid as libc::pid_t, libc::SIGTERM);
        }
        reap(&mut self.child, Duration::from_secs(3)).await;
    }
}

/// Process groups of running [`Group`]s, for [`kill_groups`].
static GROUPS: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// Sends `signal` to process group `pgid`.
fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a pid; no memory is involved.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// SIGKILLs every registered process group still running (before exiting early, e.g. from a watchdog or on
/// Ctrl-C, when no destructor will run).
pub fn kill_groups() {
    let groups = GROUPS.lock().map(|g| g.clone()).unwrap_or_default();
    for pgid in groups {
        signal_group(pgid, libc::SIGKILL);
    }
}

/// A child running in its own process group, which is SIGKILLed as a whole when the guard is dropped.
pub struct Group {
    child: Child,
    /// Its process id, which is also its process group id.
    pub pid: u32,
    done: bool,
}

impl Group {
    /// Spawns `cmd` as the leader of a new process group (also dying with this process, see [`guard`]).
    pub fn spawn(cmd: &mut Command) -> Result<Group> {
        cmd.process_group(0);
        guard(cmd);
        let child = cmd.spawn()?;
        let pid = child.id().context("child pid")?;
        GROUPS.lock().map_err(|_| anyhow::anyhow!("process registry poisoned"))?.push(pid as i32);
        Ok(Group { child, pid, done: false })
    }

    /// The leader's stdout, when it was piped and not taken yet.
    pub fn take_stdout(&mut self) -> Option<tokio::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Whether the leader has exited (and its status if so).
    pub fn try_wait(&mut self) -> Result<Option<std::process::ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// Waits for the leader to exit.
    pub async fn wait(&mut self) -> Result<std::process::ExitStatus> {
        Ok(self.child.wait().await?)
    }

    /// Sends `first` to the leader only (`group = false`) or to the whole group, waits up to `grace` for the
    /// leader to exit, then SIGKILLs the group (whatever is left in it) and reaps the leader.
    pub async fn stop(mut self, first: i32, group: bool, grace: Duration) -> Option<std::process::ExitStatus> {
        if group {
            signal_group(self.pid as i32, first)
        } else {
            signal(self.pid, first)
        }
        let status = tokio::time::timeout(grace, self.child.wait()).await.ok().and_then(Result::ok);
        self.finish();
        match status {
            Some(s) => Some(s),
            None => self.child.wait().await.ok(),
        }
    }

    /// SIGKILLs the whole group and forgets it.
    fn finish(&mut self) {
        if !self.done {
            signal_group(self.pid as i32, libc::SIGKILL);
            self.done = true;
            if let Ok(mut groups) = GROUPS.lock() {
                groups.retain(|&g| g != self.pid as i32);
            }
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.finish();
    }
}

/// A `NAME:  123 kB` line of `/proc/PID/status`, in bytes.
fn status_bytes(pid: u32, name: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with(name)).with_context(|| format!("no {name} line"))?;
    let kb: u64 = line.trim_start_matches(name).trim().trim_end_matches("kB").trim().parse()?;
    Ok(kb * 1024)
}

/// A process's resident set size in bytes (`VmRSS` of `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> Result<u64> {
    status_bytes(pid, "VmRSS:")
}

/// A process's resident set split into anonymous memory (heap, stacks) and file-backed pages (mostly the
/// mapped executable and libraries), in bytes (`RssAnon`, `RssFile` + `RssShmem` of `/proc/PID/status`).
pub fn rss_parts(pid: u32) -> Result<(u64, u64)> {
    Ok((status_bytes(pid, "RssAnon:")?, status_bytes(pid, "RssFile:")? + status_bytes(pid, "RssShmem:")?))
}

/// User plus system CPU time a process has used, in seconds (`utime + stime` of `/proc/PID/stat`, all its
/// threads, not its children).
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces; the fields after it start after the last ')'.
    let rest = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let ticks: u64 =
        fields.get(11).context("no utime")?.parse::<u64>()? + fields.get(12).context("no stime")?.parse::<u64>()?;
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Ok(ticks as f64 / if hz > 0 { hz as f64 } else { 100.0 })
}

/// One inotify watch a process holds: the watched inode and its device (as `/proc/PID/fdinfo` shows them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Watch {
    /// Inode number.
    pub ino: u64,
    /// Device number, in the kernel's internal encoding.
    pub sdev: u64,
}

/// Every inotify watch held by process `pid`, over all its inotify file descriptors (the `inotify wd:` lines
/// of `/proc/PID/fdinfo/*`).
pub fn inotify_watches(pid: u32) -> Result<Vec<Watch>> {
    let mut out = Vec::new();
    let dir = format!("/proc/{pid}/fdinfo");
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {dir}"))? {
        let Ok(text) = std::fs::read_to_string(entry?.path()) else { continue };
        for line in text.lines().filter(|l| l.starts_with("inotify wd:")) {
            let field = |name: &str| {
                line.split_whitespace().find_map(|f| f.strip_prefix(name)).and_then(|v| u64::from_str_radix(v, 16).ok())
            };
            if let (Some(ino), Some(sdev)) = (field("ino:"), field("sdev:")) {
                out.push(Watch { ino, sdev });
            }
        }
    }
    Ok(out)
}

/// The pids of `pid`'s children (`/proc/PID/task/*/children`).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(text.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    out
}

/// A process's command name (`/proc/PID/comm`), if it still exists.
pub fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).ok().map(|s| s.trim_end().to_string())
}
