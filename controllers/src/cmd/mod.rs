//! The Cmd controller: runs each Cmd's process and reports it in `status`.
//!
//! A Cmd runs `spec.args` in its own process group with its output in the [`LogStore`]. Its
//! `spec.restartOn` / `spec.startOn` name FileWatches and UIButtons; when one of them has a newer event than
//! the one the current process was started for, the process is stopped — SIGTERM to the group, up to a
//! grace period, SIGKILL — and only then started again, so a server never races its successor for a port.
//! A change of spec restarts it too. The process table is keyed by name and remembers the object's UID,
//! the spec and the trigger time it was started with, so `reconcile` is idempotent.
//!

//! The controller runs on the [`crate::runtime`] skeleton; references are followed through its index: a
//! FileWatch, UIButton, UIResource, ConfigMap or Cmd event reconciles exactly the Cmds that name it.

pub mod probe;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use tilt_apis::{
    CMD_STOPPED_REASON, Cmd, CmdSpec, CmdStateRunning, CmdStateTerminated, CmdStateWaiting, CmdStatus, ConfigMap,
    DisableStatus, FileWatch, RestartPolicy, UIButton, UIResource,
};
use tokio_util::sync::CancellationToken;

use crate::logs::{LogLevel, LogStore};
use crate::process::reaper::Reaper;
use crate::process::{self, ProcessGroup};
use crate::references::{disabled_by, references, resource_of, triggers};
use crate::runtime::{Gone, Informers, Reconciler, Setup};
use crate::status::StatusCell;

/// The field manager of this controller's status writes.
pub const MANAGER: &str = "tilt-cmd-controller";

/// How the controller runs processes.
#[derive(Debug, Clone)]
pub struct CmdConfig {
    /// How long a process has between SIGTERM and SIGKILL when it is restarted or deleted.
    pub grace: Duration,
    /// The same, when tilt shuts down (everything must be gone within 1 s).
    pub shutdown_grace: Duration,
    /// Working directory for Cmds without `spec.dir`.
    pub default_dir: PathBuf,
    /// First delay before a restart under `restartPolicy` (doubling up to 30 s).
    pub restart_backoff: Duration,
}

impl Default for CmdConfig {
    fn default() -> Self {
        CmdConfig {
            grace: Duration::from_secs(3),
            shutdown_grace: Duration::from_millis(500),
            default_dir: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            restart_backoff: Duration::from_secs(1),
        }
    }
}

/// A running process's supervisor task.
struct Run {
    stop: CancellationToken,
    /// The SIGTERM-to-SIGKILL grace the task uses when stopped.
    grace: Arc<Mutex<Duration>>,
    task: tokio::task::JoinHandle<()>,
}

