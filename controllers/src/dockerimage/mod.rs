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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;
use tilt_apis::{
    ConfigMap, DisableSource, DockerImage, DockerImageSpec, DockerImageStageStatus, DockerImageStateBuilding,
    DockerImageStateCompleted, DockerImageStateWaiting, DockerImageStatus, FileWatch, ImageMap, UIButton,
    UIResource,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::build::Progress;
use crate::logs::LogStore;

/// The field manager of this controller's status writes.
pub const MANAGER: &str = "tilt-dockerimage-controller";
/// The annotation naming the resource (manifest) an object belongs to.
const RESOURCE_ANNOTATION: &str = "tilt.dev/resource";
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

/// The status of one DockerImage as the controller knows it; every change is written through `/status`.
struct StatusCell {
    api: Api<DockerImage>,
    name: String,
    status: tokio::sync::Mutex<DockerImageStatus>,
}

impl StatusCell {
    /// Applies `change` and writes the result; writes are serialized per object so they land in order.
    async fn update(&self, change: impl FnOnce(&mut DockerImageStatus)) {
        let mut status = self.status.lock().await;
        change(&mut status);
        let patch = json!({"apiVersion": tilt_apis::API_VERSION, "kind": "DockerImage", "status": &*status});
        match self.api.patch_status(&self.name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(err) => tracing::warn!(dockerimage = %self.name, %err, "writing DockerImage status"),
        }
    }
}

/// What the controller did for one DockerImage.
struct Entry {
    uid: String,
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

    /// Cancels a running build; dropping the request makes the daemon cancel it too.
    fn cancel(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Shared state of the DockerImage controller.
pub struct Ctx {
    client: Client,
    logs: Arc<LogStore>,
    config: DockerConfig,
    entries: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Entry>>>>>,
    /// Asks for a reconcile when a build ends (a queued rebuild may be due).
    requeue: mpsc::UnboundedSender<ObjectRef<DockerImage>>,
}

impl Ctx {
    fn slot(&self, name: &str) -> Arc<tokio::sync::Mutex<Option<Entry>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).entry(name.to_owned()).or_default().clone()
    }

    /// Cancels the build of `name` (if it is the object with `uid`, or any when `None`) and forgets it.
    async fn forget(&self, name: &str, uid: Option<&str>) {
        let slot = self.slot(name);
        let mut entry = slot.lock().await;
        if entry.as_ref().is_some_and(|e| uid.is_none_or(|u| u == e.uid))
            && let Some(mut e) = entry.take()
        {
            e.cancel();
        }
    }

    /// Cancels every build (tilt is shutting down).
    async fn cancel_all(&self) {
        let names: Vec<String> = self.entries.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        for name in names {
            self.forget(&name, None).await;
        }
    }
}

fn micro(t: Timestamp) -> MicroTime {
    MicroTime(t)
}

/// Whether a UIResource's Ready condition is True.
fn resource_ready(r: &UIResource) -> bool {
    r.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The newest restart/start event, what it was (the build reason), and why the build must wait, if it must.
struct Triggers {
    newest: Option<Timestamp>,
    reason: &'static str,
    waiting: Option<String>,
}

async fn triggers(client: &Client, spec: &DockerImageSpec) -> Result<Triggers, kube::Error> {
    let mut t = Triggers { newest: None, reason: "", waiting: None };
    let bump = |time: Option<Timestamp>, reason: &'static str, t: &mut Triggers| {
        if let Some(time) = time
            && t.newest.is_none_or(|n| time > n)
        {
            t.newest = Some(time);
            t.reason = reason;
        }
    };
    let fws: Api<FileWatch> = Api::all(client.clone());
    let buttons: Api<UIButton> = Api::all(client.clone());
    let resources: Api<UIResource> = Api::all(client.clone());
    let clicked = |b: &UIButton| b.status.as_ref().and_then(|s| s.last_clicked_at.as_ref()).map(|t| t.0);
    if let Some(r) = &spec.restart_on {
        for name in &r.file_watches {
            if let Some(fw) = fws.get_opt(name).await? {
                bump(fw.status.as_ref().and_then(|s| s.last_event_time.as_ref()).map(|t| t.0), "Changed Files", &mut t);
            }
        }
        for name in &r.ui_buttons {
            if let Some(b) = buttons.get_opt(name).await? {
                bump(clicked(&b), "Manual Trigger", &mut t);
            }
        }
    }
    let mut waiting = Vec::new();
    if let Some(s) = &spec.start_on {
        let after = s.start_after.as_ref().map(|t| t.0);
        if !s.ui_buttons.is_empty() {
            let mut any = false;
            for name in &s.ui_buttons {
                if let Some(b) = buttons.get_opt(name).await?
                    && let Some(c) = clicked(&b).filter(|c| after.is_none_or(|a| *c > a))
                {
                    any = true;
                    bump(Some(c), "Manual Trigger", &mut t);
                }
            }
            if !any {
                waiting.push(format!("a trigger ({})", s.ui_buttons.join(", ")));
            }
        }
        let mut not_ready = Vec::new();
        for name in &s.ui_resources {
            if !resources.get_opt(name).await?.as_ref().is_some_and(resource_ready) {
                not_ready.push(name.as_str());
            }
        }
        if !not_ready.is_empty() {
            waiting.push(format!("resource_deps to be ready ({})", not_ready.join(", ")));
        }
    }
    t.waiting = (!waiting.is_empty()).then(|| format!("Waiting for {}", waiting.join(" and ")));
    Ok(t)
}

/// Why the build is disabled by its `disableSource` ConfigMap(s) (`key: "true"`), if it is.
async fn disabled_by(client: &Client, source: Option<&DisableSource>) -> Result<Option<String>, kube::Error> {
    let Some(source) = source else { return Ok(None) };
    let maps: Api<ConfigMap> = Api::all(client.clone());
    let all: Vec<_> = source.every_config_map.iter().chain(source.config_map.as_ref()).collect();
    if all.is_empty() {
        return Ok(None);
    }
    for cm in &all {
        let value = maps.get_opt(&cm.name).await?.and_then(|m| m.data.get(&cm.key).cloned());
        if value.as_deref() != Some("true") {
            return Ok(None);
        }
    }
    let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    Ok(Some(format!("disabled by ConfigMap {}", names.join(", "))))
}

/// The resource (manifest) name of a DockerImage, for its logs.
fn resource_of(di: &DockerImage) -> String {
    di.annotations().get(RESOURCE_ANNOTATION).cloned().unwrap_or_else(|| di.name_any())
}

fn new_status_cell(ctx: &Ctx, name: &str) -> Arc<StatusCell> {
    Arc::new(StatusCell {
        api: Api::all(ctx.client.clone()),
        name: name.to_owned(),
        status: tokio::sync::Mutex::new(DockerImageStatus::default()),
    })
}

/// Starts or queues the build of one DockerImage as its spec, triggers and conditions require.
pub async fn reconcile(di: Arc<DockerImage>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let name = di.name_any();
    let uid = di.uid().unwrap_or_default();
    if di.metadata.deletion_timestamp.is_some() {
        ctx.forget(&name, Some(&uid)).await;
        return Ok(Action::await_change());
    }
    let disabled = disabled_by(&ctx.client, di.spec.disable_source.as_ref()).await?;
    let triggers = triggers(&ctx.client, &di.spec).await?;
    let slot = ctx.slot(&name);
    let mut guard = slot.lock().await;
    // An object recreated under the same name starts afresh.
    if guard.as_ref().is_some_and(|e| e.uid != uid)
        && let Some(mut old) = guard.take()
    {
        old.cancel();
    }
    let entry = guard.get_or_insert_with(|| Entry {
        uid: uid.clone(),
        spec: di.spec.clone(),
        trigger: None,
        task: None,
        built_before: false,
        status: new_status_cell(&ctx, &name),
    });

    if let Some(reason) = disabled {
        entry.cancel();
        entry.trigger = None;
        entry.spec = di.spec.clone();
        set_waiting(&entry.status, reason).await;
        return Ok(Action::await_change());
    }

    let spec_changed = entry.spec != di.spec;
    let newer = triggers.newest.is_some() && triggers.newest > entry.trigger;
    let reason = if !entry.built_before {
        "Initial Build"
    } else if spec_changed {
        "Config Changed"
    } else if entry.task.is_none() || newer {
        if triggers.reason.is_empty() { "Initial Build" } else { triggers.reason }
    } else {
        return Ok(Action::await_change());
    };
    if !spec_changed && entry.building() {
        // A newer event during a build: the build's end requeues this object, which then rebuilds.
        return Ok(Action::await_change());
    }
    entry.cancel();
    entry.spec = di.spec.clone();
    entry.trigger = triggers.newest;
    if let Some(why) = triggers.waiting {
        set_waiting(&entry.status, why).await;
        return Ok(Action::await_change());
    }
    entry.built_before = true;
    entry.task = Some(start(&ctx, &di, reason, entry.status.clone()));
    Ok(Action::await_change())
}

async fn set_waiting(status: &StatusCell, reason: String) {
    let unchanged = status.status.lock().await.waiting.as_ref().is_some_and(|w| w.reason == reason);
    if !unchanged {
        status
            .update(|s| {
                s.waiting = Some(DockerImageStateWaiting { reason });
                s.building = None;
                s.completed = None;
            })
            .await;
    }
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
            "buildStartTime": micro(started),
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
                s.building = Some(DockerImageStateBuilding { reason: reason.to_owned(), started_at: Some(micro(started)) });
            })
            .await;
        ctx.logs.append(&resource, &source, &format!("Building Dockerfile for {} ({reason})", spec.ref_));

        // Steps go to status as they start, through a writer that always sends the latest list.
        let (stages_tx, mut stages_rx) = tokio::sync::watch::channel(Vec::<DockerImageStageStatus>::new());
        let writer = {
            let status = status.clone();
            tokio::spawn(async move {
                while stages_rx.changed().await.is_ok() {
                    let stages = stages_rx.borrow_and_update().clone();
                    status.update(|s| s.stage_statuses = stages).await;
                }
            })
        };
        let mut stages: Vec<DockerImageStageStatus> = Vec::new();
        let logs = ctx.logs.clone();
        let result = build::build(&ctx.config.host, &spec, |progress| match progress {
            Progress::Line(line) => logs.append(&resource, &source, &line),
            Progress::Step(step) => {
                let now = Some(micro(Timestamp::now()));
                if let Some(last) = stages.last_mut() {
                    last.finished_at = now.clone();
                }
                stages.push(DockerImageStageStatus { name: step, started_at: now, ..Default::default() });
                stages_tx.send_replace(stages.clone());
            }
            Progress::Cached => {
                if let Some(last) = stages.last_mut() {
                    last.cached = true;
                }
            }
        })
        .await;
        drop(stages_tx);
        let _ = writer.await;
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
            last.finished_at = Some(micro(finished));
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
                    started_at: Some(micro(started)),
                    finished_at: Some(micro(finished)),
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

