//! `filewatch-bench`: the file watch benchmarks of issue 4, tilt-rs next to watchexec, entr and an
//! inotifywait loop (the floor), all measured in the same run on the same machine, printed as one table.
//!
//! 1. File change → command start latency (p50/p90/p99 over `--samples` changes per tool), see [`latency`].
//! 2. A big tree (100,000 files in 1,000 directories plus an ignored `node_modules/`), for tilt-rs and
//!    watchexec: ready time, inotify watches, RSS and idle CPU, see [`tree`].
//!
//! Every tool runs the same command, the stamp helper `bench-stamp STAMPS` (argv form, no shell), with its
//! default debounce. Tools that are not installed are skipped with a note. It is a report: it exits 0
//! whether targets pass or fail, non-zero only when tilt-rs could not be measured at all.
//! `bash bench/run.sh filewatch` installs the peers, builds and runs it.

mod latency;
mod tools;
mod tree;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Parser;
use tilt_bench::client::quantile;
use tilt_bench::report::{Layout, Row, Target, Unit};
use tilt_bench::{machine, median, ms, progress};

use crate::tools::{Bins, Tool, which};

#[derive(Parser)]
#[command(
    name = "filewatch-bench",
    about = "File change → command start latency and big-tree costs: tilt-rs vs watchexec, entr, inotifywait."
)]
struct Cli {
    /// Measured changes per tool.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Unmeasured changes per tool before them.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Quiet milliseconds after each change (of any tool) before the next one.
    #[arg(long, default_value_t = 100)]
    quiet_ms: u64,
    /// Files in the big tree (outside its ignored directory).
    #[arg(long, default_value_t = 100_000)]
    files: usize,
    /// Directories in the big tree below its root (outside its ignored directory).
    #[arg(long, default_value_t = 1000)]
    dirs: usize,
    /// Runs per tool on the big tree (medians are reported).
    #[arg(long, default_value_t = 3)]
    tree_runs: usize,
    /// Seconds over which idle CPU is measured.
    #[arg(long, default_value_t = 5.0)]
    idle_secs: f64,
    /// Where to generate the big tree, as DIR/tree (kept and reused; tilt-rs's Tiltfile is written to
    /// DIR/Tiltfile); default: a temporary directory.
    #[arg(long)]
    tree_dir: Option<PathBuf>,
    /// Skip the latency benchmark.
    #[arg(long)]
    no_latency: bool,
    /// Skip the big tree.
    #[arg(long)]
    no_tree: bool,
    /// A short smoke run (40 changes, a 20,000-file tree, one run, 2 s idle); its numbers are noisier.
    #[arg(long)]
    quick: bool,
    /// The tilt binary (default: `tilt` next to this executable).
    #[arg(long)]
    tilt: Option<PathBuf>,
    /// The watchexec binary (default: `watchexec` on PATH).
    #[arg(long)]
    watchexec: Option<PathBuf>,
    /// Give up (exit 2) after this many seconds.
    #[arg(long, default_value_t = 1200)]
    deadline: u64,
}

fn main() -> Result<()> {
    let mut cli = Cli::parse();
    if cli.quick {
        cli.samples = cli.samples.min(40);
        cli.warmup = cli.warmup.min(3);
        cli.files = cli.files.min(20_000);
        cli.dirs = cli.dirs.min(200);
        cli.tree_runs = 1;
        cli.idle_secs = cli.idle_secs.min(2.0);
    }
    tilt_bench::watchdog("filewatch-bench", Duration::from_secs(cli.deadline));
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(cli))
}

/// The stamp helper next to this executable.
fn stamp_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let stamp = exe.with_file_name("bench-stamp");
    if !stamp.is_file() {
        bail!("{} is missing (cargo build --release -p tilt-bench builds it)", stamp.display());
    }
    Ok(stamp)
}

/// A tool's version line, for the notes.
fn version(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().next().unwrap_or("").trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "?".into())
}

