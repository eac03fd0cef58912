//! The DockerImage controller: builds each DockerImage through the Docker Engine API and publishes the
//! result in the DockerImage's and its ImageMap's `status`.
//!
//! A build starts when the object appears or its spec changes, and again when a FileWatch or UIButton in
//! `spec.restartOn` (tilt-rs addition: the context's `image:IMAGEMAP` FileWatch and the resource's trigger
//! button) has an event newer than the one the last build started for. An event during a build queues one
//! more build after it, as Go Tilt does, rather than cancelling the running one; a spec change cancels it.
//! `spec.startOn` holds the first build until the `resource_deps` are Ready and, with `auto_init=False`,
//! until a click; `spec.disableSource` stops building while the resource is disabled.
//!
//! The build itself ([`build`]) streams the filtered context ([`context`]) to the daemon, relays its output
//! into the resource's log and each `Step` into `status.stageStatuses`, and tags the image
//! `{ref}:tilt-{first 16 hex digits of the image ID}`, so equal content gives an equal tag. On success
//! `status.ref` and the ImageMap named by `spec.imageMap` (`image`, `imageFromLocal`, `imageFromCluster`,
//! `buildStartTime`) get that reference; on failure `status.completed.error` holds the daemon's message.

mod build;
mod context;

use std::sync::Arc;

use jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};
use tilt_apis::{
    Cmd, ConfigMap, DockerImage, DockerImageSpec, DockerImageStageStatus, DockerImageStateBuilding,
    DockerImageStateCompleted, DockerImageStateWaiting, FileWatch, UIButton, UIResource,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::build::Progress;
use crate::image::{BuildHistory, next_build};
use crate::logs::{LogLevel, LogStore};
use crate::references::{disabled_by, references, resource_of, triggers};
use crate::runtime::{Gone, Informers, Reconciler, Setup};

/// The field manager of this controller's status writes.
pub const MANAGER: &str = "tilt-dockerimage-controller";
pub use crate::image::{DEFAULT_DOCKER_HOST, DockerConfig};

type StatusCell = crate::status::StatusCell<DockerImage>;

/// What the controller did for one DockerImage.
pub struct Entry {
    spec: DockerImageSpec,
    /// The newest restartOn/startOn event the current or last build started for.
    trigger: Option<Timestamp>,
    /// The current or last build; `None` while waiting or disabled.
    task: Option<tokio::task::JoinHandle<()>>,
    /// Whether a build was started for this object before (the reason of the next one).
    built_before: bool,
    status: Arc<StatusCell>,
}

impl Entry {
    fn building(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Cancels a running build and waits until it is gone, so it writes no status after this; dropping the
    /// request makes the daemon cancel the build too.
    async fn cancel(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

/// The DockerImage controller.
#[derive(Clone)]
pub struct Ctx {
    client: Client,
    informers: Arc<Informers>,
    logs: Arc<LogStore>,
    config: DockerConfig,
    /// Asks for a reconcile when a build ends (a queued rebuild may be due).
    requeue: mpsc::UnboundedSender<ObjectRef<DockerImage>>,
}

impl Reconciler for Ctx {
    type K = DockerImage;
    type State = Entry;
    type Error = std::convert::Infallible;
    const NAME: &'static str = "dockerimage";

    async fn reconcile(&self, di: Arc<DockerImage>, state: &mut Option<Entry>) -> Result<Action, Self::Error> {
        reconcile(self, di, state).await;
        Ok(Action::await_change())
    }

    async fn forget(&self, mut entry: Entry, _: Gone) {
        entry.cancel().await;
    }
}

/// Starts or queues the build of one DockerImage as its spec, triggers and conditions require.
async fn reconcile(ctx: &Ctx, di: Arc<DockerImage>, state: &mut Option<Entry>) {
    let name = di.name_any();
    let lookup = &*ctx.informers;
    let disabled = disabled_by(lookup, di.spec.disable_source.as_ref()).await;
    let (newest, waiting) = triggers(lookup, di.spec.restart_on.as_ref(), di.spec.start_on.as_ref()).await;
    let fresh = state.is_none();
    let entry = state.get_or_insert_with(|| Entry {
        spec: di.spec.clone(),
        trigger: None,
        task: None,
        built_before: false,
        status: Arc::new(StatusCell::new(ctx.client.clone(), &name, MANAGER)),
    });

    if let Some(reason) = disabled {
        entry.cancel().await;
        entry.trigger = None;
        entry.spec = di.spec.clone();
        set_waiting(&entry.status, reason).await;
        return;
    }

    if fresh
        && waiting.is_none()
        && let Some(reference) = reusable(ctx, &di).await
    {
        // The store kept this object and its last build still stands: this process has that build as its own
        // (a finished task), so only a change or a trigger builds again.
        entry.built_before = true;
        entry.trigger = newest;
        entry.task = Some(tokio::spawn(std::future::ready(())));
        let message = format!("Image {reference} is up to date: nothing it is built from changed since it was built");
        ctx.logs.append(&resource_of(&*di), &format!("dockerimage/{name}"), &message);
        return;
    }

    let history = BuildHistory {
        last_spec: &entry.spec,
        last_trigger: entry.trigger,
        built_before: entry.built_before,
        has_build: entry.task.is_some(),
        building: entry.building(),
    };
    let Some(reason) = next_build(lookup, history, &di.spec, di.spec.restart_on.as_ref(), newest).await else {
        return;
    };
    entry.cancel().await;
    entry.spec = di.spec.clone();
    entry.trigger = newest;
    if let Some(why) = waiting {
        set_waiting(&entry.status, why).await;
        return;
    }
    entry.built_before = true;
    entry.task = Some(start(ctx, &di, reason, entry.status.clone()));
}

/// The reference of a DockerImage's last build when it still stands: it succeeded, its inputs hash as they do now
/// ([`context::fingerprint`]), and the engine still has the image. For a controller's first look at an object a
/// kept store (`tilt up --api-context`) still holds, so that a restart rebuilds nothing unchanged.
async fn reusable(ctx: &Ctx, di: &DockerImage) -> Option<String> {
    let status = di.status.as_ref()?;
    let ok = status.completed.as_ref().is_some_and(|c| c.error.is_empty());
    if !ok || status.ref_.is_empty() || status.input_hash.is_empty() {
        return None;
    }
    if input_hash(&di.spec).await? != status.input_hash {
        return None;
    }
    let docker = crate::image::connect(&ctx.config.host).ok()?;
    docker.inspect_image(&status.ref_).await.ok()?;
    Some(status.ref_.clone())
}

/// [`context::fingerprint`] of a spec, off the async threads; `None` when the context cannot be read.
async fn input_hash(spec: &DockerImageSpec) -> Option<String> {
    let spec = spec.clone();
    tokio::task::spawn_blocking(move || {
        let filter = context::ContextFilter::new(&spec.context_ignores).ok()?;
        context::fingerprint(&spec, &filter).ok()
    })
    .await
    .ok()?
}

async fn set_waiting(status: &StatusCell, reason: String) {
    status
        .update(|s| {
            s.waiting = Some(DockerImageStateWaiting { reason });
            s.building = None;
            s.completed = None;
        })
        .await;
}

/// Spawns one build: status `building`, the build with its output in the log and its steps in
/// `stageStatuses`, then the ImageMap and status `completed`, then a requeue for a queued rebuild.
fn start(ctx: &Ctx, di: &DockerImage, reason: &'static str, status: Arc<StatusCell>) -> tokio::task::JoinHandle<()> {
    let ctx = ctx.clone();
    let spec = di.spec.clone();
    let name = di.name_any();
    let resource = resource_of(di);
    let source = format!("dockerimage/{name}");
    tokio::spawn(async move {
        let started = Timestamp::now();
        status
            .update(|s| {
                s.waiting = None;
                s.completed = None;
                s.stage_statuses.clear();
                s.building = Some(DockerImageStateBuilding {
                    reason: reason.to_owned(),
                    started_at: Some(crate::micro(started)),
                });
            })
            .await;
        ctx.logs.append(&resource, &source, &format!("Building Dockerfile for {} ({reason})", spec.ref_));
        // What this build is made from, taken before it reads the context (a later change rebuilds anyway).
        let inputs = input_hash(&spec).await.unwrap_or_default();

        // Steps go to status as they start, through a writer that always sends the latest list; it ends with
        // the build (the closure holding the sender is dropped), inside this task, so cancelling the build
        // cancels its writes too.
        let (stages_tx, mut stages_rx) = tokio::sync::watch::channel(Vec::<DockerImageStageStatus>::new());
        let writer = async {
            while stages_rx.changed().await.is_ok() {
                let stages = stages_rx.borrow_and_update().clone();
                status.update(|s| s.stage_statuses = stages).await;
            }
        };
        let mut stages: Vec<DockerImageStageStatus> = Vec::new();
        let (steps, logs, resource_ref, source_ref) = (&mut stages, &ctx.logs, &resource, &source);
        let building = build::build(&ctx.config.host, &spec, move |progress| match progress {
            Progress::Line(line) => logs.append(resource_ref, source_ref, &line),
            Progress::Step(step) => {
                let now = Some(crate::now_micro());
                if let Some(last) = steps.last_mut() {
                    last.finished_at = now.clone();
                }
                steps.push(DockerImageStageStatus { name: step, started_at: now, ..Default::default() });
                stages_tx.send_replace(steps.clone());
            }
            Progress::Cached => {
                if let Some(last) = steps.last_mut() {
                    last.cached = true;
                }
            }
        });
        let (result, ()) = tokio::join!(building, writer);
        let finished = Timestamp::now();
        let result = match result {
            Ok(built) if !spec.image_map.is_empty() => {
                match crate::image::publish(&ctx.client, MANAGER, &spec.image_map, &built.reference, started).await {
                    Ok(()) => Ok(built),
                    Err(err) => Err(format!(
                        "built {}, but ImageMap {} could not be updated: {err}",
                        built.reference, spec.image_map
                    )),
                }
            }
            other => other,
        };
        let error = match &result {
            Ok(built) => {
                ctx.logs.append(
                    &resource,
                    &source,
                    &format!("Built {} in {:.1}s", built.reference, seconds(started, finished)),
                );
                String::new()
            }
            Err(message) => {
                for line in message.lines() {
                    ctx.logs.append_level(&resource, &source, LogLevel::Error, &format!("Build Failed: {line}"));
                }
                message.clone()
            }
        };
        if let Some(last) = stages.last_mut() {
            last.finished_at = Some(crate::micro(finished));
            last.error = error.clone();
        }
        status
            .update(|s| {
                s.building = None;
                s.waiting = None;
                if let Ok(built) = &result {
                    s.ref_ = built.reference.clone();
                }
                s.input_hash = if result.is_ok() { inputs } else { String::new() };
                s.stage_statuses = stages;
                s.completed = Some(DockerImageStateCompleted {
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

fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    to.duration_since(from).as_secs_f64()
}

/// Runs the controller until `shutdown` is cancelled, then cancels the builds in progress.
pub async fn run(informers: Arc<Informers>, shutdown: CancellationToken, logs: Arc<LogStore>, config: DockerConfig) {
    let (requeue, mut requeued) = mpsc::unbounded_channel();
    let ctx = Arc::new(Ctx { client: informers.client().clone(), informers: informers.clone(), logs, config, requeue });
    Setup::new(ctx, &informers)
        .index(|d: &DockerImage| {
            references(d.spec.restart_on.as_ref(), d.spec.start_on.as_ref(), d.spec.disable_source.as_ref())
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
