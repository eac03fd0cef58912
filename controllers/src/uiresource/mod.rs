//! The UIResource controller: summarizes each resource's objects (its build step and server Cmds) into
//! the UIResource status — update and runtime status, a waiting reason, and the `Ready` / `UpToDate`
//! conditions that `kubectl wait --for=condition=Ready uiresource/NAME` and `tilt ci` rely on.
//!
//! A resource's objects carry the label `tilt.dev/resource=<name>`; the Cmd named `<name>:update` is its
//! build step and `<name>:serve` its server (the Tiltfile's `local_resource` mapping); its image builds
//! (DockerImages and CmdImages) and KubernetesApply make up the update of a Kubernetes resource, and its KubernetesDiscovery's pods the
//! runtime. The controller reads them from stores filled by its own watches, so a reconcile costs no
//! request but the status write.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use tilt_apis::{
    CMD_STOPPED_REASON, Cmd, CmdImage, CmdStatus, DisableResourceStatus, DisableSource, DockerImage, KubernetesApply,
    KubernetesDiscovery, RuntimeStatus, Tiltfile, UIResource, UIResourceCondition, UIResourceStateWaiting,
    UIResourceStateWaitingOnRef, UIResourceStatus, UpdateStatus,
};
use tokio_util::sync::CancellationToken;

mod details;

use crate::runtime::{Informers, Reconciler, Setup};
use crate::status;

/// The field manager of this controller's status writes.
pub const MANAGER: &str = "tilt-uiresource-controller";

/// Errors of one reconcile; retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API refused a read or write.
    #[error("UIResource controller API call failed: {0}")]
    Api(#[from] kube::Error),
}

/// What a reconcile needs.
pub struct Ctx {
    /// The API client.
    pub client: Client,
    /// What the resources are made of.
    pub stores: Stores,
    informers: Arc<Informers>,
}

/// The build step's contribution.
fn update_status(cmd: Option<&CmdStatus>) -> (UpdateStatus, Option<String>) {
    match cmd {
        None => (UpdateStatus::NotApplicable, None),
        Some(s) if s.running.is_some() => (UpdateStatus::InProgress, None),
        Some(s) => match (&s.terminated, &s.waiting) {
            (Some(t), _) if t.reason == CMD_STOPPED_REASON => (UpdateStatus::Pending, Some("restarting".into())),
            (Some(t), _) if t.exit_code == 0 && t.reason.is_empty() => (UpdateStatus::Ok, None),
            (Some(t), _) => (
                UpdateStatus::Error,
                Some(if t.reason.is_empty() { format!("exit code {}", t.exit_code) } else { t.reason.clone() }),
            ),
            (None, Some(w)) => (UpdateStatus::Pending, Some(w.reason.clone())),
            (None, None) => (UpdateStatus::Pending, None),
        },
    }
}

/// The server's contribution.
fn runtime_status(cmd: Option<&CmdStatus>) -> (RuntimeStatus, Option<String>) {
    match cmd {
        None => (RuntimeStatus::NotApplicable, None),
        Some(s) if s.running.is_some() && s.ready => (RuntimeStatus::Ok, None),
        Some(s) if s.running.is_some() => (RuntimeStatus::Pending, Some("waiting for the readiness probe".into())),
        Some(s) => match (&s.terminated, &s.waiting) {
            (Some(t), _) if t.reason == CMD_STOPPED_REASON => (RuntimeStatus::Pending, Some("restarting".into())),
            (Some(t), _) => (
                RuntimeStatus::Error,
                Some(if t.reason.is_empty() {
                    format!("server exited with code {}", t.exit_code)
                } else {
                    t.reason.clone()
                }),
            ),
            (None, Some(w)) => (RuntimeStatus::Pending, Some(w.reason.clone())),
            (None, None) => (RuntimeStatus::Pending, None),
        },
    }
}

