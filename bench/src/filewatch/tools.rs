//! The file watchers under test, each started in the same way: watch a directory, run
//! `bench-stamp STAMPS` (argv form, no shell) on every change, using the tool's default debounce.
//!
//! - tilt-rs: `tilt up` on a Tiltfile with `local_resource('r', cmd=[STAMP, STAMPS], deps=[DIR])`;
//! - watchexec: `watchexec -w DIR --shell=none -- STAMP STAMPS`;
//! - entr: `entr -n STAMP STAMPS` with the watched files on stdin;
//! - inotifywait (the floor): `inotifywait -m -r -e close_write,create,moved_to DIR` piped into a
//!   `while read` shell loop that runs the stamp helper.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tilt_bench::proc::Group;
use tilt_bench::tilt::{API, TiltUp, now_ns};
use tokio::process::Command;

/// A file watcher under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// tilt-rs (`tilt up`).
    Tilt,
    /// watchexec-cli from crates.io.
    Watchexec,
    /// Debian's entr.
    Entr,
    /// An inotifywait loop, the floor.
    Inotifywait,
}

impl Tool {
    /// Its column heading.
    pub fn label(self) -> &'static str {
        match self {
            Tool::Tilt => "tilt-rs",
            Tool::Watchexec => "watchexec",
            Tool::Entr => "entr",
            Tool::Inotifywait => "inotifywait loop",
        }
    }
}

/// Where the executables are; `None` for a tool that is not installed.
pub struct Bins {
    /// The `tilt` binary.
    pub tilt: PathBuf,
    /// `watchexec`.
    pub watchexec: Option<PathBuf>,
    /// `entr`.
    pub entr: Option<PathBuf>,
    /// `inotifywait`.
    pub inotifywait: Option<PathBuf>,
    /// The stamp helper (`bench-stamp`).
    pub stamp: PathBuf,
}

impl Bins {
    /// The executable of `tool`, if installed.
    pub fn of(&self, tool: Tool) -> Option<&Path> {
        match tool {
            Tool::Tilt => Some(&self.tilt),
            Tool::Watchexec => self.watchexec.as_deref(),
            Tool::Entr => self.entr.as_deref(),
            Tool::Inotifywait => self.inotifywait.as_deref(),
        }
    }
}

/// `name` on `PATH` (or in `/usr/bin`), if it is there.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]).map(|d| d.join(name)).find(|p| p.is_file())
}

/// What to watch and how.
pub struct WatchSpec<'a> {
    /// The watched directory (absolute).
    pub dir: &'a Path,
    /// Directory names ignored anywhere below it (tilt-rs `ignore=`, watchexec `-i`).
    pub ignore: &'a [&'a str],
    /// For entr, which watches a list of files: the files to list.
    pub files: &'a [PathBuf],
    /// A scratch directory for this watcher (tilt's home, logs). tilt-rs's Tiltfile goes next to `dir`.
    pub work: &'a Path,
    /// The stamp file the command appends to.
    pub stamps: &'a Path,
}

/// A running watcher.
pub struct Watcher {
    /// Which tool.
    pub tool: Tool,
    /// Where its command appends its stamps.
    pub stamps: PathBuf,
    /// When it was spawned (CLOCK_REALTIME ns).
    pub spawned_ns: i64,
    proc: Proc,
}

enum Proc {
    Tilt(Box<TiltUp>),
    /// The tool's processes (the first is the one measured), each in its own group.
    Groups(Vec<Group>),
}

fn quiet(cmd: &mut Command, work: &Path, name: &str) -> Result<()> {
    cmd.current_dir(work).stdin(Stdio::null()).stdout(Stdio::null());
    cmd.stderr(std::fs::File::create(work.join(format!("{name}.stderr")))?);
    Ok(())
}

/// A Starlark string literal for `s` (JSON escaping is valid Starlark for these paths).
fn starlark_str(s: &Path) -> String {
    serde_json::to_string(&s.to_string_lossy()).unwrap_or_default()
}

impl Watcher {
    /// Starts `tool` watching `spec.dir`.
    pub async fn start(tool: Tool, bins: &Bins, spec: &WatchSpec<'_>) -> Result<Watcher> {
        let bin = bins.of(tool).with_context(|| format!("{} is not installed", tool.label()))?;
        std::fs::create_dir_all(spec.work)?;
        let stamp = &bins.stamp;
        let spawned_ns = now_ns();
        let proc = match tool {
            Tool::Tilt => {
                // Next to the watched directory: `ignore=` patterns are relative to the Tiltfile's directory.
                let tiltfile = spec.dir.parent().unwrap_or(spec.work).join("Tiltfile");
                let ignore: Vec<String> = spec.ignore.iter().map(|i| format!("{i:?}")).collect();
                std::fs::write(
                    &tiltfile,
                    format!(
                        "local_resource('r', cmd=[{}, {}], deps=[{}], ignore=[{}])\n",
                        starlark_str(stamp),
                        starlark_str(spec.stamps),
                        starlark_str(spec.dir),
                        ignore.join(", ")
                    ),
                )?;
                Proc::Tilt(Box::new(TiltUp::start(bin, &tiltfile, &[], &spec.work.join("home")).await?))
            }
            Tool::Watchexec => {
                let mut cmd = Command::new(bin);
                cmd.arg("-w").arg(spec.dir).arg("--shell=none");
                for i in spec.ignore {
                    cmd.arg("-i").arg(format!("**/{i}")).arg("-i").arg(format!("**/{i}/**"));
                }
                cmd.arg("--").arg(stamp).arg(spec.stamps);
                quiet(&mut cmd, spec.work, "watchexec")?;
                Proc::Groups(vec![Group::spawn(&mut cmd)?])
            }
            Tool::Entr => {
                let list = spec.work.join("entr.files");
                let names: Vec<String> = spec.files.iter().map(|f| f.to_string_lossy().into_owned()).collect();
                std::fs::write(&list, names.join("\n") + "\n")?;
                let mut cmd = Command::new(bin);
                cmd.arg("-n").arg(stamp).arg(spec.stamps);
                quiet(&mut cmd, spec.work, "entr")?;
                cmd.stdin(std::fs::File::open(&list)?);
                Proc::Groups(vec![Group::spawn(&mut cmd)?])
            }
            Tool::Inotifywait => {
                // Two children of ours (not a shell pipeline), so that both die with the benchmark.
                let (reader, writer) = std::io::pipe()?;
                let mut watch = Command::new(bin);
                watch.args(["-m", "-q", "-r", "-e", "close_write,create,moved_to", "--format", "%w%f"]).arg(spec.dir);
                quiet(&mut watch, spec.work, "inotifywait")?;
                watch.stdout(writer);
                let watch = Group::spawn(&mut watch)?;
                let mut run = Command::new("sh");
                run.arg("-c").arg("while read -r _; do \"$0\" \"$1\"; done").arg(stamp).arg(spec.stamps);
                quiet(&mut run, spec.work, "loop")?;
                run.stdin(reader);
                Proc::Groups(vec![watch, Group::spawn(&mut run)?])
            }
        };
        Ok(Watcher { tool, stamps: spec.stamps.to_path_buf(), spawned_ns, proc })
    }

