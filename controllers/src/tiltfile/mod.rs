//! The Tiltfile controller: evaluates each `Tiltfile` object and reconciles the set of objects it declares.
//!
//! Evaluation is injected as a [`Loader`] (the Starlark implementation lives in the `tilt-config` crate, so
//! this crate builds without it). After a successful load the declared objects are applied with
//! server-side apply (unchanged objects are untouched: the server keeps their version), and objects a
//! previous load declared but this one does not are deleted. A failed load changes nothing but the status,
//! so running resources are left alone. The files the Tiltfile read are watched through a FileWatch named
//! `configs:<tiltfile>`; its events re-run the load.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tilt_apis::{
    FileWatch, FileWatchSpec, Tiltfile, TiltfileStateRunning, TiltfileStateTerminated, TiltfileStatus, UIButton,
};
use tokio_util::sync::CancellationToken;

use crate::logs::{LogLevel, LogStore};

use crate::references::{references, triggers};
use crate::runtime::{Informers, Reconciler, Setup};
use crate::status::apply_status;

/// The field manager of this controller's writes.
pub const MANAGER: &str = "tilt-tiltfile-controller";
/// Label on every object a Tiltfile declares (value: [`OWNER_VALUE`]).
pub const OWNER_LABEL: &str = "tilt.dev/owner";
/// Value of [`OWNER_LABEL`].
pub const OWNER_VALUE: &str = "tiltfile";

/// What evaluating a Tiltfile produced.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    /// The declared objects (apiVersion, kind, metadata, spec), when the load succeeded.
    pub objects: Vec<Value>,
    /// Every file the evaluation read, to watch for changes (also on failure).
    pub files: Vec<PathBuf>,
    /// Lines the Tiltfile printed.
    pub output: Vec<String>,
    /// The error (a Starlark traceback), when it failed.
    pub error: Option<String>,
}

/// Evaluates Tiltfiles. Runs on a blocking thread: it may run `local()` commands.
pub trait Loader: Send + Sync + 'static {
    /// Evaluates the Tiltfile at `path` with `args`.
    fn load(&self, path: &std::path::Path, args: &[String]) -> LoadResult;
}

/// Errors of one reconcile; retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API refused a read or write.
    #[error("Tiltfile controller API call failed: {0}")]
    Api(#[from] kube::Error),
    /// A declared object has no usable apiVersion/kind/name.
    #[error("the Tiltfile declared an invalid object: {0}")]
    Object(String),
}

/// The Tiltfile controller.
pub struct Ctx {
    client: Client,
    informers: Arc<Informers>,
    loader: Arc<dyn Loader>,
    logs: Arc<LogStore>,
}

/// The FileWatch that covers a Tiltfile's inputs.
pub fn configs_name(tiltfile: &str) -> String {
    format!("configs:{tiltfile}")
}

/// The kinds a Tiltfile may declare, for deleting what it no longer declares.
fn declarable() -> Vec<ApiResource> {
    let mut out = Vec::new();
    macro_rules! add {
        ($t:ty) => {
            out.push(ApiResource::erase::<$t>(&()));
        };
    }
    tilt_apis::for_each_kind!(add);
    out
}

fn api_resource_of(obj: &Value, kinds: &[ApiResource]) -> Result<ApiResource, Error> {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    kinds
        .iter()
        .find(|k| k.api_version == api_version && k.kind == kind)
        .cloned()
        .ok_or_else(|| Error::Object(format!("unknown kind {api_version}/{kind}")))
}

/// How many declared objects are applied at once.
const APPLY_CONCURRENCY: usize = 16;