fn condition(
    type_: &str,
    ok: bool,
    reason: &str,
    message: &str,
    previous: &[UIResourceCondition],
) -> UIResourceCondition {
    let status = if ok { "True" } else { "False" };
    // Keep the transition time while the status stays the same.
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .or_else(|| Some(MicroTime(Timestamp::now())));
    UIResourceCondition {
        type_: type_.into(),
        status: status.into(),
        last_transition_time,
        reason: if ok { String::new() } else { reason.into() },
        message: if ok { String::new() } else { message.into() },
    }
}

/// The objects of one resource (those labelled `tilt.dev/resource=<name>`).
#[derive(Default)]
pub struct Objects<'a> {
    /// Its Cmds (`<name>:update`, `<name>:serve`).
    pub cmds: Vec<&'a Cmd>,
    /// Its image builds.
    pub images: Vec<ImageBuild>,
    /// Its deploys.
    pub applies: Vec<&'a KubernetesApply>,
    /// The discoveries of its deployed pods.
    pub discoveries: Vec<&'a KubernetesDiscovery>,
}

/// An image build of either kind (DockerImage, CmdImage), as much of its status as a resource shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageBuild {
    /// `DockerImage` or `CmdImage`.
    pub kind: &'static str,
    /// The object's name.
    pub name: String,
    /// When the running build started, if one runs.
    pub building: Option<Option<MicroTime>>,
    /// The last finished build.
    pub completed: Option<CompletedBuild>,
    /// Why it waits, if it does.
    pub waiting: Option<String>,
}

/// A finished image build.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompletedBuild {
    /// Why it failed; empty on success.
    pub error: String,
    /// When it started.
    pub started_at: Option<MicroTime>,
    /// When it finished.
    pub finished_at: Option<MicroTime>,
}

impl From<&DockerImage> for ImageBuild {
    fn from(image: &DockerImage) -> ImageBuild {
        let s = image.status.clone().unwrap_or_default();
        ImageBuild {
            kind: "DockerImage",
            name: image.name_any(),
            building: s.building.map(|b| b.started_at),
            completed: s.completed.map(|c| CompletedBuild {
                error: c.error,
                started_at: c.started_at,
                finished_at: c.finished_at,
            }),
            waiting: s.waiting.map(|w| w.reason),
        }
    }
}

impl From<&CmdImage> for ImageBuild {
    fn from(image: &CmdImage) -> ImageBuild {
        let s = image.status.clone().unwrap_or_default();
        ImageBuild {
            kind: "CmdImage",
            name: image.name_any(),
            building: s.building.map(|b| b.started_at),
            completed: s.completed.map(|c| CompletedBuild {
                error: c.error,
                started_at: c.started_at,
                finished_at: c.finished_at,
            }),
            waiting: s.waiting.map(|w| w.reason),
        }
    }
}

/// An image build's contribution to the update status.
fn image_status(image: &ImageBuild) -> (UpdateStatus, Option<String>) {
    match (&image.building, &image.completed, &image.waiting) {
        (Some(_), _, _) => (UpdateStatus::InProgress, None),
        (None, Some(c), _) if !c.error.is_empty() => {
            (UpdateStatus::Error, Some(format!("image build failed: {}", c.error)))
        }
        (None, Some(_), _) => (UpdateStatus::Ok, None),
        (None, None, Some(w)) => (UpdateStatus::Pending, Some(w.clone())),
        (None, None, None) => (UpdateStatus::Pending, Some("waiting for the image build".into())),
    }
}

/// A deploy's contribution to the update status.
fn apply_status(ka: &KubernetesApply) -> (UpdateStatus, Option<String>) {
    let s = ka.status.clone().unwrap_or_default();
    if !s.error.is_empty() {
        (UpdateStatus::Error, Some(s.error))
    } else if s.last_apply_time.is_some() {
        (UpdateStatus::Ok, None)
    } else {
        let why = s.waiting.map(|w| w.reason).unwrap_or_else(|| "waiting to deploy".into());
        (UpdateStatus::Pending, Some(why))
    }
}

