//! The one way a controller runs: a [`Reconciler`] says what to do for one object; [`Setup`] wires it to the
//! shared informers and runs it. The skeleton owns what every controller needs and none should write again:
//!
//! - **Triggers**: the controller's own objects, objects of other kinds mapped to the objects that need them
//!   ([`Setup::watches`]), and references through a [`ReferenceIndex`] ([`Setup::referenced`]).
//! - **Per-object state and the live-object check**: what a controller keeps for an object (a process, a log
//!   stream) lives in a slot locked while a reconcile or a delete works on it. Under that lock the reconcile
//!   checks that the object still exists (same UID, not being deleted), so a delete handled just before a
//!   reconcile takes the lock never leaves behind something nothing will stop. Slots of deleted objects are
//!   dropped.
//! - **Deletes**: kube-runtime never reconciles a deleted object; the skeleton hears deletes on the informer
//!   and has the reconciler [`Reconciler::forget`] the object's state, each delete in its own task, so N
//!   stubborn processes take one grace period, not N.
//! - **Errors**: a failed reconcile is retried with exponential backoff (200 ms doubling, capped at 30 s) and
//!   logged once per change of error, not once per attempt; a success resets both.
//! - **Shutdown**: in-flight reconciles finish, then every object's state is forgotten concurrently.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use tokio::sync::OwnedMutexGuard;
use tokio_util::sync::CancellationToken;

use super::index::{Reference, ReferenceIndex};
use super::informer::{Change, Informers, Kind};

/// Why a reconciler must let go of an object's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Gone {
    /// The object was deleted (or replaced by another object of the same name): undo what was made for it.
    Deleted,
    /// Tilt is shutting down: stop what runs, quickly.
    Shutdown,
}

/// What a controller does for one object of its kind.
pub(crate) trait Reconciler: Send + Sync + Sized + 'static {
    /// The kind it reconciles.
    type K: Kind;
    /// What it keeps for one object between reconciles (a process, a task); `()` when nothing.
    type State: Send + 'static;
    /// Why a reconcile failed.
    type Error: std::error::Error + Send + Sync + 'static;
    /// Its name in logs.
    const NAME: &'static str;
    /// Whether reconciles see objects that are being deleted (a controller with a finalizer of its own);
    /// otherwise such an object's state is forgotten as if it were gone.
    const SEES_DELETING: bool = false;

    /// Brings the world in line with `obj` (the newest stored version, alive under the slot lock), keeping in
    /// `state` what it must remember. Idempotent: it may run any number of times for the same object.
    fn reconcile(
        &self,
        obj: Arc<Self::K>,
        state: &mut Option<Self::State>,
    ) -> impl Future<Output = Result<Action, Self::Error>> + Send;

    /// Lets go of the state of an object that is gone or of everything at shutdown; returns once done.
    fn forget(&self, state: Self::State, why: Gone) -> impl Future<Output = ()> + Send {
        let _ = why;
        drop(state);
        async {}
    }
}

type Slot<S> = Arc<tokio::sync::Mutex<Option<(String, S)>>>;

/// The first retry delay after a failed reconcile, and the longest.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(30));

/// The delay before retry number `failures` (1 for the first).
pub(crate) fn backoff(failures: u32) -> Duration {
    BACKOFF.0.saturating_mul(1u32 << failures.saturating_sub(1).min(16)).min(BACKOFF.1)
}

/// The reconciler with the slots of its objects and their failures.
struct Table<R: Reconciler> {
    reconciler: Arc<R>,
    store: Store<R::K>,
    slots: Mutex<HashMap<String, Slot<R::State>>>,
    /// Consecutive failures and the last error of each failing object.
    failures: Mutex<HashMap<String, (u32, String)>>,
}

