//! The Cmd controller: runs each Cmd's process and reports it in `status`.
//!
//! A Cmd runs `spec.args` in its own process group with its output in the [`LogStore`]. Its
//! `spec.restartOn` / `spec.startOn` name FileWatches and UIButtons; when one of them has a newer event than
//! the one the current process was started for, the process is stopped — SIGTERM to the group, up to a
//! grace period, SIGKILL — and only then started again, so a server never races its successor for a port.
//! A change of spec restarts it too. The process table is keyed by name and remembers the object's UID,
//! the spec and the trigger time it was started with, so `reconcile` is idempotent.
//!
//! References are followed through an index over the Controller's own store: a FileWatch or UIButton event
//! requeues exactly the Cmds that name it.

pub mod probe;
pub mod process;
pub mod reaper;
mod spawn;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;
use tilt_apis::{
    Cmd, CmdSpec, CmdStateRunning, CmdStateTerminated, CmdStateWaiting, CmdStatus, ConfigMap,
    ConfigMapDisableSource, DisableSource, DisableStatus, FileWatch, RestartOnSpec, RestartPolicy, StartOnSpec, UIButton,
    UIResource,
};
use tokio_util::sync::CancellationToken;

use self::process::ProcessGroup;
use self::reaper::Reaper;
use crate::logs::LogStore;
use crate::reflect::{reflect, reflect_modified};

/// The field manager of this controller's status writes.
pub const MANAGER: &str = "tilt-cmd-controller";
/// `status.terminated.reason` of a process tilt stopped (restart, delete, shutdown): not a failure.
pub const STOPPED_REASON: &str = "stopped by tilt";
/// The annotation naming the resource (manifest) an object belongs to, as in Go Tilt.
pub const RESOURCE_ANNOTATION: &str = "tilt.dev/resource";

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

/// Errors of one reconcile; retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API refused a read or write.
    #[error("Cmd API call failed: {0}")]
    Api(#[from] kube::Error),
}

/// The status of one Cmd as the controller knows it; every change is written through `/status`.
struct StatusCell {
    api: Api<Cmd>,
    name: String,
    status: tokio::sync::Mutex<CmdStatus>,
}

impl StatusCell {
    /// Applies `change` and writes the result; writes are serialized per Cmd so they land in order.
    async fn update(&self, change: impl FnOnce(&mut CmdStatus)) {
        let mut status = self.status.lock().await;
        change(&mut status);
        let patch = json!({"apiVersion": tilt_apis::API_VERSION, "kind": "Cmd", "status": &*status});
        match self.api.patch_status(&self.name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&patch)).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(err) => tracing::warn!(cmd = %self.name, %err, "writing Cmd status"),
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

/// What the controller started for one Cmd.
struct Entry {
    uid: String,
    spec: CmdSpec,
    /// The newest restart/start trigger the current process was started for.
    trigger: Option<Timestamp>,
    run: Option<Run>,
    status: Arc<StatusCell>,
}

/// Shared state of the Cmd controller.
pub struct Ctx {
    client: Client,
    logs: Arc<LogStore>,
    reaper: Arc<Reaper>,
    config: CmdConfig,
    references: References,
    entries: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Entry>>>>>,
}

impl Ctx {
    /// A controller context that reads the objects Cmds refer to from `references`.
    pub fn new(client: Client, logs: Arc<LogStore>, reaper: Arc<Reaper>, config: CmdConfig, references: References) -> Self {
        Ctx { client, logs, reaper, config, references, entries: Mutex::new(HashMap::new()) }
    }

    fn slot(&self, name: &str) -> Arc<tokio::sync::Mutex<Option<Entry>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).entry(name.to_string()).or_default().clone()
    }

    /// Stops the process of `name` (if it is the object with `uid`, or any when `None`) and forgets it.
    pub async fn forget(&self, name: &str, uid: Option<&str>, grace: Duration) {
        let slot = self.slot(name);
        let mut entry = slot.lock().await;
        if entry.as_ref().is_some_and(|e| uid.is_none_or(|u| u == e.uid))
            && let Some(run) = entry.take().and_then(|e| e.run) {
                run.stop(grace).await;
            }
    }

    /// Stops every process (tilt is shutting down).
    pub async fn stop_all(&self) {
        let names: Vec<String> = self.entries.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        let grace = self.config.shutdown_grace;
        futures::future::join_all(names.iter().map(|n| self.forget(n, None, grace))).await;
    }
}

fn micro(t: Timestamp) -> MicroTime {
    MicroTime(t)
}

