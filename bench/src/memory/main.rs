//! `memory-bench`: what each stored object costs a running `tilt up`, measured from the outside as a user's
//! `ps` sees it (issue 12, defect 3).
//!
//! `tilt up` runs on an empty Tiltfile in an isolated home; once its resident set has settled, this process
//! (an external client, over HTTPS with the kubeconfig's token and CA) creates `--objects` tilt.dev
//! ConfigMaps of ~1.3 KB of JSON each, then waits for the resident set to settle again. The growth of
//! `VmRSS` (`/proc/PID/status`), divided by the number of objects, is the cost per object: the API server's
//! copy, its watch history, every controller's cache of ConfigMaps and whatever the allocator keeps. The
//! overhead is that cost minus the object's JSON size as the API serves it (a GET's body).
//!
//! It is a report: it exits 0 whether the target is met or not, non-zero only when tilt-rs could not be
//! measured at all. `bash bench/run.sh memory` builds and runs it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use http::Method;
use serde_json::{Value, json};
use tilt_bench::client::{Req, fan_out};
use tilt_bench::proc::{rss_bytes, rss_parts};
use tilt_bench::report::{Layout, Row, Target, Unit};
use tilt_bench::tilt::{API, TiltUp};
use tilt_bench::{machine, median, progress};

#[derive(Parser)]
#[command(name = "memory-bench", about = "VmRSS growth of `tilt up` per stored object, measured from outside.")]
struct Cli {
    /// ConfigMaps created per run.
    #[arg(long, default_value_t = 10_000)]
    objects: usize,
    /// Runs, each with a fresh `tilt up` (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Connections the objects are created over.
    #[arg(long, default_value_t = 4)]
    conns: usize,
    /// A short smoke run (one run); its numbers are noisier.
    #[arg(long)]
    quick: bool,
    /// The tilt binary (default: `tilt` next to this executable).
    #[arg(long)]
    tilt: Option<PathBuf>,
    /// Give up (exit 2) after this many seconds.
    #[arg(long, default_value_t = 600)]
    deadline: u64,
}

/// The overhead target over the JSON size (issue 12): at most 3 KB per object.
const TARGET_OVERHEAD: f64 = 3.0 * 1024.0;

/// One ConfigMap of about 1.3 KB of JSON: 16 keys of settings-like values, two labels.
fn config_map(i: usize) -> Value {
    let data: serde_json::Map<String, Value> = (0..16)
        .map(|k| {
            let value = format!("value-{i:05}-{k:02}-{}", "x".repeat(40));
            (format!("setting.{k:02}.key"), Value::String(value))
        })
        .collect();
    json!({
        "apiVersion": "tilt.dev/v1alpha1",
        "kind": "ConfigMap",
        "metadata": {"name": format!("bench-cm-{i:05}"), "labels": {"app": "memory-bench", "shard": format!("s{}", i % 10)}},
        "data": data,
    })
}

/// What one run measured.
#[derive(Debug, Clone)]
struct Run {
    /// VmRSS before and after, bytes.
    before: u64,
    after: u64,
    /// RssAnon growth, bytes.
    anon_growth: i64,
    /// The body POSTed and the object as the API serves it (GET), bytes.
    body: usize,
    stored: usize,
    /// Creating every object (client side).
    create: Duration,
}

impl Run {
    fn per_object(&self, n: usize) -> f64 {
        (self.after as f64 - self.before as f64) / n as f64
    }
}

