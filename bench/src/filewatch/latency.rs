//! File change → command start latency, every tool side by side in one run.
//!
//! Every tool watches its own small directory and runs the stamp helper on a change. The tools take turns,
//! one change at a time: write one file (T0 = CLOCK_REALTIME just before the write), wait for the new stamp
//! (T1, written by the command itself when it starts), latency = T1 − T0, then stay quiet for `quiet` before
//! the next change of any tool, so that every debounce has settled and runs do not overlap. Each tool thus
//! sees a change at most every (tools × (latency + quiet)).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use tilt_bench::proc::{rss_bytes, rss_parts};
use tilt_bench::progress;

use crate::tools::{Bins, Tool, WatchSpec, Watcher, next_stamp, probe, read_stamps, touch};

/// How many samples, and the pauses between them.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Measured samples per tool.
    pub samples: usize,
    /// Unmeasured samples per tool before them.
    pub warmup: usize,
    /// Quiet time after each sample.
    pub quiet: Duration,
    /// How long to wait for a run before counting a change as missed.
    pub timeout: Duration,
}

/// What one tool produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// One latency per detected change, sorted.
    pub latencies: Vec<Duration>,
    /// Changes that produced no run within the timeout.
    pub misses: usize,
    /// Runs beyond one per change.
    pub extra_runs: usize,
    /// Why the tool stopped being measured, if it did.
    pub error: Option<String>,
    /// Resident set size of the watching process at the end, bytes, and its anonymous part.
    pub rss: Option<(u64, u64)>,
}

struct Contestant {
    watcher: Watcher,
    file: PathBuf,
    /// Stamps accounted for (one per detected change, plus those before the first sample).
    seen: usize,
    out: Outcome,
    alive: bool,
}

/// Starts every tool in `tools` on its own directory under `base`, measures, stops them, and returns one
/// outcome per tool (in `tools` order; tools that could not start carry an error).
pub async fn run(bins: &Bins, tools: &[Tool], base: &std::path::Path, plan: &Plan) -> Result<Vec<(Tool, Outcome)>> {
    let mut contestants: Vec<Contestant> = Vec::new();
    let mut failed: Vec<(Tool, Outcome)> = Vec::new();
    for &tool in tools {
        let work = base.join(format!("latency-{}", tool.label().replace(' ', "-")));
        let dir = work.join("src");
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("main.txt");
        std::fs::write(&file, "start\n")?;
        std::fs::write(dir.join("other.txt"), "unchanged\n")?;
        let stamps = work.join("stamps");
        let files = [file.clone()];
        let spec = WatchSpec { dir: &dir, ignore: &[], files: &files, work: &work, stamps: &stamps };
        progress(format!("latency: starting {}…", tool.label()));
        let started = async {
            let mut watcher = Watcher::start(tool, bins, &spec).await?;
            watcher.monitor_started(Duration::from_secs(30)).await?;
            // Ready once a change produces a run; probe every 300 ms (longer than any default debounce).
            probe(&mut watcher, &file, Duration::from_millis(300), Duration::from_secs(30)).await?;
            anyhow::Ok(watcher)
        };
        match started.await {
            Ok(watcher) => {
                contestants.push(Contestant { watcher, file, seen: 0, out: Outcome::default(), alive: true })
            }
            Err(e) => failed.push((tool, Outcome { error: Some(format!("{e:#}")), ..Outcome::default() })),
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for c in &mut contestants {
        c.seen = read_stamps(&c.watcher.stamps).len();
    }

    let rounds = plan.warmup + plan.samples;
    let n = contestants.len();
    for round in 0..rounds {
        if round % 50 == 0 {
            progress(format!("latency: round {round}/{rounds}"));
        }
        for k in 0..n {
            // Rotate who goes first so that no tool always follows the same one.
            let c = &mut contestants[(round + k) % n];
            if !c.alive {
                continue;
            }
            if let Err(e) = sample(c, round, round >= plan.warmup, plan).await {
                c.alive = false;
                c.out.error = Some(format!("stopped at round {round}: {e:#}"));
            }
            tokio::time::sleep(plan.quiet).await;
        }
    }
    let mut results = Vec::new();
    for mut c in contestants {
        let total = read_stamps(&c.watcher.stamps).len();
        c.out.extra_runs += total.saturating_sub(c.seen);
        c.out.latencies.sort_unstable();
        let pid = c.watcher.pid();
        c.out.rss = rss_bytes(pid).ok().zip(rss_parts(pid).ok().map(|(anon, _)| anon));
        let tool = c.watcher.tool;
        c.watcher.stop().await;
        results.push((tool, c.out));
    }
    results.extend(failed);
    results.sort_by_key(|(t, _)| tools.iter().position(|x| x == t));
    Ok(results)
}

/// One change of one tool's file.
async fn sample(c: &mut Contestant, round: usize, measured: bool, plan: &Plan) -> Result<()> {
    c.watcher.check_alive()?;
    let now = read_stamps(&c.watcher.stamps).len();
    if measured {
        c.out.extra_runs += now.saturating_sub(c.seen);
    }
    c.seen = now;
    let t0 = touch(&c.file, round as u64)?;
    match next_stamp(&c.watcher.stamps, c.seen, t0, plan.timeout).await {
        Some((t1, _)) => {
            c.seen += 1;
            if measured {
                c.out.latencies.push(Duration::from_nanos((t1 - t0).max(0) as u64));
            }
        }
        None if measured => c.out.misses += 1,
        None => {}
    }
    Ok(())
}