/// When a Cmd last completed successfully (exit 0).
fn succeeded_at(cmd: &Cmd) -> Option<Timestamp> {
    let t = cmd.status.as_ref()?.terminated.as_ref()?;
    (t.exit_code == 0 && t.reason.is_empty()).then(|| t.finished_at.as_ref().map(|f| f.0)).flatten()
}

/// Whether a UIResource's Ready condition is True.
fn resource_ready(r: &UIResource) -> bool {
    r.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A kind that a spec can refer to by name (`restartOn`, `startOn`, `disableSource`).
pub(crate) trait Referenced:
    Resource<DynamicType = ()> + Clone + std::fmt::Debug + DeserializeOwned + Send + Sync + 'static
{
    /// This kind's store among the Cmd controller's.
    fn store(stores: &References) -> &Store<Self>;

    /// Whether the stored copy is only a stand-in (see [`slim_config_map`]): the object exists, and its
    /// content must be read through the API.
    fn is_stub(&self) -> bool {
        false
    }
}

impl Referenced for ConfigMap {
    fn store(stores: &References) -> &Store<Self> {
        &stores.config_maps
    }

    fn is_stub(&self) -> bool {
        self.metadata.resource_version.is_none()
    }
}

/// What the Cmd controller keeps of a ConfigMap. Only `disableSource` reads ConfigMaps, and only their
/// `data`; the store exists to trigger referring Cmds and to spare a GET per reconcile. So a ConfigMap no
/// Cmd refers to when its event arrives is kept as a stub (its name only, no `resourceVersion`, which every
/// object from the API has): a user's thousands of ConfigMaps then cost the controller ~0.3 KB each instead
/// of a typed copy several times their JSON size. A stub read through [`References`] is fetched from the
/// API, so a Cmd that starts to refer to an existing ConfigMap still sees its content. Referenced ones are
/// kept without `managedFields` (never read). Every later event replaces the entry, so a full entry is
/// always the latest state.
fn slim_config_map(cm: &mut ConfigMap, cmds: &Store<Cmd>) {
    let name = cm.metadata.name.clone().unwrap_or_default();
    if cmds.state().iter().any(|c| references(c, "ConfigMap", &name)) {
        cm.metadata.managed_fields = None;
    } else {
        *cm = ConfigMap { metadata: ObjectMeta { name: Some(name), ..ObjectMeta::default() }, data: Default::default() };
    }
}

macro_rules! referenced {
    ($($kind:ty => $field:ident),* $(,)?) => {$(
        impl Referenced for $kind {
            fn store(stores: &References) -> &Store<Self> {
                &stores.$field
            }
        }
    )*};
}
referenced!(FileWatch => file_watches, UIButton => buttons, Cmd => cmds, UIResource => resources);

/// Where [`triggers`] and [`disabled_by`] find the objects a spec names: the API (a GET each, for
/// controllers without stores) or the Cmd controller's [`References`].
pub(crate) trait Lookup: Sync {
    /// The object `name` of kind `K`, if it exists.
    async fn get<K: Referenced>(&self, name: &str) -> Result<Option<Arc<K>>, kube::Error>;
}

impl Lookup for Client {
    async fn get<K: Referenced>(&self, name: &str) -> Result<Option<Arc<K>>, kube::Error> {
        Ok(Api::<K>::all(self.clone()).get_opt(name).await?.map(Arc::new))
    }
}

/// The objects Cmds refer to, as the Cmd controller's watches last saw them.
pub struct References {
    file_watches: Store<FileWatch>,
    buttons: Store<UIButton>,
    cmds: Store<Cmd>,
    resources: Store<UIResource>,
    config_maps: Store<ConfigMap>,
    /// Reads what a store holds only as a stub ([`Referenced::is_stub`]).
    client: Client,
}

impl References {
    /// Waits until every store has listed once; before that, an object not yet seen would look missing
    /// and a trigger time already acted on could look new.
    async fn ready(&self) -> Result<(), reflector::store::WriterDropped> {
        self.file_watches.wait_until_ready().await?;
        self.buttons.wait_until_ready().await?;
        self.cmds.wait_until_ready().await?;
        self.resources.wait_until_ready().await?;
        self.config_maps.wait_until_ready().await
    }
}

impl Lookup for References {
    async fn get<K: Referenced>(&self, name: &str) -> Result<Option<Arc<K>>, kube::Error> {
        match K::store(self).get(&ObjectRef::new(name)) {
            Some(stub) if stub.is_stub() => Lookup::get::<K>(&self.client, name).await,
            found => Ok(found),
        }
    }
}

/// The newest event time among the objects an object restarts or starts on, and why it may not start yet
/// (`None` when every `startOn` condition is met); read through the API.
pub(crate) async fn triggers(
    client: &Client,
    restart_on: Option<&RestartOnSpec>,
    start_on: Option<&StartOnSpec>,
) -> Result<(Option<Timestamp>, Option<String>), kube::Error> {
    triggers_in(client, restart_on, start_on).await
}

/// [`triggers`], reading the referenced objects from `lookup`.
async fn triggers_in(
    lookup: &impl Lookup,
    restart_on: Option<&RestartOnSpec>,
    start_on: Option<&StartOnSpec>,
) -> Result<(Option<Timestamp>, Option<String>), kube::Error> {
    let mut newest: Option<Timestamp> = None;
    let mut bump = |t: Option<Timestamp>| {
        if let Some(t) = t {
            newest = Some(newest.map_or(t, |n| n.max(t)));
        }
    };
    let clicked_at = |b: &UIButton| b.status.as_ref().and_then(|s| s.last_clicked_at.as_ref()).map(|t| t.0);
    if let Some(r) = restart_on {
        for name in &r.file_watches {
            if let Some(fw) = lookup.get::<FileWatch>(name).await? {
                bump(fw.status.as_ref().and_then(|s| s.last_event_time.as_ref()).map(|t| t.0));
            }
        }
        for name in &r.ui_buttons {
            if let Some(b) = lookup.get::<UIButton>(name).await? {
                bump(clicked_at(&b));
            }
        }
        for name in &r.cmds {
            if let Some(c) = lookup.get::<Cmd>(name).await? {
                bump(succeeded_at(&c));
            }
        }
    }
    let mut waiting = Vec::new();
    if let Some(s) = start_on {
        let after = s.start_after.as_ref().map(|t| t.0);
        if !s.ui_buttons.is_empty() {
            let mut clicked_any = false;
            for name in &s.ui_buttons {
                if let Some(b) = lookup.get::<UIButton>(name).await?
                    && let Some(c) = clicked_at(&b).filter(|c| after.is_none_or(|a| *c > a))
                {
                    clicked_any = true;
                    bump(Some(c));
                }
            }
            if !clicked_any {
                waiting.push(format!("a trigger ({})", s.ui_buttons.join(", ")));
            }
        }
        for name in &s.cmds {
            match lookup.get::<Cmd>(name).await?.as_deref().and_then(succeeded_at) {
                Some(t) => bump(Some(t)),
                None => waiting.push(format!("{name} to succeed")),
            }
        }
        let mut not_ready: Vec<&str> = Vec::new();
        for name in &s.ui_resources {
            if !lookup.get::<UIResource>(name).await?.as_deref().is_some_and(resource_ready) {
                not_ready.push(name.as_str());
            }
        }
        if !not_ready.is_empty() {
            waiting.push(format!("resource_deps to be ready ({})", not_ready.join(", ")));
        }
    }
    let reason = (!waiting.is_empty()).then(|| format!("Waiting for {}", waiting.join(" and ")));
    Ok((newest, reason))
}

/// Why the Cmd is disabled by its `disableSource` ConfigMap(s) (`key: "true"`), if it is; read through
/// the API.
pub(crate) async fn disabled_by(client: &Client, source: Option<&DisableSource>) -> Result<Option<String>, kube::Error> {
    disabled_in(client, source).await
}

/// [`disabled_by`], reading the ConfigMaps from `lookup`.
async fn disabled_in(lookup: &impl Lookup, source: Option<&DisableSource>) -> Result<Option<String>, kube::Error> {
    let Some(source) = source else { return Ok(None) };
    let mut all: Vec<&ConfigMapDisableSource> = source.every_config_map.iter().collect();
    all.extend(source.config_map.as_ref());
    if all.is_empty() {
        return Ok(None);
    }
    for cm in &all {
        let map = lookup.get::<ConfigMap>(&cm.name).await?;
        if map.as_ref().and_then(|m| m.data.get(&cm.key)).map(String::as_str) != Some("true") {
            return Ok(None);
        }
    }
    let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    Ok(Some(format!("disabled by ConfigMap {}", names.join(", "))))
}

/// The resource (manifest) name of a Cmd, for its logs.
pub(crate) fn resource_of(cmd: &impl ResourceExt) -> String {
    cmd.annotations().get(RESOURCE_ANNOTATION).cloned().unwrap_or_else(|| cmd.name_any())
}

/// Brings the process of one Cmd in line with its spec and triggers.
pub async fn reconcile(cmd: Arc<Cmd>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let name = cmd.name_any();
    let uid = cmd.uid().unwrap_or_default();
    if cmd.metadata.deletion_timestamp.is_some() {
        ctx.forget(&name, Some(&uid), ctx.config.grace).await;
        return Ok(Action::await_change());
    }
    if ctx.references.ready().await.is_err() {
        // The watches are gone (shutdown): decide nothing on a partial view.
        return Ok(Action::requeue(Duration::from_millis(100)));
    }
    let refs = &ctx.references;
    let disabled = disabled_in(refs, cmd.spec.disable_source.as_ref()).await?;
    let (trigger, waiting) = triggers_in(refs, cmd.spec.restart_on.as_ref(), cmd.spec.start_on.as_ref()).await?;
    let slot = ctx.slot(&name);
    let mut entry = slot.lock().await;
    if let Some(reason) = disabled {
        let status = match entry.take() {
            Some(mut old) if old.uid == uid => {
                if let Some(run) = old.run.take() {
                    run.stop(ctx.config.grace).await;
                }
                old.status
            }
            Some(mut old) => {
                if let Some(run) = old.run.take() {
                    run.stop(ctx.config.grace).await;
                }
                new_status_cell(&ctx, &name)
            }
            None => new_status_cell(&ctx, &name),
        };
        let already = status.status.lock().await.disable_status.as_ref().is_some_and(|d| d.disabled && d.reason == reason);
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
        *entry = Some(Entry { uid, spec: cmd.spec.clone(), trigger: None, run: None, status });
        return Ok(Action::await_change());
    }
    let same_object = entry.as_ref().is_some_and(|e| e.uid == uid);
    if same_object {
        let e = entry.as_ref().expect("checked");
        let newer_trigger = trigger.is_some() && trigger > e.trigger;
        if e.spec == cmd.spec && !newer_trigger && e.run.is_some() {
            return Ok(Action::await_change());
        }
    }
    // Stop what runs now (another object of the same name, an old spec, or an older trigger) first.
    let status = match entry.take() {
        Some(mut old) => {
            if let Some(run) = old.run.take() {
                run.stop(ctx.config.grace).await;
            }
            if old.uid == uid { old.status } else { new_status_cell(&ctx, &name) }
        }
        None => new_status_cell(&ctx, &name),
    };
    if let Some(reason) = waiting {
        let unchanged = status.status.lock().await.waiting.as_ref().is_some_and(|w| w.reason == reason);
        if !unchanged {
            status
                .update(|s| *s = CmdStatus { waiting: Some(CmdStateWaiting { reason }), ..Default::default() })
                .await;
        }
        *entry = Some(Entry { uid, spec: cmd.spec.clone(), trigger, run: None, status });
        return Ok(Action::await_change());
    }
    let run = start(&ctx, &cmd, status.clone());
    *entry = Some(Entry { uid, spec: cmd.spec.clone(), trigger, run: Some(run), status });
    Ok(Action::await_change())
}

fn new_status_cell(ctx: &Ctx, name: &str) -> Arc<StatusCell> {
    Arc::new(StatusCell {
        api: Api::all(ctx.client.clone()),
        name: name.to_string(),
        status: tokio::sync::Mutex::new(CmdStatus::default()),
    })
}

/// Starts the supervisor task of one process: spawn, probe, wait, report, and restart per policy.
fn start(ctx: &Arc<Ctx>, cmd: &Cmd, status: Arc<StatusCell>) -> Run {
    let stop = CancellationToken::new();
    let grace = Arc::new(Mutex::new(ctx.config.grace));
    let task_grace = grace.clone();
    let spec = cmd.spec.clone();
    let resource = resource_of(cmd);
    let source = format!("cmd/{}", cmd.name_any());
    let ctx = ctx.clone();
    let token = stop.clone();
    let task = tokio::spawn(async move {
        let policy = spec.restart_policy.unwrap_or_default();
        let mut backoff = ctx.config.restart_backoff;
        loop {
            let started_at = Timestamp::now();
            let mut group = match ProcessGroup::spawn(&spec, &ctx.config.default_dir, &ctx.logs, &resource, &source) {
                Ok(g) => g,
                Err(err) => {
                    ctx.logs.append(&resource, &source, &err.to_string());
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
            ctx.reaper.register(pid);
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
            ctx.reaper.unregister(pid);
            if let Some((prober, writer)) = probing {
                prober.abort();
                writer.abort();
                let _ = writer.await;
            }
            let code = exit.as_ref().map(process::exit_code).unwrap_or(-1);
            let reason = match (&exit, stopped) {
                (Err(e), _) => format!("waiting for the process failed: {e}"),
                (Ok(_), true) => STOPPED_REASON.to_string(),
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

fn error_policy(cmd: Arc<Cmd>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(cmd = %cmd.name_any(), %err, "Cmd reconcile failed");
    Action::requeue(Duration::from_millis(500))
}

fn references(cmd: &Cmd, kind: &str, name: &str) -> bool {
    let restart = cmd.spec.restart_on.as_ref();
    let start = cmd.spec.start_on.as_ref();
    let has = |list: &[String]| list.iter().any(|n| n == name);
    match kind {
        "FileWatch" => restart.is_some_and(|r| has(&r.file_watches)),
        "UIButton" => restart.is_some_and(|r| has(&r.ui_buttons)) || start.is_some_and(|s| has(&s.ui_buttons)),
        "Cmd" => restart.is_some_and(|r| has(&r.cmds)) || start.is_some_and(|s| has(&s.cmds)),
        "UIResource" => start.is_some_and(|s| has(&s.ui_resources)),
        "ConfigMap" => cmd.spec.disable_source.as_ref().is_some_and(|d| {
            d.config_map.iter().chain(d.every_config_map.iter()).any(|c| c.name == name)
        }),
        _ => false,
    }
}

fn referrers(store: &Store<Cmd>, kind: &'static str, name: &str) -> Vec<ObjectRef<Cmd>> {
    store.state().iter().filter(|c| references(c, kind, name)).map(|c| ObjectRef::from_obj(&**c)).collect()
}

/// Runs the controller until `shutdown` is cancelled, then stops every process it started.
pub async fn run(client: Client, shutdown: CancellationToken, logs: Arc<LogStore>, reaper: Arc<Reaper>, config: CmdConfig) {
    let (cmds, cmd_writer) = reflector::store::<Cmd>();
    let (file_watches, file_watch_events) = reflect::<FileWatch>(&client);
    let (buttons, button_events) = reflect::<UIButton>(&client);
    let (resources, resource_events) = reflect::<UIResource>(&client);
    let referrers_of = cmds.clone();
    let (config_maps, config_map_events) =
        reflect_modified::<ConfigMap>(&client, move |cm| slim_config_map(cm, &referrers_of));
    let references =
        References { file_watches, buttons, cmds: cmds.clone(), resources, config_maps, client: client.clone() };
    let ctx = Arc::new(Ctx::new(client.clone(), logs, reaper, config, references));

    // One watch of Cmds fills the store and triggers each changed Cmd, the Cmds that refer to it, and
    // (the Controller never reconciles a deleted object) the stop of a deleted Cmd's process.
    let (deleted_tx, deleted_rx) = futures::channel::mpsc::unbounded::<Cmd>();
    let (referrers_tx, referrers_rx) = futures::channel::mpsc::unbounded::<ObjectRef<Cmd>>();
    let store = cmds.clone();
    let cmd_events = watcher(Api::<Cmd>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(cmd_writer)
        .inspect(move |event| {
            let changed = match event {
                Ok(watcher::Event::Apply(cmd)) => cmd,
                Ok(watcher::Event::Delete(cmd)) => {
                    let _ = deleted_tx.unbounded_send(cmd.clone());
                    cmd
                }
                // A (re)list reconciles every Cmd anyway.
                _ => return,
            };
            for r in referrers(&store, "Cmd", &changed.name_any()) {
                let _ = referrers_tx.unbounded_send(r);
            }
        })
        .applied_objects();
    let (fw_store, button_store, resource_store, cm_store) = (cmds.clone(), cmds.clone(), cmds.clone(), cmds.clone());
    let stop = shutdown.clone();
    let controller = Controller::for_stream(cmd_events, cmds)
        .reconcile_on(referrers_rx)
        .watches_stream(file_watch_events, move |fw| referrers(&fw_store, "FileWatch", &fw.name_any()))
        .watches_stream(button_events, move |b| referrers(&button_store, "UIButton", &b.name_any()))
        .watches_stream(resource_events, move |r| referrers(&resource_store, "UIResource", &r.name_any()))
        .watches_stream(config_map_events, move |m| referrers(&cm_store, "ConfigMap", &m.name_any()))
        .graceful_shutdown_on(async move { stop.cancelled().await })
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|_| async {});
    let deletes = {
        let ctx = ctx.clone();
        deleted_rx.for_each(move |cmd| {
            let ctx = ctx.clone();
            async move { ctx.forget(&cmd.name_any(), cmd.uid().as_deref(), ctx.config.grace).await }
        })
    };
    tokio::select! {
        _ = controller => {}
        _ = deletes => {}
        _ = shutdown.cancelled() => {}
    }
    ctx.stop_all().await;
}
