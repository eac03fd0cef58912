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
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;
use tilt_apis::{
    Cmd, ConfigMap, DockerImage, DockerImageSpec, DockerImageStageStatus, DockerImageStateBuilding,
    DockerImageStateCompleted, DockerImageStateWaiting, FileWatch, ImageMap, UIButton, UIResource,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::build::Progress;
use crate::cmd::{disabled_by, resource_of, triggers};
use crate::logs::LogStore;
use crate::tasks::{Task, TaskTable};

/// The field manager of this controller's status writes.
pub const MANAGER: &str = "tilt-dockerimage-controller";
/// Where the daemon listens when `DOCKER_HOST` is unset.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// How the controller reaches the Docker daemon.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerConfig {
    /// The daemon's address, `unix:///path/to/docker.sock`.
    pub host: String,
}

impl DockerConfig {
    /// `DOCKER_HOST`, or the default socket when it is unset or empty.
    pub fn from_env() -> DockerConfig {
        let host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
        DockerConfig { host: host.unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_owned()) }
    }
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig::from_env()
    }
}

/// Errors of one reconcile; retried with backoff. Build failures are not errors: they go into status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API refused a read.
    #[error("DockerImage API call failed: {0}")]
    Api(#[from] kube::Error),
}

type StatusCell = crate::status::StatusCell<DockerImage>;

/// What the controller did for one DockerImage.
struct Entry {
    uid: Option<String>,
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

impl Task for Entry {
    fn uid(&self) -> Option<&str> {
        self.uid.as_deref()
    }

    async fn stop(mut self) {
        self.cancel().await;
    }
}

/// Shared state of the DockerImage controller.
pub struct Ctx {
    client: Client,
    logs: Arc<LogStore>,
    config: DockerConfig,
    builds: Arc<TaskTable<DockerImage, Entry>>,
    /// Asks for a reconcile when a build ends (a queued rebuild may be due).
    requeue: mpsc::UnboundedSender<ObjectRef<DockerImage>>,
}

/// Why a build that `newest` triggered runs: a file change when a restartOn FileWatch saw it, else a click.
async fn trigger_reason(client: &Client, spec: &DockerImageSpec, newest: Option<Timestamp>) -> Result<&'static str, kube::Error> {
    let Some(newest) = newest else { return Ok("Initial Build") };
    let fws: Api<FileWatch> = Api::all(client.clone());
    for name in spec.restart_on.iter().flat_map(|r| &r.file_watches) {
        let fw = fws.get_opt(name).await?;
        if fw.and_then(|f| f.status?.last_event_time).is_some_and(|t| t.0 == newest) {
            return Ok("Changed Files");
        }
    }
    Ok("Manual Trigger")
}

