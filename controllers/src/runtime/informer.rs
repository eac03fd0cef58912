//! One shared watch per kind ([`Informers`]): every controller that needs a kind's objects reads them from the
//! same in-memory store and hears of their changes from the same watch, instead of opening a watch of its own.
//!
//! An [`Informer`] is started by the first [`Informers::informer`] of its kind. Its task runs kube-runtime's
//! `watcher` (with backoff), applies each event to a reflector [`Store`] and only then hands it to every
//! subscriber, so a subscriber that reacts to a change always finds that change in the store. A subscriber that
//! comes late first hears of every object already stored (as client-go's informers replay adds to a new
//! handler). A re-list replaces the store without delete events for what vanished meanwhile; the informer
//! makes those deletes itself. Stored objects carry no `managedFields`, which no controller reads. Subscribers get bounded channels: a slow one slows the watch, it never makes it
//! grow without bound.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::mpsc;

use super::index::Interest;
use tokio_util::sync::CancellationToken;

/// What a subscriber hears of one object.
#[derive(Debug, Clone)]
pub(crate) enum Change<K> {
    /// The object was created or changed (or was already there when the subscriber came).
    Applied(Arc<K>),
    /// The object is gone; this is its last known state.
    Deleted(Arc<K>),
}

impl<K> Change<K> {
    /// The object the change is about.
    pub(crate) fn object(&self) -> &Arc<K> {
        match self {
            Change::Applied(o) | Change::Deleted(o) => o,
        }
    }
}

/// A kind that informers can watch.
pub(crate) trait Kind:
    Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static
{
}
impl<K> Kind for K where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static
{
}

/// How many changes a subscriber may have waiting before the watch waits for it.
const SUBSCRIBER_BUFFER: usize = 1024;

/// The shared watch of kind `K`: its store and its subscribers.
pub(crate) struct Informer<K: Kind> {
    store: Store<K>,
    /// True once the first list is in the store. (The store's own `wait_until_ready` wakes only the last of
    /// several waiters, and a shared store has many.)
    ready: tokio::sync::watch::Sender<bool>,
    subscribers: Mutex<Vec<mpsc::Sender<Change<K>>>>,
}

impl<K: Kind> Informer<K> {
    /// Every `K` as the watch last saw it.
    pub(crate) fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Returns once the store holds the first list (at once after that): before, a missing object cannot be
    /// told from one not yet seen.
    pub(crate) async fn ready(&self) {
        let mut ready = self.ready.subscribe();
        // The sender lives as long as `self`.
        let _ = ready.wait_for(|r| *r).await;
    }

    /// The changes of every `K` from now on, preceded by an `Applied` for each object already stored.
    pub(crate) fn subscribe(&self) -> impl Stream<Item = Change<K>> + Send + 'static {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        let present = self.store.state();
        // Room for the replay on top of the usual buffer (tokio allocates slots as they fill), so the replay
        // never waits on a receiver nobody reads yet.
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER + present.len());
        for o in present {
            let _ = tx.try_send(Change::Applied(o));
        }
        subscribers.push(tx);
        tokio_stream_from(rx)
    }

    /// Hands `change` to every subscriber, dropping those that went away. The store already holds the change,
    /// so a subscriber that comes meanwhile finds it in its replay.
    async fn publish(&self, change: Change<K>) {
        let subscribers: Vec<mpsc::Sender<Change<K>>> =
            self.subscribers.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut gone = false;
        for s in &subscribers {
            gone |= s.send(change.clone()).await.is_err();
        }
        if gone {
            self.subscribers.lock().unwrap_or_else(|e| e.into_inner()).retain(|s| !s.is_closed());
        }
    }
}

fn tokio_stream_from<T: Send + 'static>(mut rx: mpsc::Receiver<T>) -> impl Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The informers of one `tilt up`, by kind; each started on first use and stopped by `shutdown`.
pub struct Informers {
    client: Client,
    shutdown: CancellationToken,
    /// What the controllers' reference indexes name: the ConfigMaps to keep whole.
    interest: Arc<Interest>,
    by_kind: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Informers {
    /// Informers watching through `client`, until `shutdown` is cancelled.
    pub fn new(client: Client, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Informers { client, shutdown, interest: Arc::default(), by_kind: Mutex::default() })
    }

    /// The references every controller's index counts.
    pub(crate) fn interest(&self) -> Arc<Interest> {
        self.interest.clone()
    }

    /// The object `name` of kind `K`: from the store once it has listed, or from the API when the store keeps
    /// only a stub of it (see [`slim`]).
    pub(crate) async fn get<K: Kind>(&self, name: &str) -> Option<Arc<K>> {
        let informer = self.informer::<K>();
        informer.ready().await;
        let stored = informer.store.get(&ObjectRef::new(name))?;
        if stored.meta().resource_version.is_some() {
            return Some(stored);
        }
        match Api::<K>::all(self.client.clone()).get_opt(&tilt_apis::path_name(name)).await {
            Ok(found) => found.map(Arc::new),
            Err(err) => {
                tracing::warn!(kind = %K::kind(&()), %name, %err, "reading an object the informer keeps as a stub");
                None
            }
        }
    }

