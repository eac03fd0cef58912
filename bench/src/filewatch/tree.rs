//! The big tree: a generated tree of many files and directories (by default 100,000 files in 1,000
//! directories, plus an ignored `node_modules/` of 100 directories), watched by tilt-rs and watchexec in
//! turn, one at a time.
//!
//! Per run: ready time (spawn → a probe change produces a run, after the initial run and, for tilt-rs, after
//! FileWatch `status.monitorStartTime` is set), the inotify watches the process holds (classified by inode:
//! non-ignored tree directories, ignored ones, elsewhere), its RSS, and its CPU use while idle.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tilt_bench::proc::{cpu_seconds, inotify_watches, rss_bytes, rss_parts};
use tilt_bench::progress;

use crate::tools::{Bins, Tool, WatchSpec, Watcher, next_stamp, probe, read_stamps};

/// The ignored directory name (a child of the tree's root).
pub const IGNORED: &str = "node_modules";

/// A generated tree.
pub struct Tree {
    /// Its root.
    pub root: PathBuf,
    /// Inodes of the root and every non-ignored directory.
    pub dirs: HashSet<u64>,
    /// Inodes of the ignored directories.
    pub ignored: HashSet<u64>,
    /// Files outside the ignored directory.
    pub files: usize,
    /// The file probes write to.
    pub probe: PathBuf,
}

/// Creates (or, if `root/../NAME.complete` says it is complete, reuses) a tree at `root` with `dirs`
/// directories below the root and `files` files spread evenly over them, plus `IGNORED/` with `dirs / 10`
/// package directories of 10 files each.
pub fn generate(root: &Path, dirs: usize, files: usize) -> Result<Tree> {
    let dirs = dirs.max(1);
    let marker = root.with_extension(format!("{dirs}-{files}.complete"));
    let top = if dirs >= 20 { 10 } else { 1 };
    let mut all: Vec<PathBuf> = (0..top).map(|i| root.join(format!("a{i}"))).collect();
    for j in 0..dirs - top {
        all.push(all[j % top].join(format!("b{:03}", j / top)));
    }
    let probe = all.last().context("no directory")?.join("f00000.txt");
    let ignored_root = root.join(IGNORED);
    let packages: Vec<PathBuf> = (0..(dirs / 10).max(1)).map(|i| ignored_root.join(format!("pkg{i}"))).collect();
    if !marker.exists() {
        progress(format!("tree: writing {files} files in {dirs} directories under {}…", root.display()));
        if root.exists() {
            std::fs::remove_dir_all(root)?;
        }
        for d in all.iter().chain(&packages) {
            std::fs::create_dir_all(d)?;
        }
        for i in 0..files {
            let dir = &all[i % dirs];
            std::fs::write(dir.join(format!("f{:05}.txt", i / dirs)), format!("file {i}\n"))?;
        }
        for p in &packages {
            for i in 0..10 {
                std::fs::write(p.join(format!("index{i}.js")), "module.exports = 1;\n")?;
            }
        }
        std::fs::write(&marker, "")?;
    }
    let ino = |p: &Path| std::fs::metadata(p).map(|m| m.ino());
    let mut tree_dirs = HashSet::from([ino(root)?]);
    for d in &all {
        tree_dirs.insert(ino(d)?);
    }
    let mut ignored = HashSet::from([ino(&ignored_root)?]);
    for p in &packages {
        ignored.insert(ino(p)?);
    }
    Ok(Tree { root: root.to_path_buf(), dirs: tree_dirs, ignored, files, probe })
}

/// What one run on the tree measured.
#[derive(Clone, Debug, Default)]
pub struct Run {
    /// Spawn → the first run caused by a probe change.
    pub ready: Duration,
    /// Spawn → FileWatch `status.monitorStartTime` (tilt-rs only).
    pub monitor: Option<Duration>,
    /// Spawn → the initial run of the command.
    pub initial: Option<Duration>,
    /// Watches on non-ignored tree directories.
    pub tree_watches: usize,
    /// Watches on ignored directories.
    pub ignored_watches: usize,
    /// Watches elsewhere (e.g. tilt-rs's Tiltfile).
    pub other_watches: usize,
    /// Resident set size, bytes.
    pub rss: u64,
    /// Its anonymous and file-backed parts, bytes.
    pub rss_parts: (u64, u64),
    /// CPU while idle, % of one core.
    pub idle_cpu: f64,
}

/// How long to let a tool settle after it is ready, before its idle CPU is measured.
const SETTLE: Duration = Duration::from_secs(1);

fn since(spawned_ns: i64, t: i64) -> Duration {
    Duration::from_nanos((t - spawned_ns).max(0) as u64)
}

/// Starts `tool` on the tree, measures it and stops it.
pub async fn measure(tool: Tool, bins: &Bins, tree: &Tree, work: &Path, idle: Duration) -> Result<Run> {
    std::fs::create_dir_all(work)?;
    let stamps = work.join("stamps");
    let _ = std::fs::remove_file(&stamps);
    let spec = WatchSpec { dir: &tree.root, ignore: &[IGNORED], files: &[], work, stamps: &stamps };
    let mut w = Watcher::start(tool, bins, &spec).await?;
    let result = async {
        let spawned = w.spawned_ns;
        let limit = Duration::from_secs(120);
        let monitor = w.monitor_started(limit).await?.map(|t| since(spawned, t));
        let (first, _) = next_stamp(&stamps, 0, 0, limit).await.context("no initial run")?;
        let initial = Some(since(spawned, first));
        // Probes every 50 ms (more than tilt-rs's 20 ms debounce, ≤ watchexec's 50 ms cap).
        let ready = since(spawned, probe(&mut w, &tree.probe, Duration::from_millis(50), limit).await?);
        tokio::time::sleep(SETTLE).await;
        let pid = w.pid();
        let watches = inotify_watches(pid)?;
        let tree_watches = watches.iter().filter(|x| tree.dirs.contains(&x.ino)).count();
        let ignored_watches = watches.iter().filter(|x| tree.ignored.contains(&x.ino)).count();
        let rss = rss_bytes(pid)?;
        let rss_parts = rss_parts(pid)?;
        let (c0, t0) = (cpu_seconds(pid)?, Instant::now());
        tokio::time::sleep(idle).await;
        let idle_cpu = (cpu_seconds(pid)? - c0) / t0.elapsed().as_secs_f64() * 100.0;
        w.check_alive()?;
        anyhow::Ok(Run {
            ready,
            monitor,
            initial,
            tree_watches,
            ignored_watches,
            other_watches: watches.len() - tree_watches - ignored_watches,
            rss,
            rss_parts,
            idle_cpu,
        })
    }
    .await;
    let extra = read_stamps(&stamps).len();
    w.stop().await;
    let run = result?;
    progress(format!(
        "tree: {}: ready {:.0} ms, {} + {} + {} watches, RSS {:.1} MB, idle CPU {:.2} % ({} runs)",
        tool.label(),
        run.ready.as_secs_f64() * 1e3,
        run.tree_watches,
        run.ignored_watches,
        run.other_watches,
        run.rss as f64 / 1048576.0,
        run.idle_cpu,
        extra
    ));
    Ok(run)
}
