//! Cold start of `n` `serve_cmd` resources: from spawning `tilt up` until every UIResource has condition
//! `Ready=True`, as an external Python poller (the official client, started at the same moment, reading the
//! kubeconfig tilt writes) sees it, or polled by this process when Python is unavailable; beside a shell loop that spawns the same `n` `sleep 300`
//! processes (timed until all of them exist as `sleep` processes), and `tilt ci` on the same Tiltfile.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tilt_bench::proc::{Group, children, comm};
use tilt_bench::tilt::{API, TiltUp, parse_time};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// How often the API is polled.
const POLL: Duration = Duration::from_millis(2);

/// The external poller: a Python script using the official `kubernetes` client, as a user's readiness check
/// would, started at the same moment as `tilt up`.
pub const POLLER_PY: &str = include_str!("poller.py");

/// How the external poller is run.
#[derive(Clone, Debug)]
pub struct Poller {
    /// The Python interpreter.
    pub python: PathBuf,
    /// `poller.py`, written out.
    pub script: PathBuf,
    /// Pause between its LISTs.
    pub interval: Duration,
}

/// What the external poller saw, from spawning `tilt up` (it is spawned right after).
#[derive(Clone, Debug, Default)]
pub struct PollerRun {
    /// The interpreter started running the script.
    pub started: Duration,
    /// `import kubernetes` done.
    pub imported: Duration,
    /// The kubeconfig had tilt's context.
    pub config: Duration,
    /// The first LIST answered.
    pub first_list: Option<Duration>,
    /// LISTs it sent.
    pub polls: u64,
}

/// What one tilt-rs cold start measured (durations from spawning `tilt up`).
#[derive(Clone, Debug, Default)]
pub struct TiltRun {
    /// Every UIResource Ready, as seen by the polling client (the external poller when there is one).
    pub all_ready: Duration,
    /// The external poller's milestones, when it polled.
    pub poller: Option<PollerRun>,
    /// The stdout line with the API URL.
    pub url_line: Duration,
    /// The Tiltfile run's `startedAt` and `finishedAt`.
    pub tiltfile_started: Option<Duration>,
    pub tiltfile_finished: Option<Duration>,
    /// The first and last serve Cmd's `status.running.startedAt`.
    pub first_running: Option<Duration>,
    pub last_running: Option<Duration>,
    /// The first and last Ready condition's `lastTransitionTime`.
    pub first_ready: Option<Duration>,
    pub last_ready: Option<Duration>,
    /// SIGTERM → tilt exited (None if it had to be killed).
    pub shutdown: Option<Duration>,
    /// Server processes still alive 200 ms after tilt exited.
    pub survivors: usize,
    /// API polls until all were Ready.
    pub polls: usize,
}

fn since(spawned_ns: i64, v: &Value) -> Option<Duration> {
    parse_time(v).map(|t| Duration::from_nanos((t - spawned_ns).max(0) as u64))
}

fn min_max(v: impl Iterator<Item = Duration>) -> (Option<Duration>, Option<Duration>) {
    let v: Vec<Duration> = v.collect();
    (v.iter().min().copied(), v.iter().max().copied())
}

