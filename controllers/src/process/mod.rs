//! Processes tilt runs for users (Cmds, `custom_build` commands): each spawned in its own process group with
//! its output in the log store, and stopped gracefully (SIGTERM to the whole group, a bounded wait, then
//! SIGKILL) before anything replaces it; the orphan [`reaper`] kills the groups if tilt dies.
//!
//! The leader is started by [`spawn`] (no `fork()` of tilt) and awaited by itself, not with
//! process-wrap's group child, whose `wait` also waits for every other member of the group: a server's
//! leftover background children would then hide that the server itself exited.

use std::path::Path;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use self::spawn::Exit;
use crate::logs::LogStore;

pub mod reaper;
mod spawn;

/// A spawned process group.
pub struct ProcessGroup {
    /// The leader's pid, which is also the group id.
    pub pid: i32,
    exit: Exit,
    /// The tasks copying stdout and stderr into the log.
    copies: Vec<tokio::task::JoinHandle<()>>,
}

/// Why a process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The argv is empty.
    #[error("spec.args is empty: nothing to run")]
    NoArgs,
    /// The OS refused (no such file, not executable, bad directory, …).
    #[error("failed to start {program:?}: {source}")]
    Os {
        /// The program.
        program: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Streams `reader` into `logs` line by line (lossy UTF-8, so binary output cannot stop the copy).
fn copy_lines(
    reader: impl AsyncRead + Unpin + Send + 'static,
    logs: Arc<LogStore>,
    resource: String,
    source: String,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                        buf.pop();
                    }
                    logs.append(&resource, &source, &String::from_utf8_lossy(&buf));
                }
            }
        }
    })
}

impl ProcessGroup {
    /// Starts `argv` in `dir` with `env` (`KEY=VALUE`) over tilt's environment, in a new process group, with
    /// stdout and stderr going to `logs` under `resource`.
    pub fn spawn(
        argv: &[String],
        dir: &Path,
        env: &[String],
        logs: &Arc<LogStore>,
        resource: &str,
        source: &str,
    ) -> Result<ProcessGroup, SpawnError> {
        let (program, args) = argv.split_first().ok_or(SpawnError::NoArgs)?;
        let started = spawn::spawn(&spawn::Spec { program, args, env, dir })
            .map_err(|source| SpawnError::Os { program: program.clone(), source })?;
        let copies = vec![
            copy_lines(started.stdout, logs.clone(), resource.to_string(), source.to_string()),
            copy_lines(started.stderr, logs.clone(), resource.to_string(), source.to_string()),
        ];
        Ok(ProcessGroup { pid: started.pid, exit: started.exit, copies })
    }

    /// Waits, at most `within`, until the output written before the group ended is in the log, so that
    /// what follows it there (a build's result) comes after it.
    pub async fn flushed(&mut self, within: Duration) {
        let copies = futures::future::join_all(std::mem::take(&mut self.copies));
        let _ = tokio::time::timeout(within, copies).await;
    }

    /// Waits for the leader to exit, then kills whatever it left behind in its group.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.exit.wait().await;
        self.kill_group();
        status
    }

    fn kill_group(&self) {
        if self.pid > 0 {
            // ESRCH (nobody left) is the normal case.
            let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
        }
    }

    /// SIGTERM to the group, up to `grace` for the leader to exit, then SIGKILL to the group.
    pub async fn terminate(&mut self, grace: Duration) -> std::io::Result<ExitStatus> {
        if self.pid > 0 {
            let _ = killpg(Pid::from_raw(self.pid), Signal::SIGTERM);
        }
        match tokio::time::timeout(grace, self.exit.wait()).await {
            Ok(status) => {
                self.kill_group();
                status
            }
            Err(_) => {
                self.kill_group();
                self.exit.wait().await
            }
        }
    }
}

/// The exit code of `status`, as a shell would report it (128 + signal for a killed process).
pub fn exit_code(status: &ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn output_reaches_the_log_store_and_env_is_set() {
        let logs = Arc::new(LogStore::default());
        let s = argv(&["sh", "-c", "echo out $GREETING; echo err >&2; exit 3"]);
        let mut p = ProcessGroup::spawn(&s, Path::new("/"), &["GREETING=hi".into()], &logs, "r", "cmd/r").unwrap();
        let status = p.wait().await.unwrap();
        assert_eq!(exit_code(&status), 3);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut texts: Vec<String> = logs.lines(&[], 0).into_iter().map(|l| l.text).collect();
        texts.sort();
        assert_eq!(texts, ["err", "out hi"]);
    }

    #[tokio::test]
    async fn terminate_kills_a_process_that_ignores_sigterm_and_its_children() {
        let logs = Arc::new(LogStore::default());
        let s = argv(&["sh", "-c", "trap '' TERM; sleep 30 & echo $!; wait"]);
        let mut p = ProcessGroup::spawn(&s, Path::new("/"), &[], &logs, "r", "cmd/r").unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let grandchild: i32 = logs.lines(&[], 0)[0].text.parse().unwrap();
        let start = std::time::Instant::now();
        let status = p.terminate(Duration::from_millis(300)).await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert_eq!(exit_code(&status), 128 + 9);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let alive = nix::sys::signal::kill(Pid::from_raw(grandchild), None).is_ok()
            && !std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default().contains(") Z");
        assert!(!alive, "the grandchild was killed with its group");
    }

    #[test]
    fn missing_binary_is_a_clear_error() {
        let logs = Arc::new(LogStore::default());
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let err = rt
            .block_on(async {
                ProcessGroup::spawn(&argv(&["/no/such/binary"]), Path::new("/"), &[], &logs, "r", "c").err()
            })
            .unwrap();
        assert!(err.to_string().contains("/no/such/binary"), "{err}");
        assert!(err.to_string().contains("No such file"), "{err}");
    }
}
