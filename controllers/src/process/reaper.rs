//! Orphan protection when tilt itself is killed.
//!
//! Every Cmd runs in its own process group, and its direct child gets `PR_SET_PDEATHSIG` = SIGKILL. That
//! does not reach grandchildren (`sh -c 'server &'`, `npm` → `node`), so tilt also starts one small reaper
//! process, in a process group of its own, and tells it over a pipe which process groups are alive. The
//! reaper does nothing until the pipe closes — which happens however tilt exits, SIGKILL included — and then
//! kills every group still registered.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The tilt side of the reaper: registers and unregisters process groups.
pub struct Reaper {
    pipe: Mutex<Option<ChildStdin>>,
    process: Mutex<Option<Child>>,
}

impl Reaper {
    /// A reaper that is not running (tests that do not kill their process).
    pub fn disabled() -> Reaper {
        Reaper { pipe: Mutex::new(None), process: Mutex::new(None) }
    }

    /// Starts `program args…` as the reaper process; it must call [`serve`] on its stdin.
    pub fn spawn(program: &Path, args: &[&str]) -> std::io::Result<Reaper> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            // Its own group: a Ctrl-C in the terminal must not kill it before tilt has cleaned up.
            .process_group(0)
            .spawn()?;
        let pipe = child.stdin.take();
        Ok(Reaper { pipe: Mutex::new(pipe), process: Mutex::new(Some(child)) })
    }

    fn send(&self, line: &str) {
        let mut pipe = self.pipe.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = pipe.as_mut()
            && p.write_all(line.as_bytes()).and_then(|()| p.flush()).is_err()
        {
            tracing::warn!("the reaper process is gone; children may outlive a killed tilt");
            *pipe = None;
        }
    }

    /// Tells the reaper that process group `pgid` is alive.
    pub fn register(&self, pgid: i32) {
        self.send(&format!("+{pgid}\n"));
    }

    /// Tells the reaper that process group `pgid` is gone.
    pub fn unregister(&self, pgid: i32) {
        self.send(&format!("-{pgid}\n"));
    }

    /// Closes the pipe, so the reaper kills what is left and exits, and returns the reaper process.
    fn take(&self) -> Option<Child> {
        self.pipe.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.process.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Closes the pipe (the reaper kills what is left and exits) and waits for it, off the async threads.
    pub async fn close(&self) {
        if let Some(mut child) = self.take() {
            let _ = tokio::task::spawn_blocking(move || child.wait()).await;
        }
    }
}

impl Drop for Reaper {
    /// Closes the pipe; the reaper is reaped by a thread of its own, so a drop never blocks.
    fn drop(&mut self) {
        if let Some(mut child) = self.take() {
            std::thread::spawn(move || child.wait());
        }
    }
}

/// The reaper process: reads `+pgid` / `-pgid` lines until end of input, then SIGKILLs every group still
/// registered. Returns how many groups it killed.
pub fn serve(input: impl BufRead) -> usize {
    let mut groups = BTreeSet::new();
    for line in input.lines() {
        let Ok(line) = line else { break };
        let (op, pgid) = line.split_at(line.len().min(1));
        match (op, pgid.trim().parse::<i32>()) {
            ("+", Ok(p)) if p > 1 => {
                groups.insert(p);
            }
            ("-", Ok(p)) => {
                groups.remove(&p);
            }
            _ => {}
        }
    }
    groups.iter().filter(|&&pgid| killpg(Pid::from_raw(pgid), Signal::SIGKILL).is_ok()).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kills_only_groups_still_registered() {
        use std::os::unix::process::CommandExt;
        let mut alive = Command::new("sleep").arg("30").process_group(0).spawn().unwrap();
        let mut done = Command::new("sleep").arg("30").process_group(0).spawn().unwrap();
        let input = format!("+{}\n+{}\n-{}\ngarbage\n", alive.id(), done.id(), done.id());
        assert_eq!(serve(input.as_bytes()), 1);
        let status = alive.wait().unwrap();
        assert!(!status.success(), "the registered group was killed");
        assert!(done.try_wait().unwrap().is_none(), "the unregistered group was left alone");
        done.kill().unwrap();
        done.wait().unwrap();
    }
}