fn is_ready(ui: &Value) -> bool {
    ui["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// Whether every UIResource named in `names` is among `items` and Ready.
fn every_ready(items: &[Value], names: &HashSet<String>) -> bool {
    items.iter().filter(|u| names.contains(u["metadata"]["name"].as_str().unwrap_or("")) && is_ready(u)).count()
        == names.len()
}

/// Reads the poller's JSON line (it exits once it has seen every resource Ready) and turns its timestamps
/// into durations from `spawned_ns`.
async fn poller_result(group: &mut Group, spawned_ns: i64, stderr: &Path) -> Result<(Duration, PollerRun)> {
    let stdout = group.take_stdout().context("poller stdout")?;
    let mut line = String::new();
    let read = tokio::time::timeout(Duration::from_secs(35), BufReader::new(stdout).read_line(&mut line)).await;
    if !matches!(read, Ok(Ok(n)) if n > 0) {
        let err = std::fs::read_to_string(stderr).unwrap_or_default();
        bail!("the Python poller reported nothing: {}", err.trim());
    }
    let v: Value = serde_json::from_str(&line).with_context(|| format!("poller output {line:?}"))?;
    let at = |k: &str| v[k].as_i64().map(|t| Duration::from_nanos((t - spawned_ns).max(0) as u64));
    let run = PollerRun {
        started: at("start").context("poller: no start")?,
        imported: at("imported").context("poller: no imported")?,
        config: at("config").context("poller: no config")?,
        first_list: at("first_list"),
        polls: v["polls"].as_u64().unwrap_or(0),
    };
    Ok((at("ready").context("poller: no ready")?, run))
}

/// One `tilt up` cold start of `tiltfile`, whose resources are `names`. With `poller`, readiness is what
/// the external Python poller (spawned right after tilt) saw, and this process sends no request until it
/// has reported; without, this process polls over one keep-alive connection.
pub async fn tilt(
    bin: &Path,
    tiltfile: &Path,
    names: &HashSet<String>,
    home: &Path,
    poller: Option<&Poller>,
) -> Result<TiltRun> {
    std::fs::create_dir_all(home)?;
    let poller_stderr = home.join("poller.stderr");
    let mut poller_cmd = match poller {
        Some(p) => {
            let mut c = Command::new(&p.python);
            c.arg(&p.script).arg("tilt").arg(format!("{}", p.interval.as_secs_f64()));
            let mut sorted: Vec<&String> = names.iter().collect();
            sorted.sort();
            c.args(sorted);
            c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(std::fs::File::create(&poller_stderr)?);
            Some(c)
        }
        None => None,
    };
    let (mut t, mut poller_group) = TiltUp::start_with(bin, tiltfile, &[], home, poller_cmd.as_mut()).await?;
    let limit = Duration::from_secs(30);
    let result = async {
        let mut polls = 0;
        let mut seen_by_poller = None;
        let (all_ready, items) = if let Some(group) = poller_group.as_mut() {
            let (ready, run) = poller_result(group, t.spawned_ns, &poller_stderr).await?;
            polls = run.polls as usize;
            seen_by_poller = Some(run);
            (ready, t.list("uiresources").await?)
        } else {
            loop {
                polls += 1;
                if let Ok(items) = t.list("uiresources").await
                    && every_ready(&items, names)
                {
                    break (t.spawned.elapsed(), items);
                }
                t.check_alive()?;
                if t.spawned.elapsed() > limit {
                    bail!("not every UIResource Ready after {} s; {}", limit.as_secs(), t.diagnostics());
                }
                tokio::time::sleep(POLL).await;
            }
        };
        let s = t.spawned_ns;
        let tiltfile = t.get(&format!("{API}/tiltfiles/(Tiltfile)")).await.unwrap_or_default();
        let term = &tiltfile["status"]["terminated"];
        let cmds = t.list("cmds").await?;
        let serves: Vec<&Value> =
            cmds.iter().filter(|c| c["metadata"]["name"].as_str().is_some_and(|n| n.ends_with(":serve"))).collect();
        let (first_running, last_running) =
            min_max(serves.iter().filter_map(|c| since(s, &c["status"]["running"]["startedAt"])));
        let pids: Vec<u32> =
            serves.iter().filter_map(|c| c["status"]["running"]["pid"].as_u64()).map(|p| p as u32).collect();
        let (first_ready, last_ready) = min_max(
            items.iter().filter(|u| names.contains(u["metadata"]["name"].as_str().unwrap_or(""))).filter_map(|u| {
                u["status"]["conditions"]
                    .as_array()?
                    .iter()
                    .find(|c| c["type"] == "Ready")
                    .and_then(|c| since(s, &c["lastTransitionTime"]))
            }),
        );
        anyhow::Ok((
            TiltRun {
                all_ready,
                url_line: t.url_line,
                tiltfile_started: since(s, &term["startedAt"]),
                tiltfile_finished: since(s, &term["finishedAt"]),
                first_running,
                last_running,
                first_ready,
                last_ready,
                polls,
                poller: seen_by_poller,
                ..TiltRun::default()
            },
            pids,
        ))
    }
    .await;
    if let Some(g) = poller_group {
        g.stop(libc::SIGKILL, true, Duration::ZERO).await;
    }
    let shutdown = t.stop(Duration::from_secs(5)).await;
    let (mut run, pids) = result?;
    run.shutdown = shutdown;
    tokio::time::sleep(Duration::from_millis(200)).await;
    run.survivors = pids.iter().filter(|&&p| comm(p).is_some_and(|c| c == "sleep" || c == "sh")).count();
    Ok(run)
}

/// The client's own floor: with a `tilt up` of `tiltfile` already up and every resource Ready, spawns the
/// external poller `runs` times and times each from spawn to its report (every resource Ready on its first
/// LIST): what a user's script costs by itself, which no server can beat.
pub async fn poller_floor(
    bin: &Path,
    tiltfile: &Path,
    names: &HashSet<String>,
    home: &Path,
    poller: &Poller,
    runs: usize,
) -> Result<Vec<Duration>> {
    let mut t = TiltUp::start(bin, tiltfile, &[], home).await?;
    let result = async {
        loop {
            if let Ok(items) = t.list("uiresources").await
                && every_ready(&items, names)
            {
                break;
            }
            t.check_alive()?;
            if t.spawned.elapsed() > Duration::from_secs(30) {
                bail!("not every UIResource Ready after 30 s; {}", t.diagnostics());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut out = Vec::new();
        let mut sorted: Vec<&String> = names.iter().collect();
        sorted.sort();
        for _ in 0..runs {
            let mut c = Command::new(&poller.python);
            c.arg(&poller.script).arg("tilt").arg(format!("{}", poller.interval.as_secs_f64())).args(&sorted);
            c.env("HOME", home).env("KUBECONFIG", home.join("kubeconfig"));
            c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
            let t0 = Instant::now();
            let mut group = Group::spawn(&mut c).context("starting the Python poller")?;
            let status = tokio::time::timeout(Duration::from_secs(35), group.wait()).await;
            let took = t0.elapsed();
            group.stop(libc::SIGKILL, true, Duration::ZERO).await;
            match status {
                Ok(Ok(s)) if s.success() => out.push(took),
                other => bail!("the Python poller failed against a ready tilt: {other:?}"),
            }
        }
        anyhow::Ok(out)
    }
    .await;
    t.stop(Duration::from_secs(5)).await;
    result
}

/// The floor: `sh -c 'for i in $(seq N); do sleep 300 & done; wait'`, timed from spawn until all N `sleep`
/// processes exist (polled in `/proc` every 0.5 ms); then its process group is killed.
pub async fn floor(n: usize) -> Result<Duration> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("for i in $(seq {n}); do sleep 300 & done; wait"));
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let t0 = Instant::now();
    let group = Group::spawn(&mut cmd)?;
    let pid = group.pid;
    let counted = tokio::task::spawn_blocking(move || {
        let deadline = t0 + Duration::from_secs(10);
        loop {
            let sleeping = children(pid).into_iter().filter(|&c| comm(c).is_some_and(|c| c == "sleep")).count();
            if sleeping >= n {
                return Some(t0.elapsed());
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    })
    .await?;
    group.stop(libc::SIGKILL, true, Duration::from_secs(1)).await;
    match counted {
        Some(d) => Ok(d),
        None => bail!("the shell floor did not start {n} sleep processes within 10 s"),
    }
}
