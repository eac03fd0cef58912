//! The UIResource controller: summarizes each resource's objects (its build step and server Cmds) into
//! the UIResource status — update and runtime status, a waiting reason, and the `Ready` / `UpToDate`
//! conditions that `kubectl wait --for=condition=Ready uiresource/NAME` and `tilt ci` rely on.
//!
//! A resource's objects carry the label `tilt.dev/resource=<name>`; the Cmd named `<name>:update` is its
//! build step and `<name>:serve` its server (the Tiltfile's `local_resource` mapping).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;
use tilt_apis::{
    Cmd, CmdStatus, DisableResourceStatus, DisableSource, RuntimeStatus, UIResource, UIResourceCondition, UIResourceStateWaiting, UIResourceStateWaitingOnRef,
    UIResourceStatus, UpdateStatus,
};
use tokio_util::sync::CancellationToken;

use crate::cmd::STOPPED_REASON;

/// The field manager of this controller's status writes.
pub const MANAGER: &str = "tilt-uiresource-controller";
/// The label naming the resource an object belongs to.
pub const RESOURCE_LABEL: &str = "tilt.dev/resource";

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
}

/// The build step's contribution.
fn update_status(cmd: Option<&CmdStatus>) -> (UpdateStatus, Option<String>) {
    match cmd {
        None => (UpdateStatus::NotApplicable, None),
        Some(s) if s.running.is_some() => (UpdateStatus::InProgress, None),
        Some(s) => match (&s.terminated, &s.waiting) {
            (Some(t), _) if t.reason == STOPPED_REASON => (UpdateStatus::Pending, Some("restarting".into())),
            (Some(t), _) if t.exit_code == 0 && t.reason.is_empty() => (UpdateStatus::Ok, None),
            (Some(t), _) => (UpdateStatus::Error, Some(if t.reason.is_empty() { format!("exit code {}", t.exit_code) } else { t.reason.clone() })),
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
            (Some(t), _) if t.reason == STOPPED_REASON => (RuntimeStatus::Pending, Some("restarting".into())),
            (Some(t), _) => (
                RuntimeStatus::Error,
                Some(if t.reason.is_empty() { format!("server exited with code {}", t.exit_code) } else { t.reason.clone() }),
            ),
            (None, Some(w)) => (RuntimeStatus::Pending, Some(w.reason.clone())),
            (None, None) => (RuntimeStatus::Pending, None),
        },
    }
}

fn condition(type_: &str, ok: bool, reason: &str, message: &str, previous: &[UIResourceCondition]) -> UIResourceCondition {
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

/// Computes a resource's status from its Cmds.
pub fn summarize(name: &str, cmds: &[Cmd], previous: &UIResourceStatus) -> UIResourceStatus {
    let find = |suffix: &str| cmds.iter().find(|c| c.name_any() == format!("{name}:{suffix}"));
    let update = find("update");
    let serve = find("serve");
    let (update_status, update_why) = update_status(update.map(|c| c.status.clone().unwrap_or_default()).as_ref());
    let (runtime, runtime_why) = runtime_status(serve.map(|c| c.status.clone().unwrap_or_default()).as_ref());
    let update_ok = matches!(update_status, UpdateStatus::Ok | UpdateStatus::NotApplicable);
    let runtime_ok = matches!(runtime, RuntimeStatus::Ok | RuntimeStatus::NotApplicable);
    let ready = update_ok && runtime_ok && (update.is_some() || serve.is_some());
    let failed = update_status == UpdateStatus::Error || runtime == RuntimeStatus::Error;
    let message = update_why.clone().or(runtime_why.clone()).unwrap_or_default();
    let waiting_cmd = [update, serve]
        .into_iter()
        .flatten()
        .find(|c| c.status.as_ref().is_some_and(|s| s.waiting.is_some()));
    let waiting = waiting_cmd.map(|c| UIResourceStateWaiting {
        reason: c.status.as_ref().and_then(|s| s.waiting.as_ref()).map(|w| w.reason.clone()).unwrap_or_default(),
        on: vec![UIResourceStateWaitingOnRef {
            group: "tilt.dev".into(),
            api_version: "v1alpha1".into(),
            kind: "Cmd".into(),
            name: c.name_any(),
        }],
    });
    let mine: Vec<&Cmd> = [update, serve].into_iter().flatten().collect();
    let is_disabled = |c: &Cmd| c.status.as_ref().and_then(|s| s.disable_status.as_ref()).is_some_and(|d| d.disabled);
    let disabled_count = mine.iter().filter(|c| is_disabled(c)).count() as i32;
    let disabled = !mine.is_empty() && disabled_count as usize == mine.len();
    let mut sources: Vec<DisableSource> = Vec::new();
    for source in mine.iter().filter_map(|c| c.spec.disable_source.clone()) {
        if !sources.contains(&source) {
            sources.push(source);
        }
    }
    let disable_status = DisableResourceStatus {
        enabled_count: mine.len() as i32 - disabled_count,
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
    } else if update.is_none() && serve.is_none() {
        "NoWork"
    } else {
        "InProgress"
    };
    UIResourceStatus {
        update_status: Some(update_status),
        runtime_status: Some(runtime),
        waiting,
        last_deploy_time: update
            .and_then(|c| c.status.as_ref()?.terminated.as_ref()?.finished_at.clone())
            .or_else(|| serve.and_then(|c| c.status.as_ref()?.running.as_ref()?.started_at.clone())),
        disable_status,
        conditions: vec![
            condition("Ready", ready, reason, &message, &previous.conditions),
            condition("UpToDate", update_ok, reason, update_why.as_deref().unwrap_or(""), &previous.conditions),
        ],
        ..previous.clone()
    }
}

/// Recomputes one UIResource's status.
pub async fn reconcile(res: Arc<UIResource>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let name = res.name_any();
    let cmds: Api<Cmd> = Api::all(ctx.client.clone());
    let mine = cmds.list(&kube::api::ListParams::default().labels(&format!("{RESOURCE_LABEL}={name}"))).await?.items;
    let previous = res.status.clone().unwrap_or_default();
    let status = summarize(&name, &mine, &previous);
    if status == previous {
        return Ok(Action::await_change());
    }
    let api: Api<UIResource> = Api::all(ctx.client.clone());
    let patch = json!({"apiVersion": tilt_apis::API_VERSION, "kind": "UIResource", "status": status});
    match api.patch_status(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&patch)).await {
        Ok(_) => Ok(Action::await_change()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

fn error_policy(_r: Arc<UIResource>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(%err, "UIResource reconcile failed");
    Action::requeue(Duration::from_millis(500))
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(client: Client, shutdown: CancellationToken) {
    let api: Api<UIResource> = Api::all(client.clone());
    Controller::new(api, watcher::Config::default())
        .watches(Api::<Cmd>::all(client.clone()), watcher::Config::default(), |cmd| {
            cmd.labels().get(RESOURCE_LABEL).map(|r| ObjectRef::<UIResource>::new(r)).into_iter()
        })
        .graceful_shutdown_on(async move { shutdown.cancelled().await })
        .run(reconcile, error_policy, Arc::new(Ctx { client }))
        .for_each(|_| async {})
        .await;
}