fn references(di: &DockerImage, kind: &str, name: &str) -> bool {
    let restart = di.spec.restart_on.as_ref();
    let start = di.spec.start_on.as_ref();
    let has = |list: &[String]| list.iter().any(|n| n == name);
    match kind {
        "FileWatch" => restart.is_some_and(|r| has(&r.file_watches)),
        "UIButton" => restart.is_some_and(|r| has(&r.ui_buttons)) || start.is_some_and(|s| has(&s.ui_buttons)),
        "UIResource" => start.is_some_and(|s| has(&s.ui_resources)),
        "ConfigMap" => di.spec.disable_source.as_ref().is_some_and(|d| {
            d.config_map.iter().chain(d.every_config_map.iter()).any(|c| c.name == name)
        }),
        _ => false,
    }
}

fn referrers(store: &Store<DockerImage>, kind: &'static str, name: &str) -> Vec<ObjectRef<DockerImage>> {
    store.state().iter().filter(|d| references(d, kind, name)).map(|d| ObjectRef::from_obj(&**d)).collect()
}

/// Runs the controller until `shutdown` is cancelled, then cancels the builds in progress.
pub async fn run(client: Client, shutdown: CancellationToken, logs: Arc<LogStore>, config: DockerConfig) {
    let images: Api<DockerImage> = Api::all(client.clone());
    let (requeue, requeued) = mpsc::unbounded_channel();
    let ctx = Arc::new(Ctx { client: client.clone(), logs, config, entries: Mutex::new(HashMap::new()), requeue });
    let controller = Controller::new(images.clone(), watcher::Config::default());
    let store = controller.store();
    let (fw_store, button_store, resource_store, cm_store) = (store.clone(), store.clone(), store.clone(), store);
    let stop = shutdown.clone();
    let mut requeued = requeued;
    let controller = controller
        .watches(Api::<FileWatch>::all(client.clone()), watcher::Config::default(), move |fw| {
            referrers(&fw_store, "FileWatch", &fw.name_any())
        })
        .watches(Api::<UIButton>::all(client.clone()), watcher::Config::default(), move |b| {
            referrers(&button_store, "UIButton", &b.name_any())
        })
        .watches(Api::<UIResource>::all(client.clone()), watcher::Config::default(), move |r| {
            referrers(&resource_store, "UIResource", &r.name_any())
        })
        .watches(Api::<ConfigMap>::all(client.clone()), watcher::Config::default(), move |m| {
            referrers(&cm_store, "ConfigMap", &m.name_any())
        })
        .reconcile_on(futures::stream::poll_fn(move |cx| requeued.poll_recv(cx)))
        .graceful_shutdown_on(async move { stop.cancelled().await })
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    // The Controller never calls reconcile for deleted objects, so deletes are followed here.
    let deletes = {
        let ctx = ctx.clone();
        watcher(images, watcher::Config::default()).default_backoff().for_each(move |event| {
            let ctx = ctx.clone();
            async move {
                if let Ok(watcher::Event::Delete(di)) = event {
                    ctx.forget(&di.name_any(), di.uid().as_deref()).await;
                }
            }
        })
    };
    tokio::select! {
        _ = controller => {}
        _ = deletes => {}
        _ = shutdown.cancelled() => {}
    }
    ctx.cancel_all().await;
}