impl<R: Reconciler> Table<R> {
    fn slot(&self, name: &str) -> Slot<R::State> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).entry(name.to_string()).or_default().clone()
    }

    /// Drops the slot of `name` if it is empty and nobody else holds it (a new holder needs the map lock).
    fn release(&self, name: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.get(name).is_some_and(|s| Arc::strong_count(s) == 1 && s.try_lock().is_ok_and(|t| t.is_none())) {
            slots.remove(name);
        }
    }

    /// Forgets what the slot holds if it is for the object with `uid` (any when `None`).
    async fn forget_in(&self, slot: &mut OwnedMutexGuard<Option<(String, R::State)>>, uid: Option<&str>, why: Gone) {
        if let Some((_, state)) = slot.take_if(|(u, _)| uid.is_none_or(|uid| uid == u)) {
            self.reconciler.forget(state, why).await;
        }
    }

    async fn reconcile(self: Arc<Self>, obj: Arc<R::K>) -> Result<Action, R::Error> {
        let name = obj.name_any();
        let mut slot = self.slot(&name).lock_owned().await;
        let uid = obj.uid().unwrap_or_default();
        let current = self.store.get(&ObjectRef::from_obj(&*obj)).filter(|o| o.uid().unwrap_or_default() == uid);
        let live = current.filter(|o| R::SEES_DELETING || o.meta().deletion_timestamp.is_none());
        let Some(live) = live else {
            self.forget_in(&mut slot, Some(&uid), Gone::Deleted).await;
            drop(slot);
            self.release(&name);
            return Ok(Action::await_change());
        };
        // State kept for another object of the same name belongs to an object that is gone.
        if slot.as_ref().is_some_and(|(u, _)| *u != uid) {
            self.forget_in(&mut slot, None, Gone::Deleted).await;
        }
        let mut state = slot.take().map(|(_, s)| s);
        let result = self.reconciler.reconcile(live, &mut state).await;
        *slot = state.map(|s| (uid, s));
        drop(slot);
        self.release(&name);
        if result.is_ok() && self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(&name).is_some() {
            tracing::info!(controller = R::NAME, %name, "reconcile succeeded again");
        }
        result
    }

    /// The object `name` with `uid` is gone.
    async fn deleted(self: Arc<Self>, name: String, uid: Option<String>) {
        let mut slot = self.slot(&name).lock_owned().await;
        self.forget_in(&mut slot, uid.as_deref(), Gone::Deleted).await;
        drop(slot);
        self.release(&name);
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(&name);
    }

    fn error_policy(&self, obj: &R::K, err: &R::Error) -> Action {
        let name = obj.name_any();
        let text = err.to_string();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let entry = failures.entry(name.clone()).or_insert((0, String::new()));
        entry.0 = entry.0.saturating_add(1);
        let delay = backoff(entry.0);
        if entry.1 != text {
            tracing::warn!(controller = R::NAME, %name, err = %text, retry_in = ?delay, "reconcile failed");
            entry.1 = text;
        } else {
            tracing::debug!(controller = R::NAME, %name, err = %text, attempt = entry.0, "reconcile failed again");
        }
        Action::requeue(delay)
    }

    async fn stop_all(&self) {
        let slots: Vec<Slot<R::State>> =
            self.slots.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        futures::future::join_all(slots.into_iter().map(|slot| async move {
            let mut slot = slot.lock_owned().await;
            self.forget_in(&mut slot, None, Gone::Shutdown).await;
        }))
        .await;
    }
}

/// A controller being wired: its reconciler, triggers and settings.
pub(crate) struct Setup<R: Reconciler> {
    reconciler: Arc<R>,
    informers: Arc<Informers>,
    index: Option<Arc<ReferenceIndex<R::K>>>,
    triggers: Vec<BoxStream<'static, ObjectRef<R::K>>>,
    config: Config,
}

impl<R: Reconciler> Setup<R> {
    /// A controller running `reconciler` over the objects of its kind in `informers`.
    pub(crate) fn new(reconciler: Arc<R>, informers: &Arc<Informers>) -> Self {
        Setup { reconciler, informers: informers.clone(), index: None, triggers: Vec::new(), config: Config::default() }
    }

    /// Indexes what each object refers to with `refs`, for [`Setup::referenced`].
    pub(crate) fn index(mut self, refs: fn(&R::K) -> Vec<Reference>) -> Self {
        self.index = Some(Arc::new(ReferenceIndex::new(refs, self.informers.interest())));
        self
    }