/// Applies `objects` (a bounded number at a time) and deletes owned objects that are no longer declared.
async fn reconcile_objects(client: &Client, objects: &[Value]) -> Result<(), Error> {
    let kinds = declarable();
    let mut declared: BTreeSet<(String, String)> = BTreeSet::new();
    let mut applies = Vec::new();
    for obj in objects {
        let ar = api_resource_of(obj, &kinds)?;
        let name =
            obj["metadata"]["name"].as_str().filter(|n| !n.is_empty()).ok_or_else(|| Error::Object(obj.to_string()))?;
        let mut obj = obj.clone();
        obj["metadata"]["labels"][OWNER_LABEL] = json!(OWNER_VALUE);
        declared.insert((ar.kind.clone(), name.to_string()));
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let name = name.to_string();
        applies.push(async move {
            api.patch(&tilt_apis::path_name(&name), &PatchParams::apply(MANAGER).force(), &Patch::Apply(&obj))
                .await
                .map(drop)
        });
    }
    futures::stream::iter(applies).buffer_unordered(APPLY_CONCURRENCY).try_collect::<Vec<()>>().await?;
    let owned = ListParams::default().labels(&format!("{OWNER_LABEL}={OWNER_VALUE}"));
    for ar in &kinds {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), ar);
        for obj in api.list(&owned).await? {
            let name = obj.name_any();
            if !declared.contains(&(ar.kind.clone(), name.clone())) {
                match api.delete(&tilt_apis::path_name(&name), &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(())
}

/// Deletes every object a Tiltfile declared (`tilt down`). Returns how many were deleted.
pub async fn delete_declared(client: &Client) -> Result<usize, kube::Error> {
    let owned = ListParams::default().labels(&format!("{OWNER_LABEL}={OWNER_VALUE}"));
    let mut n = 0;
    for ar in declarable() {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        for obj in api.list(&owned).await? {
            match api.delete(&tilt_apis::path_name(obj.name_any()), &DeleteParams::default()).await {
                Ok(_) => n += 1,
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(n)
}

fn micro(t: Timestamp) -> MicroTime {
    MicroTime(t)
}

async fn write_status(api: &Api<Tiltfile>, name: &str, status: TiltfileStatus) -> Result<(), kube::Error> {
    apply_status(api, name, MANAGER, &status).await
}

impl Reconciler for Ctx {
    type K = Tiltfile;
    /// The spec last loaded and the newest file event it saw.
    type State = (tilt_apis::TiltfileSpec, Option<Timestamp>);
    type Error = Error;
    const NAME: &'static str = "tiltfile";

    async fn reconcile(&self, tf: Arc<Tiltfile>, state: &mut Option<Self::State>) -> Result<Action, Error> {
        reconcile(tf, self, state).await
    }
}

/// Loads the Tiltfile when its spec or one of its files changed, and reconciles what it declares.
async fn reconcile(
    tf: Arc<Tiltfile>,
    ctx: &Ctx,
    loaded: &mut Option<(tilt_apis::TiltfileSpec, Option<Timestamp>)>,
) -> Result<Action, Error> {
    let name = tf.name_any();
    let fws: Api<FileWatch> = Api::all(ctx.client.clone());
    let file_event = ctx
        .informers
        .get::<FileWatch>(&configs_name(&name))
        .await
        .and_then(|fw| fw.status.clone())
        .and_then(|s| s.last_event_time)
        .map(|t| t.0);
    // A click on a `restartOn` button (the web UI's trigger of the Tiltfile) reloads it too.
    let (clicked, _) = triggers(&*ctx.informers, tf.spec.restart_on.as_ref(), None).await;
    let trigger = file_event.max(clicked);
    if let Some((spec, seen)) = &*loaded
        && *spec == tf.spec
        && (trigger.is_none() || trigger <= *seen)
    {
        return Ok(Action::await_change());
    }
    let api: Api<Tiltfile> = Api::all(ctx.client.clone());
    let started = Timestamp::now();
    ctx.logs.append(&name, "tiltfile", &format!("Loading Tiltfile at: {}", tf.spec.path));
    write_status(
        &api,
        &name,
        TiltfileStatus {
            running: Some(TiltfileStateRunning {
                reasons: vec!["CONFIG_CHANGED".into()],
                started_at: Some(micro(started)),
            }),
            ..Default::default()
        },
    )
    .await?;
    let loader = ctx.loader.clone();
    let path = PathBuf::from(&tf.spec.path);
    let args = tf.spec.args.clone();
    let result = tokio::task::spawn_blocking(move || loader.load(&path, &args)).await.unwrap_or_else(|e| LoadResult {
        error: Some(format!("the Tiltfile loader crashed: {e}")),
        ..Default::default()
    });
    for line in &result.output {
        ctx.logs.append(&name, "tiltfile", line);
    }
    // Watch what was read even when the load failed, so fixing the file re-runs it.
    let mut files: Vec<String> = result.files.iter().map(|f| f.to_string_lossy().into_owned()).collect();
    if !files.contains(&tf.spec.path) && !tf.spec.path.is_empty() {
        files.push(tf.spec.path.clone());
    }
    files.sort();
    files.dedup();
    let watch = FileWatch::new(&configs_name(&name), FileWatchSpec { watched_paths: files, ..Default::default() });
    let mut watch = serde_json::to_value(&watch).map_err(|e| Error::Object(e.to_string()))?;
    watch["metadata"]["labels"] = json!({"tilt.dev/tiltfile": "configs"});
    fws.patch(&tilt_apis::path_name(configs_name(&name)), &PatchParams::apply(MANAGER).force(), &Patch::Apply(&watch))
        .await?;

    let error = match &result.error {
        Some(e) => Some(e.clone()),
        None => reconcile_objects(&ctx.client, &result.objects).await.err().map(|e| e.to_string()),
    };
    match &error {
        Some(e) => {
            for line in e.lines() {
                ctx.logs.append_level(&name, "tiltfile", LogLevel::Error, line);
            }
        }
        None => {
            let took = (Timestamp::now() - started).get_milliseconds();
            ctx.logs.append(&name, "tiltfile", &format!("Successfully loaded Tiltfile ({took}ms)"));
        }
    }
    write_status(
        &api,
        &name,
        TiltfileStatus {
            terminated: Some(TiltfileStateTerminated {
                reasons: vec!["CONFIG_CHANGED".into()],
                error: error.unwrap_or_default(),
                started_at: Some(micro(started)),
                finished_at: Some(micro(Timestamp::now())),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await?;
    *loaded = Some((tf.spec.clone(), trigger.or(Some(started))));
    Ok(Action::await_change())
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(informers: Arc<Informers>, shutdown: CancellationToken, loader: Arc<dyn Loader>, logs: Arc<LogStore>) {
    let ctx = Arc::new(Ctx { client: informers.client().clone(), informers: informers.clone(), loader, logs });
    Setup::new(ctx, &informers)
        .index(|tf: &Tiltfile| references(tf.spec.restart_on.as_ref(), None, None))
        .referenced::<UIButton>()
        .watches::<FileWatch, _>(|fw| {
            let configs = fw.labels().get("tilt.dev/tiltfile").is_some_and(|v| v == "configs");
            fw.name_any().strip_prefix("configs:").filter(|_| configs).map(ObjectRef::<Tiltfile>::new)
        })
        .run(shutdown)
        .await;
}