    /// The pid whose inotify watches, RSS and CPU are measured (tilt, watchexec, entr, inotifywait).
    pub fn pid(&self) -> u32 {
        match &self.proc {
            Proc::Tilt(t) => t.pid,
            Proc::Groups(g) => g[0].pid,
        }
    }

    /// Fails when one of its processes has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        match &mut self.proc {
            Proc::Tilt(t) => t.check_alive(),
            Proc::Groups(groups) => {
                for g in groups {
                    if let Some(status) = g.try_wait()? {
                        bail!("{} exited ({status})", self.tool.label());
                    }
                }
                Ok(())
            }
        }
    }

    /// For tilt-rs: polls FileWatch `local:r` (every 5 ms, up to `limit`) until `status.monitorStartTime`
    /// is set; returns it (CLOCK_REALTIME ns). None for the other tools.
    pub async fn monitor_started(&mut self, limit: Duration) -> Result<Option<i64>> {
        let Proc::Tilt(t) = &mut self.proc else { return Ok(None) };
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(fw) = t.get(&format!("{API}/filewatches/local:r")).await
                && let Some(ns) = tilt_bench::tilt::parse_time(&fw["status"]["monitorStartTime"])
            {
                return Ok(Some(ns));
            }
            t.check_alive()?;
            if Instant::now() > deadline {
                bail!("FileWatch local:r has no monitorStartTime after {} s; {}", limit.as_secs(), t.diagnostics());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops it: tilt-rs by SIGTERM (it stops its commands) and a wait, the others by SIGTERM to their
    /// process groups; whatever is left after 3 s is SIGKILLed.
    pub async fn stop(self) {
        match self.proc {
            Proc::Tilt(t) => {
                t.stop(Duration::from_secs(3)).await;
            }
            Proc::Groups(groups) => {
                for g in groups {
                    g.stop(libc::SIGTERM, true, Duration::from_secs(3)).await;
                }
            }
        }
    }
}

/// The stamps (CLOCK_REALTIME ns) in a stamp file so far; none if it does not exist yet.
pub fn read_stamps(path: &Path) -> Vec<i64> {
    std::fs::read_to_string(path).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// Waits (polling every millisecond, up to `limit`) until `path` holds more than `seen` stamps and
/// returns the first new one that is not older than `not_before`, with the number of stamps then present.
/// Older new stamps (late runs of an earlier change) are skipped.
pub async fn next_stamp(path: &Path, seen: usize, not_before: i64, limit: Duration) -> Option<(i64, usize)> {
    let deadline = Instant::now() + limit;
    loop {
        let stamps = read_stamps(path);
        if let Some(&t) = stamps.iter().skip(seen).find(|&&t| t >= not_before) {
            return Some((t, stamps.len()));
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Changes `file` (truncate and write new content, as an editor's save in place does) and returns the
/// CLOCK_REALTIME ns just before the write.
pub fn touch(file: &Path, n: u64) -> Result<i64> {
    let t0 = now_ns();
    std::fs::write(file, format!("change {n}\n")).with_context(|| format!("writing {}", file.display()))?;
    Ok(t0)
}

/// Writes `file` every `every` until a run of the watcher's command starts after one of the writes (up to
/// `limit`); returns that run's stamp. Runs before the first write (e.g. the initial run) do not count.
pub async fn probe(w: &mut Watcher, file: &Path, every: Duration, limit: Duration) -> Result<i64> {
    let deadline = Instant::now() + limit;
    let seen = read_stamps(&w.stamps).len();
    let mut first_write = None;
    let mut n = 0;
    loop {
        let t0 = touch(file, 1_000_000 + n)?;
        n += 1;
        let first = *first_write.get_or_insert(t0);
        if let Some((t, _)) = next_stamp(&w.stamps, seen, first, every).await {
            return Ok(t);
        }
        w.check_alive()?;
        if Instant::now() > deadline {
            bail!("{}: no run after {} probe writes in {} s", w.tool.label(), n, limit.as_secs());
        }
    }
}
