//! The Session controller: one Session per `tilt up`/`tilt ci`, whose status lists every target (a Cmd
//! of a resource) and, under the `ci` exit condition, says when the run is done and why it failed —
//! which is all `tilt ci` waits for.
//!
//! It reads Tiltfiles, UIResources and Cmds from stores filled by its own watches, so a reconcile costs
//! no request but the status write; only the claim that a `ci` run succeeded is checked against the API
//! first, since the stores of different kinds may lag one another.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource, ResourceExt};
use tilt_apis::{
    CMD_STOPPED_REASON, Cmd, ExitCondition, RuntimeStatus, Session, SessionStatus, Target, TargetState,
    TargetStateActive, TargetStateDisabled, TargetStateTerminated, TargetStateWaiting, TargetType, Tiltfile,
    UIResource, UpdateStatus,
};
use tokio_util::sync::CancellationToken;

use crate::runtime::{Informers, Reconciler, Setup};
use crate::status::apply_status;

/// The field manager of this controller's status writes.
pub const MANAGER: &str = "tilt-session-controller";
/// The name of the session of this `tilt up`, as in Go Tilt.
pub const SESSION_NAME: &str = "Tiltfile";

/// Errors of one reconcile; retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API refused a read or write.
    #[error("Session controller API call failed: {0}")]
    Api(#[from] kube::Error),
}

/// What a reconcile needs.
pub struct Ctx {
    /// The API client.
    pub client: Client,
    /// Every Tiltfile, UIResource and Cmd, as the controller's watches last saw them.
    pub stores: Stores,
    informers: Arc<Informers>,
}

/// The objects a Session summarizes.
pub struct Stores {
    tiltfiles: Store<Tiltfile>,
    resources: Store<UIResource>,
    cmds: Store<Cmd>,
}

impl Ctx {
    /// Waits until every store has listed once: before that, a missing object would look absent.
    async fn ready(&self) {
        self.informers.ready::<Tiltfile>().await;
        self.informers.ready::<UIResource>().await;
        self.informers.ready::<Cmd>().await;
    }
}

fn target(cmd: &Cmd) -> Option<Target> {
    let name = cmd.name_any();
    let resource = tilt_apis::resource_name_of(cmd.meta())?.to_owned();
    let server = name.ends_with(":serve");
    let s = cmd.status.clone().unwrap_or_default();
    let state = if s.disable_status.as_ref().is_some_and(|d| d.disabled) {
        TargetState { disabled: Some(TargetStateDisabled {}), ..Default::default() }
    } else if let Some(r) = &s.running {
        TargetState {
            active: Some(TargetStateActive { start_time: r.started_at.clone(), ready: s.ready, last_ready_time: None }),
            ..Default::default()
        }
    } else if let Some(t) = s.terminated.as_ref().filter(|t| t.reason != CMD_STOPPED_REASON) {
        let failed = t.exit_code != 0 || !t.reason.is_empty() || server;
        TargetState {
            terminated: Some(TargetStateTerminated {
                start_time: t.started_at.clone(),
                finish_time: t.finished_at.clone(),
                error: if failed {
                    if t.reason.is_empty() { format!("exited with code {}", t.exit_code) } else { t.reason.clone() }
                } else {
                    String::new()
                },
                grace_status: None,
            }),
            ..Default::default()
        }
    } else {
        let reason = s.waiting.map(|w| w.reason).unwrap_or_else(|| "waiting to start".into());
        TargetState { waiting: Some(TargetStateWaiting { wait_reason: reason }), ..Default::default() }
    };
    Some(Target {
        name,
        type_: if server { TargetType::Server } else { TargetType::Job },
        resources: vec![resource],
        state,
    })
}