/// Samples VmRSS every 250 ms until two samples 1 s apart differ by less than 0.2 % (at most `limit`);
/// returns the last sample. Controllers digest watch events after the writes were answered, so the resident
/// set keeps growing for a while after the last create.
async fn settled_rss(pid: u32, limit: Duration) -> Result<u64> {
    let t0 = Instant::now();
    let mut samples: Vec<u64> = Vec::new();
    loop {
        samples.push(rss_bytes(pid)?);
        if samples.len() > 4 {
            let (old, new) = (samples[samples.len() - 5] as f64, samples[samples.len() - 1] as f64);
            if (new - old).abs() / old < 0.002 {
                return Ok(samples[samples.len() - 1]);
            }
        }
        if t0.elapsed() > limit {
            return Ok(samples[samples.len() - 1]);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn run(bin: &Path, tiltfile: &Path, home: &Path, cli: &Cli) -> Result<Run> {
    let mut t = TiltUp::start(bin, tiltfile, &[], home).await?;
    let result = async {
        // Let the (empty) Tiltfile run and the controllers start their watches before the baseline.
        let tf = loop {
            let tf = t.get(&format!("{API}/tiltfiles/(Tiltfile)")).await.unwrap_or_default();
            if !tf["status"]["terminated"].is_null() {
                break tf;
            }
            t.check_alive()?;
            if t.spawned.elapsed() > Duration::from_secs(30) {
                bail!("the Tiltfile run did not finish within 30 s; {}", t.diagnostics());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if let Some(e) = tf["status"]["terminated"]["error"].as_str().filter(|e| !e.is_empty()) {
            bail!("the empty Tiltfile failed: {e}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = settled_rss(t.pid, Duration::from_secs(10)).await?;
        let (anon_before, _) = rss_parts(t.pid)?;
        let objects: Vec<Value> = (0..cli.objects).map(config_map).collect();
        let body = serde_json::to_vec(&objects[0])?.len();
        let reqs = objects
            .iter()
            .map(|o| {
                serde_json::to_vec(o)
                    .map(|b| Req::with_body(Method::POST, format!("{API}/configmaps"), "application/json", b))
            })
            .collect::<Result<Vec<_>, _>>()?;
        drop(objects);
        let t0 = Instant::now();
        fan_out(&t.ep, cli.conns.max(1), reqs).await.context("creating the ConfigMaps")?;
        let create = t0.elapsed();
        let after = settled_rss(t.pid, Duration::from_secs(20)).await?;
        let (anon_after, _) = rss_parts(t.pid)?;
        t.check_alive()?;
        let stored = serde_json::to_vec(&t.get(&format!("{API}/configmaps/bench-cm-00000")).await?)?.len();
        let listed = t.list("configmaps").await?;
        let ours = listed.iter().filter(|c| c["metadata"]["labels"]["app"] == "memory-bench").count();
        if ours != cli.objects {
            bail!("a LIST shows {ours} of the {} ConfigMaps created", cli.objects);
        }
        anyhow::Ok(Run { before, after, anon_growth: anon_after as i64 - anon_before as i64, body, stored, create })
    }
    .await;
    t.stop(Duration::from_secs(5)).await;
    result
}

fn main() -> Result<()> {
    let mut cli = Cli::parse();
    if cli.quick {
        cli.runs = 1;
    }
    if cli.objects == 0 {
        bail!("--objects must be at least 1");
    }
    tilt_bench::watchdog("memory-bench", Duration::from_secs(cli.deadline));
    let base = tempfile::Builder::new().prefix("tilt-bench-memory-").tempdir()?;
    tilt_bench::remove_on_exit(base.path());
    let bin = cli.tilt.clone().unwrap_or_else(tilt_bench::tilt::default_binary);
    if !bin.is_file() {
        bail!("{} is missing (cargo build --release -p tilt builds it)", bin.display());
    }
    let project = base.path().join("project");
    std::fs::create_dir_all(&project)?;
    let tiltfile = project.join("Tiltfile");
    std::fs::write(&tiltfile, "# empty: the objects come from an external client\n")?;
    let runs = tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
        tilt_bench::exit_on_signal("memory-bench");
        let mut runs = Vec::new();
        let mut notes = Vec::new();
        for r in 0..cli.runs.max(1) {
            progress(format!("memory: run {}/{}: tilt up, then {} ConfigMaps", r + 1, cli.runs.max(1), cli.objects));
            match run(&bin, &tiltfile, &base.path().join(format!("home-{r}")), &cli).await {
                Ok(run) => runs.push(run),
                Err(e) => notes.push(format!("run {}: {e:#}", r + 1)),
            }
        }
        if runs.is_empty() {
            bail!("tilt-rs could not be measured: {}", notes.join("; "));
        }
        anyhow::Ok((runs, notes))
    })?;
    print_report(&cli, &runs.0, &runs.1);
    Ok(())
}

fn print_report(cli: &Cli, runs: &[Run], errors: &[String]) {
    let n = cli.objects;
    let med = |f: &dyn Fn(&Run) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        median(&mut v)
    };
    let stored = runs[0].stored as f64;
    let rows = vec![
        Row::with_peers(
            format!("VmRSS growth per object, {n} ConfigMaps (median of {})", runs.len()),
            Unit::Bytes,
            med(&|r| r.per_object(n)),
            vec![Some(stored)],
            Target::None,
        )
        .suffix(0, " (JSON)"),
        Row::with_peers(
            "  overhead over the served JSON (growth − GET body size)",
            Unit::Bytes,
            med(&|r| r.per_object(n) - r.stored as f64),
            vec![],
            Target::AtMost(TARGET_OVERHEAD),
        )
        .source("issue 12; Go Tilt 4.7–5.2 KB"),
        Row::with_peers(
            "  overhead over the POSTed JSON (growth − body size)",
            Unit::Bytes,
            med(&|r| r.per_object(n) - r.body as f64),
            vec![],
            Target::AtMost(TARGET_OVERHEAD),
        ),
        Row::with_peers(
            "  of which anonymous memory (RssAnon growth per object)",
            Unit::Bytes,
            med(&|r| r.anon_growth as f64 / n as f64),
            vec![],
            Target::None,
        ),
        Row::with_peers(
            "VmRSS before the objects (median)",
            Unit::MegaBytes,
            med(&|r| r.before as f64),
            vec![],
            Target::None,
        ),
        Row::with_peers(
            "VmRSS after the objects (median)",
            Unit::MegaBytes,
            med(&|r| r.after as f64),
            vec![],
            Target::None,
        ),
        Row::with_peers(
            format!("creating the {n} objects over {} connections (median)", cli.conns),
            Unit::Ms,
            med(&|r| r.create.as_secs_f64() * 1e3),
            vec![],
            Target::None,
        ),
    ];
    println!();
    println!("tilt-rs memory per object — {}; ratio = growth ÷ JSON size", machine());
    println!();
    print!("{}", Layout { peers: &["JSON size"], ratio_name: "JSON" }.render(&rows));
    println!();
    let per: Vec<String> = runs.iter().map(|r| format!("{:.0}", r.per_object(n))).collect();
    println!(
        "- Setup: `tilt up` on an empty Tiltfile (fresh HOME, TILT_CONFIG, KUBECONFIG); once its VmRSS has settled, this process creates {n} tilt.dev ConfigMaps (16 data keys, 2 labels; POST body {} B, served JSON {} B with the server's metadata) over HTTPS with the kubeconfig's token, then waits until VmRSS settles (< 0.2 % change over 1 s). Growth per object = (VmRSS after − before) ÷ {n}; it includes the API server's copy, its watch history, every controller's cache and allocator slack.",
        runs[0].body, runs[0].stored
    );
    println!("- Per-object growth of each run (bytes): {}.", per.join(", "));
    println!("- Go Tilt on this machine (issue 12): 6.0–6.5 KB per object; target: at most 3 KB over the JSON size.");
    for e in errors {
        println!("- {e}");
    }
}
