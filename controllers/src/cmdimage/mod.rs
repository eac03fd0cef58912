//! The CmdImage controller: runs each CmdImage's command (Tiltfile `custom_build`) and publishes the image
//! it built in the CmdImage's and its ImageMap's `status`, which is how the KubernetesApply controller
//! learns what to inject, exactly as for DockerImages.
//!
//! Builds start and queue as DockerImage builds do: when the object appears or its spec changes (which
//! cancels a running build), and again when a FileWatch or UIButton in `spec.restartOn` (tilt-rs addition:
//! the `deps` FileWatch `image:IMAGEMAP` and the resource's trigger button) has an event newer than the one
//! the last build started for; an event during a build queues one more after it. `spec.startOn` holds the
//! first build until the `resource_deps` are Ready and, with `auto_init=False`, a click; `spec.disableSource`
//! stops building while the resource is disabled.
//!
//! The command ([`build`]) runs in its own process group (SIGTERM, grace, SIGKILL when cancelled; the orphan
//! reaper's if tilt dies) with its output in the resource's build log. On success `status.ref` and the
//! ImageMap named by `spec.imageMap` get the built reference; on failure `status.completed.error` says why
//! (the command's exit status), which the UIResource controller turns into a build error.

mod build;

use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};
use tilt_apis::{
    Cmd, CmdImage, CmdImageSpec, CmdImageStateBuilding, CmdImageStateCompleted, CmdImageStateWaiting, ConfigMap,
    FileWatch, UIButton, UIResource,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::image::{BuildHistory, DockerConfig, next_build};
use crate::logs::{LogLevel, LogStore};
use crate::process::reaper::Reaper;
use crate::references::{disabled_by, references, resource_of, triggers};
use crate::runtime::{Gone, Informers, Reconciler, Setup};

/// The field manager of this controller's status writes.
pub const MANAGER: &str = "tilt-cmdimage-controller";

type StatusCell = crate::status::StatusCell<CmdImage>;

/// What the controller did for one CmdImage.
pub struct Entry {
    spec: CmdImageSpec,
    /// The newest restartOn/startOn event the current or last build started for.
    trigger: Option<Timestamp>,
    /// The current or last build and what cancels it; `None` while waiting or disabled.
    task: Option<(CancellationToken, tokio::task::JoinHandle<()>)>,
    /// Whether a build was started for this object before (the reason of the next one).
    built_before: bool,
    status: Arc<StatusCell>,
}

impl Entry {
    fn building(&self) -> bool {
        self.task.as_ref().is_some_and(|(_, t)| !t.is_finished())
    }

    /// Stops a running build (its command's process group included) and waits until it is gone, so it
    /// writes no status after this.
    async fn cancel(&mut self) {
        if let Some((stop, task)) = self.task.take() {
            stop.cancel();
            let _ = task.await;
        }
    }
}

/// The CmdImage controller.
#[derive(Clone)]
pub struct Ctx {
    client: Client,
    informers: Arc<Informers>,
    logs: Arc<LogStore>,
    reaper: Arc<Reaper>,
    docker: DockerConfig,
    /// Working directory of commands without `spec.dir`.
    default_dir: PathBuf,
    /// Asks for a reconcile when a build ends (a queued rebuild may be due).
    requeue: mpsc::UnboundedSender<ObjectRef<CmdImage>>,
}

impl Reconciler for Ctx {
    type K = CmdImage;
    type State = Entry;
    type Error = std::convert::Infallible;
    const NAME: &'static str = "cmdimage";

    async fn reconcile(&self, ci: Arc<CmdImage>, state: &mut Option<Entry>) -> Result<Action, Self::Error> {
        reconcile(self, ci, state).await;
        Ok(Action::await_change())
    }

    async fn forget(&self, mut entry: Entry, _: Gone) {
        entry.cancel().await;
    }
}

/// Starts or queues the build of one CmdImage as its spec, triggers and conditions require.
async fn reconcile(ctx: &Ctx, ci: Arc<CmdImage>, state: &mut Option<Entry>) {
    let name = ci.name_any();
    let lookup = &*ctx.informers;
    let disabled = disabled_by(lookup, ci.spec.disable_source.as_ref()).await;
    let (newest, waiting) = triggers(lookup, ci.spec.restart_on.as_ref(), ci.spec.start_on.as_ref()).await;
    let entry = state.get_or_insert_with(|| Entry {
        spec: ci.spec.clone(),
        trigger: None,
        task: None,
        built_before: false,
        status: Arc::new(StatusCell::new(ctx.client.clone(), &name, MANAGER)),
    });

    if let Some(reason) = disabled {
        entry.cancel().await;
        entry.trigger = None;
        entry.spec = ci.spec.clone();
        set_waiting(&entry.status, reason).await;
        return;
    }

    let history = BuildHistory {
        last_spec: &entry.spec,
        last_trigger: entry.trigger,
        built_before: entry.built_before,
        has_build: entry.task.is_some(),
        building: entry.building(),
    };
    let Some(reason) = next_build(lookup, history, &ci.spec, ci.spec.restart_on.as_ref(), newest).await else {
        return;
    };
    entry.cancel().await;
    entry.spec = ci.spec.clone();
    entry.trigger = newest;
    if let Some(why) = waiting {
        set_waiting(&entry.status, why).await;
        return;
    }
    entry.built_before = true;
    let stop = CancellationToken::new();
    entry.task = Some((stop.clone(), start(ctx, &ci, reason, entry.status.clone(), stop)));
}

async fn set_waiting(status: &StatusCell, reason: String) {
    status
        .update(|s| {
            s.waiting = Some(CmdImageStateWaiting { reason });
            s.building = None;
            s.completed = None;
        })
        .await;
}

/// Spawns one build: status `building`, the command with its output in the log, then the ImageMap and
/// status `completed`, then a requeue for a queued rebuild. A cancelled build writes nothing more.
fn start(
    ctx: &Ctx,
    ci: &CmdImage,
    reason: &'static str,
    status: Arc<StatusCell>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let ctx = ctx.clone();
    let spec = ci.spec.clone();
    let name = ci.name_any();
    let resource = resource_of(ci);
    let source = format!("cmdimage/{name}");
    tokio::spawn(async move {
        let started = Timestamp::now();
        status
            .update(|s| {
                s.waiting = None;
                s.completed = None;
                s.building =
                    Some(CmdImageStateBuilding { reason: reason.to_owned(), started_at: Some(crate::micro(started)) });
            })
            .await;
        ctx.logs.append(&resource, &source, &format!("Building custom image {} ({reason})", spec.ref_));
        let out = build::Output { logs: &ctx.logs, resource: &resource, source: &source };
        let result = build::run(&spec, &ctx.docker.host, &ctx.default_dir, &ctx.reaper, &out, &stop).await;
        if stop.is_cancelled() {
            return;
        }
        let result = match result {
            Ok(reference) if !spec.image_map.is_empty() => {
                match crate::image::publish(&ctx.client, MANAGER, &spec.image_map, &reference, started).await {
                    Ok(()) => Ok(reference),
                    Err(err) => {
                        Err(format!("built {reference}, but ImageMap {} could not be updated: {err}", spec.image_map))
                    }
                }
            }
            other => other,
        };
        let finished = Timestamp::now();
        let error = match &result {
            Ok(reference) => {
                let secs = finished.duration_since(started).as_secs_f64();
                ctx.logs.append(&resource, &source, &format!("Built {reference} in {secs:.1}s"));
                String::new()
            }
            Err(message) => {
                for line in message.lines() {
                    ctx.logs.append_level(&resource, &source, LogLevel::Error, &format!("Build Failed: {line}"));
                }
                message.clone()
            }
        };
        status
            .update(|s| {
                s.building = None;
                s.waiting = None;
                if let Ok(reference) = &result {
                    s.ref_ = reference.clone();
                }
                s.completed = Some(CmdImageStateCompleted {
                    reason: reason.to_owned(),
                    error,
                    started_at: Some(crate::micro(started)),
                    finished_at: Some(crate::micro(finished)),
                });
            })
            .await;
        let _ = ctx.requeue.send(ObjectRef::new(&name));
    })
}

/// How the controller runs commands.
#[derive(Debug, Clone, Default)]
pub struct CmdImageConfig {
    /// The Docker daemon that images not built with `skips_local_docker` must be in.
    pub docker: DockerConfig,
    /// Working directory for commands without `spec.dir`.
    pub default_dir: PathBuf,
}

/// Runs the controller until `shutdown` is cancelled, then stops the commands in progress.
pub async fn run(
    informers: Arc<Informers>,
    shutdown: CancellationToken,
    logs: Arc<LogStore>,
    reaper: Arc<Reaper>,
    config: CmdImageConfig,
) {
    let (requeue, mut requeued) = mpsc::unbounded_channel();
    let ctx = Arc::new(Ctx {
        client: informers.client().clone(),
        informers: informers.clone(),
        logs,
        reaper,
        docker: config.docker,
        default_dir: config.default_dir,
        requeue,
    });
    Setup::new(ctx, &informers)
        .index(|c: &CmdImage| {
            references(c.spec.restart_on.as_ref(), c.spec.start_on.as_ref(), c.spec.disable_source.as_ref())
        })
        .referenced::<FileWatch>()
        .referenced::<UIButton>()
        .referenced::<Cmd>()
        .referenced::<UIResource>()
        .referenced::<ConfigMap>()
        .reconcile_on(futures::stream::poll_fn(move |cx| requeued.poll_recv(cx)))
        .run(shutdown)
        .await;
}