/// The deployed pods' contribution to the runtime status: the newest pod's ([`tilt_apis::newest_pod`]).
fn pods_status(kd: &KubernetesDiscovery) -> (RuntimeStatus, Option<String>) {
    let s = kd.status.clone().unwrap_or_default();
    if let Some(w) = &s.waiting {
        return (RuntimeStatus::Pending, Some(w.reason.clone()));
    }
    let Some(pod) = tilt_apis::newest_pod(&s.pods) else {
        return (RuntimeStatus::Pending, Some("waiting for pods".into()));
    };
    if !pod.errors.is_empty() {
        (RuntimeStatus::Error, Some(format!("pod {}: {}", pod.name, pod.errors.join("; "))))
    } else if pod.is_ready() {
        (RuntimeStatus::Ok, None)
    } else {
        (RuntimeStatus::Pending, Some(format!("pod {}: {}", pod.name, pod.status)))
    }
}

/// Kinds whose objects make pods.
const WORKLOAD_KINDS: [&str; 8] =
    ["Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController"];

/// Whether a deploy runs pods: it applied a workload, or it follows pods by label.
fn runs_pods(ka: &KubernetesApply) -> bool {
    let selects = ka.spec.kubernetes_discovery_template_spec.as_ref().is_some_and(|t| !t.extra_selectors.is_empty());
    let applied = ka.status.as_ref().map(|s| s.applied_kinds()).unwrap_or_default();
    selects || applied.iter().any(|kind| WORKLOAD_KINDS.contains(&kind.as_str()))
}

/// The most telling of several update statuses: an error, else work in progress, else pending, else ok.
fn worst_update(all: Vec<(UpdateStatus, Option<String>)>) -> (UpdateStatus, Option<String>) {
    let rank = |s: &UpdateStatus| match s {
        UpdateStatus::Error => 0,
        UpdateStatus::InProgress => 1,
        UpdateStatus::Pending => 2,
        _ => 3,
    };
    all.into_iter().min_by_key(|(s, _)| rank(s)).unwrap_or((UpdateStatus::NotApplicable, None))
}

fn worst_runtime(all: Vec<(RuntimeStatus, Option<String>)>) -> (RuntimeStatus, Option<String>) {
    let rank = |s: &RuntimeStatus| match s {
        RuntimeStatus::Error => 0,
        RuntimeStatus::Pending => 1,
        _ => 2,
    };
    all.into_iter().min_by_key(|(s, _)| rank(s)).unwrap_or((RuntimeStatus::NotApplicable, None))
}