/// Starts or queues the build of one DockerImage as its spec, triggers and conditions require.
pub async fn reconcile(di: Arc<DockerImage>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let name = di.name_any();
    let uid = di.uid();
    let disabled = disabled_by(&ctx.client, di.spec.disable_source.as_ref()).await?;
    let (newest, waiting) = triggers(&ctx.client, di.spec.restart_on.as_ref(), di.spec.start_on.as_ref()).await?;
    let Some(mut guard) = ctx.builds.lock_live(&name, uid.as_deref()).await else {
        return Ok(Action::await_change());
    };
    // An object recreated under the same name starts afresh.
    if guard.as_ref().is_some_and(|e| e.uid != uid)
        && let Some(old) = guard.take()
    {
        old.stop().await;
    }
    let entry = guard.get_or_insert_with(|| Entry {
        uid: uid.clone(),
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
        return Ok(Action::await_change());
    }

    let spec_changed = entry.spec != di.spec;
    let newer = newest.is_some() && newest > entry.trigger;
    let reason = if !entry.built_before {
        "Initial Build"
    } else if spec_changed {
        "Config Changed"
    } else if entry.task.is_none() || newer {
        trigger_reason(&ctx.client, &di.spec, newest).await?
    } else {
        return Ok(Action::await_change());
    };
    if !spec_changed && entry.building() {
        // A newer event during a build: the build's end requeues this object, which then rebuilds.
        return Ok(Action::await_change());
    }
    entry.cancel().await;
    entry.spec = di.spec.clone();
    entry.trigger = newest;
    if let Some(why) = waiting {
        set_waiting(&entry.status, why).await;
        return Ok(Action::await_change());
    }
    entry.built_before = true;
    entry.task = Some(start(&ctx, &di, reason, entry.status.clone()));
    Ok(Action::await_change())
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

/// Writes the built image into the ImageMap's status.
async fn publish(client: &Client, image_map: &str, reference: &str, started: Timestamp) -> Result<(), kube::Error> {
    let maps: Api<ImageMap> = Api::all(client.clone());
    let patch = json!({
        "apiVersion": tilt_apis::API_VERSION,
        "kind": "ImageMap",
        "status": {
            "image": reference,
            "imageFromLocal": reference,
            "imageFromCluster": reference,
            "buildStartTime": crate::micro(started),
        },
    });
    maps.patch_status(image_map, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&patch)).await.map(|_| ())
}

/// Spawns one build: status `building`, the build with its output in the log and its steps in
/// `stageStatuses`, then the ImageMap and status `completed`, then a requeue for a queued rebuild.
fn start(ctx: &Arc<Ctx>, di: &DockerImage, reason: &'static str, status: Arc<StatusCell>) -> tokio::task::JoinHandle<()> {
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
                s.building = Some(DockerImageStateBuilding { reason: reason.to_owned(), started_at: Some(crate::micro(started)) });
            })
            .await;
        ctx.logs.append(&resource, &source, &format!("Building Dockerfile for {} ({reason})", spec.ref_));

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
            Ok(built) if !spec.image_map.is_empty() => match publish(&ctx.client, &spec.image_map, &built.reference, started).await {
                Ok(()) => Ok(built),
                Err(err) => Err(format!("built {}, but ImageMap {} could not be updated: {err}", built.reference, spec.image_map)),
            },
            other => other,
        };
        let error = match &result {
            Ok(built) => {
                ctx.logs.append(&resource, &source, &format!("Built {} in {:.1}s", built.reference, seconds(started, finished)));
                String::new()
            }
            Err(message) => {
                for line in message.lines() {
                    ctx.logs.append(&resource, &source, &format!("Build Failed: {line}"));
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

fn error_policy(di: Arc<DockerImage>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(dockerimage = %di.name_any(), %err, "DockerImage reconcile failed");
    Action::requeue(Duration::from_millis(500))
}

fn referrers(store: &Store<DockerImage>, kind: &'static str, name: &str) -> Vec<ObjectRef<DockerImage>> {
    store
        .state()
        .iter()
        .filter(|d| {
            let s = &d.spec;
            crate::refers_to(s.restart_on.as_ref(), s.start_on.as_ref(), s.disable_source.as_ref(), kind, name)
        })
        .map(|d| ObjectRef::from_obj(&**d))
        .collect()
}

/// Runs the controller until `shutdown` is cancelled, then cancels the builds in progress.
pub async fn run(client: Client, shutdown: CancellationToken, logs: Arc<LogStore>, config: DockerConfig) {
    let (requeue, mut requeued) = mpsc::unbounded_channel();
    let (builds, objects) = TaskTable::watch(&client);
    let ctx = Arc::new(Ctx { client: client.clone(), logs, config, builds: builds.clone(), requeue });
    let store = builds.store();
    let (fw_store, button_store, cmd_store, resource_store, cm_store) =
        (store.clone(), store.clone(), store.clone(), store.clone(), store.clone());
    let stop = shutdown.clone();
    Controller::for_stream(objects, store)
        .watches(Api::<FileWatch>::all(client.clone()), watcher::Config::default(), move |fw| {
            referrers(&fw_store, "FileWatch", &fw.name_any())
        })
        .watches(Api::<UIButton>::all(client.clone()), watcher::Config::default(), move |b| {
            referrers(&button_store, "UIButton", &b.name_any())
        })
        .watches(Api::<Cmd>::all(client.clone()), watcher::Config::default(), move |c| {
            referrers(&cmd_store, "Cmd", &c.name_any())
        })
        .watches(Api::<UIResource>::all(client.clone()), watcher::Config::default(), move |r| {
            referrers(&resource_store, "UIResource", &r.name_any())
        })
        .watches(Api::<ConfigMap>::all(client.clone()), watcher::Config::default(), move |m| {
            referrers(&cm_store, "ConfigMap", &m.name_any())
        })
        .reconcile_on(futures::stream::poll_fn(move |cx| requeued.poll_recv(cx)))
        .graceful_shutdown_on(async move { stop.cancelled().await })
        .run(reconcile, error_policy, ctx)
        .for_each(|_| async {})
        .await;
    builds.stop_all().await;
}