async fn run(cli: Cli) -> Result<()> {
    tilt_bench::exit_on_signal("filewatch-bench");
    let tilt = cli.tilt.clone().unwrap_or_else(tilt_bench::tilt::default_binary);
    if !tilt.is_file() {
        bail!("{} is missing (cargo build --release -p tilt builds it)", tilt.display());
    }
    let bins = Bins {
        tilt,
        watchexec: cli.watchexec.clone().filter(|p| p.is_file()).or_else(|| which("watchexec")),
        entr: which("entr"),
        inotifywait: which("inotifywait"),
        stamp: stamp_binary()?,
    };
    let mut notes = Vec::new();
    for (tool, how) in [
        (Tool::Watchexec, "cargo install --locked watchexec-cli; bench/run.sh does it"),
        (Tool::Entr, "Debian package entr; bench/run.sh installs it"),
        (Tool::Inotifywait, "Debian package inotify-tools; bench/run.sh installs it"),
    ] {
        if bins.of(tool).is_none() {
            notes.push(format!("{}: not installed ({how}), its column is empty.", tool.label()));
        }
    }
    let base = tempfile::Builder::new().prefix("tilt-bench-filewatch-").tempdir()?;
    tilt_bench::remove_on_exit(base.path());
    let tools: Vec<Tool> = [Tool::Tilt, Tool::Watchexec, Tool::Entr, Tool::Inotifywait]
        .into_iter()
        .filter(|t| bins.of(*t).is_some())
        .collect();

    let plan = latency::Plan {
        samples: cli.samples.max(1),
        warmup: cli.warmup,
        quiet: Duration::from_millis(cli.quiet_ms),
        timeout: Duration::from_secs(2),
    };
    let latencies = if cli.no_latency {
        Vec::new()
    } else {
        progress(format!(
            "latency: {} changes per tool ({} warm-up), {} ms quiet after each",
            plan.samples, plan.warmup, cli.quiet_ms
        ));
        latency::run(&bins, &tools, base.path(), &plan).await?
    };

    let mut tree_runs: Vec<(Tool, Vec<tree::Run>)> = Vec::new();
    let mut tree_info = None;
    if !cli.no_tree {
        let root = match &cli.tree_dir {
            Some(d) => d.join("tree"),
            None => base.path().join("tree"),
        };
        let t = tree::generate(&root, cli.dirs, cli.files)?;
        let tree_tools: Vec<Tool> =
            [Tool::Tilt, Tool::Watchexec].into_iter().filter(|t| bins.of(*t).is_some()).collect();
        for &tool in &tree_tools {
            tree_runs.push((tool, Vec::new()));
        }
        let idle = Duration::from_secs_f64(cli.idle_secs);
        for r in 0..cli.tree_runs.max(1) {
            for (tool, runs) in &mut tree_runs {
                progress(format!("tree: run {}/{} of {}…", r + 1, cli.tree_runs.max(1), tool.label()));
                let work = base.path().join(format!("tree-{}-{r}", tool.label()));
                match tree::measure(*tool, &bins, &t, &work, idle).await {
                    Ok(run) => runs.push(run),
                    Err(e) => notes.push(format!("big tree, {} run {}: {e:#}", tool.label(), r + 1)),
                }
            }
        }
        tree_info = Some(t);
    }

    if latencies.iter().any(|(t, o)| *t == Tool::Tilt && o.latencies.is_empty())
        && tree_runs.iter().all(|(t, runs)| *t != Tool::Tilt || runs.is_empty())
    {
        let why = latencies.iter().find(|(t, _)| *t == Tool::Tilt).and_then(|(_, o)| o.error.clone());
        bail!("tilt-rs could not be measured: {}", why.unwrap_or_default());
    }
    print_report(&cli, &bins, &latencies, &tree_runs, tree_info.as_ref(), notes);
    drop(base);
    Ok(())
}

const COLUMNS: [Tool; 3] = [Tool::Watchexec, Tool::Entr, Tool::Inotifywait];