/// Computes a resource's status from its objects.
pub fn summarize(name: &str, objects: &Objects<'_>, previous: &UIResourceStatus) -> UIResourceStatus {
    let find = |suffix: &str| objects.cmds.iter().copied().find(|c| c.name_any() == format!("{name}:{suffix}"));
    let update = find("update");
    let serve = find("serve");
    let mut updates: Vec<(UpdateStatus, Option<String>)> = Vec::new();
    if let Some(c) = update {
        updates.push(update_status(Some(&c.status.clone().unwrap_or_default())));
    }
    updates.extend(objects.images.iter().map(image_status));
    updates.extend(objects.applies.iter().map(|a| apply_status(a)));
    let mut runtimes: Vec<(RuntimeStatus, Option<String>)> = Vec::new();
    if let Some(c) = serve {
        runtimes.push(runtime_status(Some(&c.status.clone().unwrap_or_default())));
    }
    // Only deploys that run pods have a runtime (a resource of ConfigMaps is Ready once applied).
    if objects.applies.iter().any(|a| runs_pods(a)) {
        runtimes.extend(objects.discoveries.iter().map(|d| pods_status(d)));
        if objects.discoveries.is_empty() {
            runtimes.push((RuntimeStatus::Pending, Some("waiting to deploy".into())));
        }
    }
    let has_work = !updates.is_empty() || !runtimes.is_empty();
    let (update_status, update_why) = worst_update(updates);
    let (runtime, runtime_why) = worst_runtime(runtimes);
    let update_ok = matches!(update_status, UpdateStatus::Ok | UpdateStatus::NotApplicable);
    let runtime_ok = matches!(runtime, RuntimeStatus::Ok | RuntimeStatus::NotApplicable);
    let ready = update_ok && runtime_ok && has_work;
    let failed = update_status == UpdateStatus::Error || runtime == RuntimeStatus::Error;
    let message = update_why.clone().or(runtime_why.clone()).unwrap_or_default();
    let waiting_cmd =
        [update, serve].into_iter().flatten().find(|c| c.status.as_ref().is_some_and(|s| s.waiting.is_some()));
    let waiting = waiting_cmd.map(|c| UIResourceStateWaiting {
        reason: c.status.as_ref().and_then(|s| s.waiting.as_ref()).map(|w| w.reason.clone()).unwrap_or_default(),
        on: vec![UIResourceStateWaitingOnRef {
            group: "tilt.dev".into(),
            api_version: "v1alpha1".into(),
            kind: "Cmd".into(),
            name: c.name_any(),
        }],
    });
    let unbuilt: Vec<&ImageBuild> =
        if objects.applies.iter().any(|a| a.status.as_ref().is_none_or(|s| s.last_apply_time.is_none())) {
            objects.images.iter().filter(|i| i.completed.is_none()).collect()
        } else {
            Vec::new()
        };
    let waiting = waiting.or_else(|| {
        (!unbuilt.is_empty()).then(|| UIResourceStateWaiting {
            reason: "waiting for the image build".into(),
            on: unbuilt
                .iter()
                .map(|i| UIResourceStateWaitingOnRef {
                    group: "tilt.dev".into(),
                    api_version: "v1alpha1".into(),
                    kind: i.kind.into(),
                    name: i.name.clone(),
                })
                .collect(),
        })
    });
    let mine: Vec<&Cmd> = [update, serve].into_iter().flatten().collect();
    let is_disabled = |c: &Cmd| c.status.as_ref().and_then(|s| s.disable_status.as_ref()).is_some_and(|d| d.disabled);
    let apply_disabled =
        |a: &KubernetesApply| a.status.as_ref().and_then(|s| s.disable_status.as_ref()).is_some_and(|d| d.disabled);
    let total = (mine.len() + objects.applies.len()) as i32;
    let disabled_count = (mine.iter().filter(|c| is_disabled(c)).count()
        + objects.applies.iter().filter(|a| apply_disabled(a)).count()) as i32;
    let disabled = total > 0 && disabled_count == total;
    let mut sources: Vec<DisableSource> = Vec::new();
    let declared = mine.iter().filter_map(|c| c.spec.disable_source.clone());
    for source in declared.chain(objects.applies.iter().filter_map(|a| a.spec.disable_source.clone())) {
        if !sources.contains(&source) {
            sources.push(source);
        }
    }
    let disable_status = DisableResourceStatus {
        enabled_count: total - disabled_count,
        disabled_count,
        state: if disabled { "Disabled" } else { "Enabled" }.into(),
        sources,
    };
    let (ready, waiting) = if disabled { (false, None) } else { (ready, waiting) };
    let reason = if disabled {
        "Disabled"
    } else if failed {
        "Error"
    } else if waiting.is_some() {
        "Waiting"
    } else if !has_work {
        "NoWork"
    } else {
        "InProgress"
    };
    let deployed =
        objects.applies.iter().filter_map(|a| a.status.as_ref()?.last_apply_time.clone()).max_by_key(|t| t.0);
    UIResourceStatus {
        update_status: Some(update_status),
        runtime_status: Some(runtime),
        waiting,
        last_deploy_time: deployed
            .or_else(|| update.and_then(|c| c.status.as_ref()?.terminated.as_ref()?.finished_at.clone()))
            .or_else(|| serve.and_then(|c| c.status.as_ref()?.running.as_ref()?.started_at.clone())),
        disable_status,
        conditions: vec![
            condition("Ready", ready, reason, &message, &previous.conditions),
            condition("UpToDate", update_ok, reason, update_why.as_deref().unwrap_or(""), &previous.conditions),
        ],
        ..previous.clone()
    }
}