/// Ready, or disabled (a disabled resource does not hold up `tilt ci`).
fn is_done(r: &UIResource) -> bool {
    r.status.as_ref().is_some_and(|s| {
        s.disable_status.state == "Disabled" || s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// Why a resource failed (an image build or deploy error, a crashing pod), from its summary.
fn failure(r: &UIResource) -> Option<(String, String)> {
    let s = r.status.as_ref()?;
    let failed = s.update_status == Some(UpdateStatus::Error) || s.runtime_status == Some(RuntimeStatus::Error);
    let ready = s.conditions.iter().find(|c| c.type_ == "Ready")?;
    (failed && s.disable_status.state != "Disabled").then(|| (r.name_any(), ready.message.clone()))
}

/// Computes the session status from the Tiltfile, the resources and their Cmds.
pub fn summarize(
    session: &Session,
    tiltfiles: &[Arc<Tiltfile>],
    resources: &[Arc<UIResource>],
    cmds: &[Arc<Cmd>],
) -> SessionStatus {
    let mut targets: Vec<Target> = cmds.iter().filter_map(|c| target(c)).collect();
    targets.sort_by(|a, b| a.name.cmp(&b.name));
    let previous = session.status.clone().unwrap_or_default();
    let tiltfile_error = tiltfiles
        .iter()
        .filter_map(|t| t.status.as_ref()?.terminated.as_ref().map(|term| (t.name_any(), term.error.clone())))
        .find(|(_, e)| !e.is_empty());
    let loaded = tiltfiles.iter().all(|t| t.status.as_ref().is_some_and(|s| s.terminated.is_some()));
    let target_error = targets.iter().find_map(|t| {
        t.state
            .terminated
            .as_ref()
            .filter(|term| !term.error.is_empty())
            .map(|term| (t.resources[0].clone(), term.error.clone()))
    });
    let (done, error) = match session.spec.exit_condition {
        ExitCondition::Manual => (false, String::new()),
        ExitCondition::Ci => {
            if let Some((name, e)) = tiltfile_error {
                (true, format!("{name}: {e}"))
            } else if let Some((resource, e)) = target_error {
                (true, format!("{resource}: {e}"))
            } else if let Some((resource, e)) = resources.iter().find_map(|r| failure(r)) {
                (true, format!("{resource}: {e}"))
            } else if loaded && !tiltfiles.is_empty() && resources.iter().all(|r| is_done(r)) {
                (true, String::new())
            } else {
                (false, String::new())
            }
        }
    };
    SessionStatus { targets, done, error, ..previous }
}

/// Every `K`, from the API.
async fn list<K>(client: &Client) -> Result<Vec<Arc<K>>, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    Ok(Api::<K>::all(client.clone()).list(&ListParams::default()).await?.items.into_iter().map(Arc::new).collect())
}

impl Reconciler for Ctx {
    type K = Session;
    type State = ();
    type Error = Error;
    const NAME: &'static str = "session";

    async fn reconcile(&self, session: Arc<Session>, _: &mut Option<()>) -> Result<Action, Error> {
        reconcile(session, self).await
    }
}

/// Recomputes the session status.
async fn reconcile(session: Arc<Session>, ctx: &Ctx) -> Result<Action, Error> {
    let s = &ctx.stores;
    ctx.ready().await;
    let previous = session.status.clone().unwrap_or_default();
    let mut status = summarize(&session, &s.tiltfiles.state(), &s.resources.state(), &s.cmds.state());
    if status.done && status.error.is_empty() && !previous.done {
        // "Every resource is ready" must hold for all of them: a resource just created may not have
        // reached its store yet while the Tiltfile's status already has, so the API has the last word.
        let c = &ctx.client;
        status = summarize(&session, &list(c).await?, &list(c).await?, &list(c).await?);
    }
    if status == previous {
        return Ok(Action::await_change());
    }
    apply_status(&Api::<Session>::all(ctx.client.clone()), &session.name_any(), MANAGER, &status).await?;
    Ok(Action::await_change())
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(informers: Arc<Informers>, shutdown: CancellationToken) {
    let session = || std::iter::once(ObjectRef::<Session>::new(SESSION_NAME));
    let stores = Stores { tiltfiles: informers.store(), resources: informers.store(), cmds: informers.store() };
    let ctx = Arc::new(Ctx { client: informers.client().clone(), stores, informers: informers.clone() });
    Setup::new(ctx, &informers)
        // A burst of Cmd/UIResource changes is summarized once.
        .debounce(Duration::from_millis(10))
        .watches::<Cmd, _>(move |_| session())
        .watches::<UIResource, _>(move |_| session())
        .watches::<Tiltfile, _>(move |_| session())
        .run(shutdown)
        .await;
}
