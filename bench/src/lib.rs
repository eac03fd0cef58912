//! Shared pieces of the tilt-rs benchmarks (`apiserver-bench`, `filewatch-bench`, `tiltfile-bench`): the
//! HTTP client and latency statistics, child-process management (every child killed on drop, on panic and
//! when the benchmark dies), `/proc` readings, the `tilt` binary driver and the report table.

pub mod client;
pub mod proc;
pub mod report;
pub mod tilt;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Scratch directories to remove when the run ends early (see [`remove_on_exit`]).
static SCRATCH: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Registers a scratch directory (normally a `TempDir`, removed on drop) to be removed also when the run
/// ends early through [`watchdog`] or [`exit_on_signal`], where no destructor runs.
pub fn remove_on_exit(dir: &Path) {
    if let Ok(mut dirs) = SCRATCH.lock() {
        dirs.push(dir.to_path_buf());
    }
}

/// Kills every registered process group, removes the scratch directories and exits with `code`.
fn exit_early(code: i32) -> ! {
    proc::kill_groups();
    std::thread::sleep(Duration::from_millis(100));
    for dir in SCRATCH.lock().map(|d| d.clone()).unwrap_or_default() {
        let _ = std::fs::remove_dir_all(dir);
    }
    std::process::exit(code);
}

/// Ends the whole run (and so, through `PR_SET_PDEATHSIG`, their closed stdin and [`proc::kill_groups`],
/// every child) if it has not finished within `limit`: a stalled system must not hang the benchmark.
pub fn watchdog(name: &'static str, limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("{name}: not finished after {} s, giving up", limit.as_secs());
        exit_early(2);
    });
}

/// Kills every registered process group and exits on SIGINT or SIGTERM, so that Ctrl-C leaves nothing
/// behind (tool processes live in their own process groups and would not see the terminal's SIGINT).
pub fn exit_on_signal(name: &'static str) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
            return;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        eprintln!("{name}: interrupted, stopping every child");
        exit_early(130);
    });
}

/// Prints a progress line on stderr.
pub fn progress(msg: impl AsRef<str>) {
    eprintln!("· {}", msg.as_ref());
}

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The median of `v` (sorted in place); None when empty.
pub fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

/// The machine's core count and load average, for report headers.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    format!("{cores} cores, load average {load} at the end")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