/// The objects of every resource, as the controller's watches last saw them.
pub struct Stores {
    cmds: Store<Cmd>,
    images: Store<DockerImage>,
    cmd_images: Store<CmdImage>,
    applies: Store<KubernetesApply>,
    discoveries: Store<KubernetesDiscovery>,
}

fn of_resource<K: Resource<DynamicType = ()> + Clone>(store: &Store<K>, name: &str) -> Vec<Arc<K>> {
    store.state().into_iter().filter(|o| tilt_apis::resource_name_of(o.meta()) == Some(name)).collect()
}

impl Reconciler for Ctx {
    type K = UIResource;
    type State = ();
    type Error = Error;
    const NAME: &'static str = "uiresource";

    async fn reconcile(&self, res: Arc<UIResource>, _: &mut Option<()>) -> Result<Action, Error> {
        reconcile(res, self).await
    }
}

/// Recomputes one UIResource's status.
async fn reconcile(res: Arc<UIResource>, ctx: &Ctx) -> Result<Action, Error> {
    let name = res.name_any();
    let previous = res.status.clone().unwrap_or_default();
    // The Tiltfile's own resource shows its loads.
    ctx.informers.ready::<Tiltfile>().await;
    if let Some(tf) = ctx.informers.get::<Tiltfile>(&name).await {
        let status = details::summarize_tiltfile(&tf, &previous);
        if status != previous {
            status::apply_status(&Api::<UIResource>::all(ctx.client.clone()), &name, MANAGER, &status).await?;
        }
        return Ok(Action::await_change());
    }
    let s = &ctx.stores;
    // Until every store has listed once, a missing object cannot be told from one not yet seen.
    ctx.informers.ready::<Cmd>().await;
    ctx.informers.ready::<DockerImage>().await;
    ctx.informers.ready::<CmdImage>().await;
    ctx.informers.ready::<KubernetesApply>().await;
    ctx.informers.ready::<KubernetesDiscovery>().await;
    let (cmds, images, applies, discoveries) = (
        of_resource(&s.cmds, &name),
        of_resource(&s.images, &name),
        of_resource(&s.applies, &name),
        of_resource(&s.discoveries, &name),
    );
    let objects = Objects {
        cmds: cmds.iter().map(|c| &**c).collect(),
        images: images
            .iter()
            .map(|i| ImageBuild::from(&**i))
            .chain(of_resource(&s.cmd_images, &name).iter().map(|i| ImageBuild::from(&**i)))
            .collect(),
        applies: applies.iter().map(|c| &**c).collect(),
        discoveries: discoveries.iter().map(|c| &**c).collect(),
    };
    let mut status = summarize(&name, &objects, &previous);
    details::describe(&res, &objects, &mut status);
    if status == previous {
        return Ok(Action::await_change());
    }
    status::apply_status(&Api::<UIResource>::all(ctx.client.clone()), &name, MANAGER, &status).await?;
    Ok(Action::await_change())
}

fn owner_resource<K: Resource>(o: &K) -> Option<ObjectRef<UIResource>> {
    tilt_apis::resource_name_of(o.meta()).map(ObjectRef::<UIResource>::new)
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(informers: Arc<Informers>, shutdown: CancellationToken) {
    let stores = Stores {
        cmds: informers.store(),
        images: informers.store(),
        cmd_images: informers.store(),
        applies: informers.store(),
        discoveries: informers.store(),
    };
    let ctx = Arc::new(Ctx { client: informers.client().clone(), stores, informers: informers.clone() });
    Setup::new(ctx, &informers)
        .watches::<Cmd, _>(owner_resource)
        .watches::<DockerImage, _>(owner_resource)
        .watches::<CmdImage, _>(owner_resource)
        .watches::<KubernetesApply, _>(owner_resource)
        .watches::<KubernetesDiscovery, _>(owner_resource)
        .watches::<Tiltfile, _>(|tf| Some(ObjectRef::<UIResource>::new(&tf.name_any())))
        .run(shutdown)
        .await;
}