impl Run {
    /// Stops the process (SIGTERM, up to `grace`, SIGKILL) and waits until it is gone.
    async fn stop(self, grace: Duration) {
        *self.grace.lock().unwrap_or_else(|e| e.into_inner()) = grace;
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// What the controller keeps for one Cmd.
pub struct Entry {
    spec: CmdSpec,
    /// The newest restart/start trigger the current process was started for.
    trigger: Option<Timestamp>,
    run: Option<Run>,
    status: Arc<StatusCell<Cmd>>,
}

/// The Cmd controller: runs processes for Cmds.
pub struct CmdController {
    informers: Arc<Informers>,
    logs: Arc<LogStore>,
    reaper: Arc<Reaper>,
    config: CmdConfig,
}

fn micro(t: Timestamp) -> MicroTime {
    MicroTime(t)
}

impl Reconciler for CmdController {
    type K = Cmd;
    type State = Entry;
    type Error = std::convert::Infallible;
    const NAME: &'static str = "cmd";

    /// Brings the process of one Cmd in line with its spec and triggers.
    async fn reconcile(&self, cmd: Arc<Cmd>, entry: &mut Option<Entry>) -> Result<Action, Self::Error> {
        let name = cmd.name_any();
        let refs = &*self.informers;
        let disabled = disabled_by(refs, cmd.spec.disable_source.as_ref()).await;
        let (trigger, waiting) = triggers(refs, cmd.spec.restart_on.as_ref(), cmd.spec.start_on.as_ref()).await;
        if let Some(reason) = disabled {
            let status = self.stop(entry.take(), &name).await;
            let already = status.get().await.disable_status.is_some_and(|d| d.disabled && d.reason == reason);
            if !already {
                status
                    .update(|s| {
                        *s = CmdStatus {
                            waiting: Some(CmdStateWaiting { reason: "disabled".into() }),
                            disable_status: Some(DisableStatus {
                                disabled: true,
                                last_update_time: Some(micro(Timestamp::now())),
                                reason,
                                state: "Disabled".into(),
                            }),
                            ..Default::default()
                        }
                    })
                    .await;
            }
            // Forget the trigger: enabling again starts the process afresh.
            *entry = Some(Entry { spec: cmd.spec.clone(), trigger: None, run: None, status });
            return Ok(Action::await_change());
        }
        if let Some(e) = entry.as_ref() {
            let newer_trigger = trigger.is_some() && trigger > e.trigger;
            if e.spec == cmd.spec && !newer_trigger && e.run.is_some() {
                return Ok(Action::await_change());
            }
        }
        // Stop what runs now (an old spec, or an older trigger) first.
        let status = self.stop(entry.take(), &name).await;
        if let Some(reason) = waiting {
            let unchanged = status.get().await.waiting.is_some_and(|w| w.reason == reason);
            if !unchanged {
                status
                    .update(|s| *s = CmdStatus { waiting: Some(CmdStateWaiting { reason }), ..Default::default() })
                    .await;
            }
            *entry = Some(Entry { spec: cmd.spec.clone(), trigger, run: None, status });
            return Ok(Action::await_change());
        }
        let run = start(self, &cmd, status.clone());
        *entry = Some(Entry { spec: cmd.spec.clone(), trigger, run: Some(run), status });
        Ok(Action::await_change())
    }

    async fn forget(&self, entry: Entry, why: Gone) {
        let grace = match why {
            Gone::Deleted => self.config.grace,
            Gone::Shutdown => self.config.shutdown_grace,
        };
        if let Some(run) = entry.run {
            run.stop(grace).await;
        }
    }
}

impl CmdController {
    /// Stops the process of `entry`, if any, and returns its status cell (a new one when there was none).
    async fn stop(&self, entry: Option<Entry>, name: &str) -> Arc<StatusCell<Cmd>> {
        match entry {
            Some(mut old) => {
                if let Some(run) = old.run.take() {
                    run.stop(self.config.grace).await;
                }
                old.status
            }
            None => Arc::new(StatusCell::new(self.informers.client().clone(), name, MANAGER)),
        }
    }
}

/// Starts the supervisor task of one process: spawn, probe, wait, report, and restart per policy.
fn start(ctl: &CmdController, cmd: &Cmd, status: Arc<StatusCell<Cmd>>) -> Run {
    let stop = CancellationToken::new();
    let grace = Arc::new(Mutex::new(ctl.config.grace));
    let task_grace = grace.clone();
    let spec = cmd.spec.clone();
    let resource = resource_of(cmd);
    let source = format!("cmd/{}", cmd.name_any());
    let (logs, reaper, config) = (ctl.logs.clone(), ctl.reaper.clone(), ctl.config.clone());
    let token = stop.clone();
    let task = tokio::spawn(async move {
        let policy = spec.restart_policy.unwrap_or_default();
        let mut backoff = config.restart_backoff;
        let dir = if spec.dir.is_empty() { config.default_dir.clone() } else { PathBuf::from(&spec.dir) };
        loop {
            let started_at = Timestamp::now();
            let mut group = match ProcessGroup::spawn(&spec.args, &dir, &spec.env, &logs, &resource, &source) {
                Ok(g) => g,
                Err(err) => {
                    logs.append_level(&resource, &source, LogLevel::Error, &err.to_string());
                    status
                        .update(|s| {
                            *s = CmdStatus {
                                terminated: Some(CmdStateTerminated {
                                    pid: 0,
                                    exit_code: 127,
                                    started_at: Some(micro(started_at)),
                                    finished_at: Some(micro(Timestamp::now())),
                                    reason: err.to_string(),
                                }),
                                ..Default::default()
                            }
                        })
                        .await;
                    return;
                }
            };
            let pid = group.pid;
            reaper.register(pid);
            let probe = spec.readiness_probe.clone();
            status
                .update(|s| {
                    *s = CmdStatus {
                        running: Some(CmdStateRunning { pid, started_at: Some(micro(started_at)) }),
                        ready: probe.is_none(),
                        ..Default::default()
                    }
                })
                .await;
            let probing = probe.map(|p| {
                let status = status.clone();
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let prober = tokio::spawn(probe::run(p, move |ready, _why| {
                    let _ = tx.send(ready);
                }));
                let writer = tokio::spawn(async move {
                    while let Some(ready) = rx.recv().await {
                        status.update(|s| s.ready = ready).await;
                    }
                });
                (prober, writer)
            });
            let (exit, stopped) = tokio::select! {
                exit = group.wait() => (exit, false),
                _ = token.cancelled() => {
                    let grace = *task_grace.lock().unwrap_or_else(|e| e.into_inner());
                    (group.terminate(grace).await, true)
                }
            };
            reaper.unregister(pid);
            if let Some((prober, writer)) = probing {
                prober.abort();
                writer.abort();
                let _ = writer.await;
            }
            let code = exit.as_ref().map(process::exit_code).unwrap_or(-1);
            let reason = match (&exit, stopped) {
                (Err(e), _) => format!("waiting for the process failed: {e}"),
                (Ok(_), true) => CMD_STOPPED_REASON.to_string(),
                (Ok(s), false) if s.success() => String::new(),
                (Ok(_), false) => format!("exited with code {code}"),
            };
            status
                .update(|s| {
                    let succeeded = code == 0 && !stopped;
                    *s = CmdStatus {
                        terminated: Some(CmdStateTerminated {
                            pid,
                            exit_code: code,
                            started_at: Some(micro(started_at)),
                            finished_at: Some(micro(Timestamp::now())),
                            reason,
                        }),
                        // A command that ran to completion is ready; one that failed or was stopped is not.
                        ready: succeeded && spec.readiness_probe.is_none(),
                        ..Default::default()
                    }
                })
                .await;
            let again = match policy {
                RestartPolicy::Never => false,
                RestartPolicy::OnFailure => code != 0,
                RestartPolicy::Always => true,
            };
            if stopped || !again {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = token.cancelled() => return,
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    });
    Run { stop, grace, task }
}

/// Runs the controller until `shutdown` is cancelled, then stops every process it started.
pub async fn run(
    informers: Arc<Informers>,
    shutdown: CancellationToken,
    logs: Arc<LogStore>,
    reaper: Arc<Reaper>,
    config: CmdConfig,
) {
    let controller = Arc::new(CmdController { informers: informers.clone(), logs, reaper, config });
    Setup::new(controller, &informers)
        .index(|c: &Cmd| {
            references(c.spec.restart_on.as_ref(), c.spec.start_on.as_ref(), c.spec.disable_source.as_ref())
        })
        .referenced::<FileWatch>()
        .referenced::<UIButton>()
        .referenced::<UIResource>()
        .referenced::<ConfigMap>()
        .run(shutdown)
        .await;
}