fn print_report(
    cli: &Cli,
    bins: &Bins,
    latencies: &[(Tool, latency::Outcome)],
    tree_runs: &[(Tool, Vec<tree::Run>)],
    tree_info: Option<&tree::Tree>,
    mut notes: Vec<String>,
) {
    let lat = |tool: Tool, p: f64| {
        latencies
            .iter()
            .find(|(t, _)| *t == tool)
            .filter(|(_, o)| !o.latencies.is_empty())
            .map(|(_, o)| ms(quantile(&o.latencies, p)))
    };
    let peers = |f: &dyn Fn(Tool) -> Option<f64>| COLUMNS.iter().map(|&t| f(t)).collect::<Vec<_>>();
    let mut rows = Vec::new();
    if !latencies.is_empty() {
        for (p, target) in [(0.5, Target::RatioAtMost(0.6)), (0.9, Target::None), (0.99, Target::Below(50.0))] {
            let name = format!("change → command start p{}", (p * 100.0) as u32);
            rows.push(Row::with_peers(name, Unit::Ms, lat(Tool::Tilt, p), peers(&|t| lat(t, p)), target));
        }
    }
    if !latencies.is_empty() {
        let rss =
            |tool: Tool| latencies.iter().find(|(t, _)| *t == tool).and_then(|(_, o)| o.rss).map(|(r, _)| r as f64);
        let changes = cli.samples + cli.warmup;
        rows.push(Row::with_peers(
            format!("RSS, 2-file directory after {changes} changes"),
            Unit::MegaBytes,
            rss(Tool::Tilt),
            peers(&rss),
            Target::None,
        ));
    }
    let tree_med = |tool: Tool, f: &dyn Fn(&tree::Run) -> Option<f64>| {
        let mut v: Vec<f64> =
            tree_runs.iter().filter(|(t, _)| *t == tool).flat_map(|(_, runs)| runs.iter().filter_map(f)).collect();
        median(&mut v)
    };
    if let Some(t) = tree_info {
        let n = cli.tree_runs.max(1);
        let tree_row = |name: String, unit, f: &dyn Fn(&tree::Run) -> Option<f64>, target| {
            Row::with_peers(name, unit, tree_med(Tool::Tilt, f), peers(&|tool| tree_med(tool, f)), target)
        };
        let k = |x: usize| if x >= 1000 && x.is_multiple_of(1000) { format!("{}k", x / 1000) } else { x.to_string() };
        let what = format!("{} files / {} dirs", k(t.files), k(t.dirs.len() - 1));
        rows.push(tree_row(
            format!("{what}: ready time (median of {n})"),
            Unit::Ms,
            &|r| Some(ms(r.ready)),
            Target::None,
        ));
        rows.push(tree_row(
            format!("{what}: inotify watches on the tree"),
            Unit::Count,
            &|r| Some((r.tree_watches + r.ignored_watches) as f64),
            Target::Equal(t.dirs.len() as f64),
        ));
        rows.push(tree_row(
            format!("{what}: RSS after ready"),
            Unit::MegaBytes,
            &|r| Some(r.rss as f64),
            Target::AtMost(30.0 * 1024.0 * 1024.0),
        ));
        rows.push(
            tree_row(
                format!("{what}: idle CPU over {} s (% of a core)", cli.idle_secs),
                Unit::Percent,
                &|r| Some(r.idle_cpu),
                Target::AtMost(0.5),
            )
            .source("≈ 0"),
        );
    }

    println!();
    println!("tilt-rs file watch benchmark — {}; ratio = tilt-rs ÷ watchexec; MB = 1024² bytes", machine());
    println!();
    print!(
        "{}",
        Layout { peers: &["watchexec", "entr", "inotifywait loop (floor)"], ratio_name: "watchexec" }.render(&rows)
    );
    println!();

    let mut head = vec![
        format!(
            "Latency: each tool watches its own directory and runs `bench-stamp STAMPS` (argv, no shell) on a change; T0 = CLOCK_REALTIME just before the driver rewrites one file in place, T1 = the stamp the command writes when it starts; the tools take turns, one change at a time, {} ms quiet after each; {} measured changes per tool after {} warm-up.",
            cli.quiet_ms, cli.samples, cli.warmup
        ),
        "Default debounces, as shipped: tilt-rs 20 ms (FileWatch, trailing), watchexec 50 ms, entr none (it reacts to the first event), inotifywait none.".into(),
    ];
    for (tool, o) in latencies {
        let mut s = format!(
            "{}: {} samples, {} missed (no run within 2 s), {} extra runs",
            tool.label(),
            o.latencies.len(),
            o.misses,
            o.extra_runs
        );
        if let Some((rss, anon)) = o.rss {
            s.push_str(&format!(
                "; RSS at the end {:.1} MB, of which {:.1} MB anonymous",
                rss as f64 / 1048576.0,
                anon as f64 / 1048576.0
            ));
        }
        if let Some(e) = &o.error {
            s.push_str(&format!("; {e}"));
        }
        head.push(s + ".");
    }
    if let Some(t) = tree_info {
        head.push(format!(
            "Big tree: {} files in {} directories below the root (expected watches: {} = those plus the root), plus `{ig}/` with {} directories ignored by both (tilt-rs `ignore=['{ig}']` in a Tiltfile next to the tree, watchexec `-i '**/{ig}'` and `-i '**/{ig}/**'`); generated once at {}, each tool started on it in turn, alone.",
            t.files,
            t.dirs.len() - 1,
            t.dirs.len(),
            t.ignored.len(),
            t.root.display(),
            ig = tree::IGNORED,
        ));
        head.push("Ready time: spawn → the first command run caused by a probe change, probes every 50 ms after the initial run (and, for tilt-rs, after FileWatch `status.monitorStartTime` is set); RSS = VmRSS of the tool's process (tilt: `tilt up`, without its small orphan-reaper child); watches = `inotify wd:` lines of /proc/PID/fdinfo whose inode is a tree directory; idle CPU = utime+stime delta of the process over the window, 1 s after ready.".into());
        for (tool, runs) in tree_runs {
            let med =
                |f: &dyn Fn(&tree::Run) -> Option<f64>| tree_med(*tool, f).map_or("—".into(), |v| format!("{v:.0}"));
            let mb = |f: &dyn Fn(&tree::Run) -> Option<f64>| {
                tree_med(*tool, f).map_or("—".into(), |v| format!("{:.1}", v / 1048576.0))
            };
            head.push(format!(
                "{}: {} runs; median ms from spawn: monitorStartTime {}, initial run {}, ready {}; watches per run (non-ignored + ignored + elsewhere): {}; RSS = {} MB anonymous (heap, stacks) + {} MB file-backed (mapped executable and libraries).",
                tool.label(),
                runs.len(),
                med(&|r| r.monitor.map(ms)),
                med(&|r| r.initial.map(ms)),
                med(&|r| Some(ms(r.ready))),
                runs.iter().map(|r| format!("{} + {} + {}", r.tree_watches, r.ignored_watches, r.other_watches)).collect::<Vec<_>>().join(", "),
                mb(&|r| Some(r.rss_parts.0 as f64)),
                mb(&|r| Some(r.rss_parts.1 as f64)),
            ));
        }
    }
    let dpkg = |p: &str| version("dpkg-query", &["-W", "-f=${Version}", p]);
    head.push(format!(
        "Versions: watchexec {}; entr {}; inotify-tools {}; tilt {}.",
        bins.watchexec.as_deref().map_or("—".into(), |w| version(&w.to_string_lossy(), &["--version"])),
        if bins.entr.is_some() { dpkg("entr") } else { "—".into() },
        if bins.inotifywait.is_some() { dpkg("inotify-tools") } else { "—".into() },
        bins.tilt.display()
    ));
    head.push(
        "Go Tilt on this machine (design.md): change → command start p50: entr 53 ms, watchexec 55 ms, Go Tilt 209 ms."
            .into(),
    );
    notes.splice(0..0, head);
    for note in notes {
        println!("- {note}");
    }
}