    /// The client the informers watch through.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The informer of kind `K`, started if it is the first use of that kind.
    pub(crate) fn informer<K: Kind>(&self) -> Arc<Informer<K>> {
        let mut by_kind = self.by_kind.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = by_kind.get(&TypeId::of::<K>()) {
            return i.clone().downcast::<Informer<K>>().expect("keyed by type");
        }
        let (store, writer) = reflector::store();
        let informer =
            Arc::new(Informer { store, ready: tokio::sync::watch::channel(false).0, subscribers: Mutex::default() });
        by_kind.insert(TypeId::of::<K>(), informer.clone());
        let interest = self.interest.clone();
        tokio::spawn(drive(
            Api::<K>::all(self.client.clone()),
            writer,
            informer.clone(),
            interest,
            self.shutdown.clone(),
        ));
        informer
    }

    /// The store of kind `K` (see [`Informers::informer`]).
    pub(crate) fn store<K: Kind>(&self) -> Store<K> {
        self.informer::<K>().store()
    }

    /// Returns once the store of kind `K` holds its first list (see [`Informer::ready`]).
    pub(crate) async fn ready<K: Kind>(&self) {
        self.informer::<K>().ready().await
    }
}

/// A re-list in progress: what was stored before it began, and what it has listed so far.
type Relist<K> = (HashMap<String, Arc<K>>, Vec<K>);

/// Runs the watch of one kind until `shutdown`.
async fn drive<K: Kind>(
    api: Api<K>,
    mut writer: reflector::store::Writer<K>,
    informer: Arc<Informer<K>>,
    interest: Arc<Interest>,
    shutdown: CancellationToken,
) {
    let kind = K::kind(&());
    let mut events = watcher(api, watcher::Config::default()).default_backoff().boxed();
    // During a (re-)list: what was stored before it began, and what it has listed so far. The store swaps in
    // the list only at its end, so the listed objects are published then, with deletes for what vanished.
    let mut relist: Option<Relist<K>> = None;
    let mut last_error: Option<String> = None;
    loop {
        let event = tokio::select! {
            e = events.next() => e,
            _ = shutdown.cancelled() => return,
        };
        let Some(event) = event else { return };
        let event = match event {
            Ok(e) => {
                if last_error.take().is_some() {
                    tracing::info!(%kind, "watch recovered");
                }
                e
            }
            Err(err) => {
                let text = err.to_string();
                if last_error.as_deref() != Some(&text) {
                    tracing::warn!(%kind, err = %text, "watch failed; retrying with backoff");
                    last_error = Some(text);
                }
                continue;
            }
        };
        let mut event = event;
        // No controller reads managedFields, and they can be larger than the rest of an object.
        match &mut event {
            watcher::Event::Apply(o) | watcher::Event::Delete(o) | watcher::Event::InitApply(o) => {
                o.meta_mut().managed_fields = None;
                slim(o, &interest);
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
        writer.apply_watcher_event(&event);
        match event {
            watcher::Event::Apply(o) => informer.publish(Change::Applied(stored(&informer.store, o))).await,
            watcher::Event::Delete(o) => informer.publish(Change::Deleted(Arc::new(o))).await,
            watcher::Event::Init => {
                let before = informer.store.state().into_iter().map(|o| (o.name_any(), o)).collect();
                relist = Some((before, Vec::new()));
            }
            watcher::Event::InitApply(o) => {
                if let Some((_, listed)) = relist.as_mut() {
                    listed.push(o);
                }
            }
            watcher::Event::InitDone => {
                informer.ready.send_replace(true);
                let Some((before, listed)) = relist.take() else { continue };
                let names: HashSet<String> = listed.iter().map(|o| o.name_any()).collect();
                for o in listed {
                    informer.publish(Change::Applied(stored(&informer.store, o))).await;
                }
                for (name, o) in before {
                    if !names.contains(&name) {
                        informer.publish(Change::Deleted(o)).await;
                    }
                }
            }
        }
    }
}

/// Keeps only a stub (name and UID, no `resourceVersion`) of a ConfigMap no object refers to: any object may
/// be created as a ConfigMap, and only the few named by a `disableSource` are read. [`Informers::get`] reads a
/// stub through the API; the next change of a ConfigMap that has become referenced is kept whole.
fn slim<K: Kind>(o: &mut K, interest: &Interest) {
    let Some(cm) = (o as &mut dyn std::any::Any).downcast_mut::<tilt_apis::ConfigMap>() else { return };
    let name = cm.metadata.name.clone().unwrap_or_default();
    if interest.contains("ConfigMap", &name) {
        return;
    }
    cm.data = Default::default();
    let meta = &mut cm.metadata;
    *meta = kube::api::ObjectMeta {
        name: meta.name.take(),
        uid: meta.uid.take(),
        deletion_timestamp: meta.deletion_timestamp.take(),
        ..Default::default()
    };
}

/// The stored copy of `o` (shared with the store), or `o` itself.
fn stored<K: Kind>(store: &Store<K>, o: K) -> Arc<K> {
    store.get(&ObjectRef::from_obj(&o)).unwrap_or_else(|| Arc::new(o))
}