    /// Reconciles what `mapper` names whenever an object of kind `O` changes or goes.
    pub(crate) fn watches<O: Kind, I>(mut self, mapper: impl Fn(&O) -> I + Send + 'static) -> Self
    where
        I: IntoIterator<Item = ObjectRef<R::K>>,
    {
        let changes = self.informers.informer::<O>().subscribe();
        self.triggers.push(
            changes
                .flat_map(move |c| futures::stream::iter(mapper(c.object()).into_iter().collect::<Vec<_>>()))
                .boxed(),
        );
        self
    }

    /// Reconciles the objects that refer to an object of kind `O` (by the [`Setup::index`]) when it changes.
    pub(crate) fn referenced<O: Kind>(self) -> Self {
        let index = self.index.clone().expect("Setup::index before Setup::referenced");
        let kind = kind_name::<O>();
        self.watches::<O, _>(move |o| index.referrers(kind, &o.name_any()))
    }

    /// Also reconciles each object named on `requests` (work that finished and asks for another look).
    pub(crate) fn reconcile_on(mut self, requests: impl Stream<Item = ObjectRef<R::K>> + Send + 'static) -> Self {
        self.triggers.push(requests.boxed());
        self
    }

    /// Waits `debounce` after a trigger before reconciling, so a burst of changes is reconciled once.
    pub(crate) fn debounce(mut self, debounce: Duration) -> Self {
        self.config = self.config.debounce(debounce);
        self
    }

    /// Runs the controller until `shutdown` is cancelled; then lets in-flight reconciles finish and forgets
    /// every object's state.
    pub(crate) async fn run(self, shutdown: CancellationToken) {
        let informer = self.informers.informer::<R::K>();
        let store = informer.store();
        let table = Arc::new(Table {
            reconciler: self.reconciler,
            store: store.clone(),
            slots: Mutex::default(),
            failures: Mutex::default(),
        });
        let index = self.index;
        let (referrers_tx, referrers_rx) = futures::channel::mpsc::unbounded::<ObjectRef<R::K>>();
        let on_change = table.clone();
        let kind = kind_name::<R::K>();
        let own = informer.subscribe().filter_map(move |change| {
            let name = change.object().name_any();
            if let Some(index) = &index {
                // Objects referring to this one (a Cmd's startOn naming another Cmd) look again too.
                for r in index.referrers(kind, &name) {
                    let _ = referrers_tx.unbounded_send(r);
                }
                index.update(&name, matches!(change, Change::Applied(_)).then(|| &**change.object()));
            }
            let out = match change {
                Change::Applied(o) => Some(o),
                Change::Deleted(o) => {
                    tokio::spawn(on_change.clone().deleted(name, o.uid()));
                    None
                }
            };
            std::future::ready(out)
        });
        let mut controller =
            Controller::for_shared_stream(own, store).with_config(self.config).reconcile_on(referrers_rx);
        for t in self.triggers {
            controller = controller.reconcile_on(t);
        }
        let stop = shutdown.clone();
        let reconcile_table = table.clone();
        controller
            .graceful_shutdown_on(async move { stop.cancelled().await })
            .run(
                move |obj, t: Arc<Table<R>>| t.reconcile(obj),
                |obj, err, t: Arc<Table<R>>| t.error_policy(&obj, err),
                reconcile_table,
            )
            .for_each(|result| {
                if let Err(err) = result {
                    report(R::NAME, &err);
                }
                futures::future::ready(())
            })
            .await;
        table.stop_all().await;
    }
}

/// The `kind` of `K` as a static name (derived kinds have one; any other is leaked once per call site).
fn kind_name<K: Kind>() -> &'static str {
    match K::kind(&()) {
        std::borrow::Cow::Borrowed(k) => k,
        std::borrow::Cow::Owned(k) => Box::leak(k.into_boxed_str()),
    }
}

/// Logs what a controller's run yields other than success; reconcile failures are logged by the error policy.
fn report<E: std::error::Error, Q: std::error::Error>(controller: &str, err: &kube::runtime::controller::Error<E, Q>) {
    use kube::runtime::controller::Error as E;
    match err {
        E::ReconcilerFailed(..) => {}
        E::ObjectNotFound(obj) => tracing::debug!(controller, %obj, "object gone before its reconcile"),
        E::QueueError(err) => tracing::warn!(controller, %err, "watch failed"),
        E::RunnerError(err) => tracing::warn!(controller, %err, "controller runner failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(2), Duration::from_millis(400));
        assert_eq!(backoff(5), Duration::from_millis(3200));
        assert_eq!(backoff(9), Duration::from_secs(30));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(30));
    }
}
