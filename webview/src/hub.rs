//! `Hub`: the objects every open page sees (UISession, UIResources, UIButtons, Clusters), kept from one
//! watch per kind and shared by all sockets.
//!
//! Every change gets the next revision number; a socket remembers the revision it last sent and asks for
//! what is newer. A deleted object stays as a tombstone so a socket can send its deletion stub; when the
//! tombstones are pruned, a socket that is further behind than the oldest pruned one gets a complete view.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use tilt_apis::{Cluster, UIButton, UIResource, UISession};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The kinds a page shows, in the order of [`ViewKind::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewKind {
    /// `uiSession` (one object).
    UISession,
    /// `uiResources`.
    UIResource,
    /// `uiButtons`.
    UIButton,
    /// `clusters`.
    Cluster,
}

impl ViewKind {
    /// Every kind.
    pub const ALL: [ViewKind; 4] = [ViewKind::UISession, ViewKind::UIResource, ViewKind::UIButton, ViewKind::Cluster];

    fn index(self) -> usize {
        self as usize
    }

    fn api_resource(self) -> ApiResource {
        match self {
            ViewKind::UISession => ApiResource::erase::<UISession>(&()),
            ViewKind::UIResource => ApiResource::erase::<UIResource>(&()),
            ViewKind::UIButton => ApiResource::erase::<UIButton>(&()),
            ViewKind::Cluster => ApiResource::erase::<Cluster>(&()),
        }
    }

    /// The `apiVersion` and `kind` of the objects.
    fn type_meta(self) -> (&'static str, &'static str) {
        let kind = match self {
            ViewKind::UISession => "UISession",
            ViewKind::UIResource => "UIResource",
            ViewKind::UIButton => "UIButton",
            ViewKind::Cluster => "Cluster",
        };
        (tilt_apis::API_VERSION, kind)
    }
}

/// One object, or the tombstone of a deleted one.
#[derive(Clone)]
struct Entry {
    rev: u64,
    object: Option<Arc<Value>>,
    /// When a tombstone's object was deleted.
    deleted_at: Timestamp,
}

/// Tombstones kept per kind before the oldest are pruned.
const MAX_TOMBSTONES: usize = 2048;

#[derive(Default)]
struct Inner {
    rev: u64,
    kinds: [BTreeMap<String, Entry>; 4],
    listed: [bool; 4],
    /// Sockets that last sent a revision below this missed a pruned tombstone.
    pruned_rev: u64,
}

/// What changed since a revision: each kind's changed objects, deleted ones as stubs.
#[derive(Debug, Default)]
pub struct Delta {
    /// Per kind (in [`ViewKind::ALL`] order), whole objects or deletion stubs, sorted by name.
    pub objects: [Vec<Arc<Value>>; 4],
    /// The revision this delta brings a socket to.
    pub rev: u64,
    /// The socket is too far behind for a delta and needs a complete view.
    pub resync: bool,
}

/// The shared view state.
pub struct Hub {
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub { inner: Mutex::new(Inner::default()), changed: watch::channel(0).0 }
    }
}

fn name_of(object: &Value) -> Option<String> {
    object["metadata"]["name"].as_str().map(String::from)
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A receiver that wakes whenever the revision moves.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Whether every kind has been listed once.
    pub fn listed(&self) -> bool {
        self.lock().listed.iter().all(|l| *l)
    }

    /// Stores `object` (of `kind`) if it differs from what is stored.
    pub fn apply(&self, kind: ViewKind, mut object: Value) {
        let Some(name) = name_of(&object) else { return };
        if let Some(meta) = object["metadata"].as_object_mut() {
            meta.remove("managedFields");
        }
        let (api_version, k) = kind.type_meta();
        object["apiVersion"] = json!(api_version);
        object["kind"] = json!(k);
        let rev = {
            let mut inner = self.lock();
            let map = &inner.kinds[kind.index()];
            if map.get(&name).and_then(|e| e.object.as_deref()) == Some(&object) {
                return;
            }
            inner.rev += 1;
            let rev = inner.rev;
            inner.kinds[kind.index()]
                .insert(name, Entry { rev, object: Some(Arc::new(object)), deleted_at: Timestamp::now() });
            rev
        };
        self.changed.send_replace(rev);
    }

    /// Marks `name` (of `kind`) deleted.
    pub fn delete(&self, kind: ViewKind, name: &str) {
        let rev = {
            let mut inner = self.lock();
            if inner.kinds[kind.index()].get(name).is_none_or(|e| e.object.is_none()) {
                return;
            }
            inner.rev += 1;
            let rev = inner.rev;
            inner.kinds[kind.index()]
                .insert(name.to_string(), Entry { rev, object: None, deleted_at: Timestamp::now() });
            prune(&mut inner, kind);
            rev
        };
        self.changed.send_replace(rev);
    }

    /// Replaces `kind`'s objects with a fresh list (a watch's initial list or re-list).
    pub fn replace(&self, kind: ViewKind, objects: Vec<Value>) {
        let names: std::collections::HashSet<String> = objects.iter().filter_map(name_of).collect();
        let gone: Vec<String> = {
            let inner = self.lock();
            inner.kinds[kind.index()]
                .iter()
                .filter(|(n, e)| e.object.is_some() && !names.contains(*n))
                .map(|(n, _)| n.clone())
                .collect()
        };
        for name in gone {
            self.delete(kind, &name);
        }
        for object in objects {
            self.apply(kind, object);
        }
        let rev = {
            let mut inner = self.lock();
            inner.listed[kind.index()] = true;
            inner.rev
        };
        self.changed.send_replace(rev);
    }

    /// Every live object per kind, sorted by name, and the current revision.
    pub fn all(&self) -> ([Vec<Arc<Value>>; 4], u64) {
        let inner = self.lock();
        let objects = std::array::from_fn(|i| inner.kinds[i].values().filter_map(|e| e.object.clone()).collect());
        (objects, inner.rev)
    }

    /// What changed after revision `since`.
    pub fn since(&self, since: u64) -> Delta {
        let inner = self.lock();
        if since < inner.pruned_rev {
            return Delta { rev: inner.rev, resync: true, ..Delta::default() };
        }
        let objects = std::array::from_fn(|i| {
            inner.kinds[i]
                .iter()
                .filter(|(_, e)| e.rev > since)
                .map(|(name, e)| match &e.object {
                    Some(o) => o.clone(),
                    None => Arc::new(deletion_stub(ViewKind::ALL[i], name, e.deleted_at)),
                })
                .collect()
        });
        Delta { objects, rev: inner.rev, resync: false }
    }
}

/// What a page gets for a deleted object: its name and when it was deleted.
fn deletion_stub(kind: ViewKind, name: &str, at: Timestamp) -> Value {
    let (api_version, k) = kind.type_meta();
    json!({
        "apiVersion": api_version,
        "kind": k,
        "metadata": {"name": name, "deletionTimestamp": at.round(jiff::Unit::Second).unwrap_or(at).to_string()},
    })
}

/// Drops the oldest tombstones of `kind` beyond [`MAX_TOMBSTONES`].
fn prune(inner: &mut Inner, kind: ViewKind) {
    let map = &mut inner.kinds[kind.index()];
    let mut tombstones: Vec<(u64, String)> =
        map.iter().filter(|(_, e)| e.object.is_none()).map(|(n, e)| (e.rev, n.clone())).collect();
    if tombstones.len() <= MAX_TOMBSTONES {
        return;
    }
    tombstones.sort();
    let excess = tombstones.len() - MAX_TOMBSTONES / 2;
    for (rev, name) in tombstones.into_iter().take(excess) {
        map.remove(&name);
        inner.pruned_rev = inner.pruned_rev.max(rev);
    }
}

/// Keeps `hub` in step with the API until `shutdown`: one watch per kind.
pub async fn follow(hub: Arc<Hub>, client: Client, shutdown: CancellationToken) {
    let watches = ViewKind::ALL.map(|kind| follow_kind(hub.clone(), client.clone(), kind));
    tokio::select! {
        _ = futures::future::join_all(watches) => {}
        _ = shutdown.cancelled() => {}
    }
}

async fn follow_kind(hub: Arc<Hub>, client: Client, kind: ViewKind) {
    let ar = kind.api_resource();
    let api: Api<DynamicObject> = Api::all_with(client, &ar);
    let mut events = watcher(api, watcher::Config::default()).default_backoff().boxed();
    let mut listing: Vec<Value> = Vec::new();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(e) => e,
            Err(err) => {
                tracing::debug!(?err, ?kind, "web view watch error; retrying");
                continue;
            }
        };
        let to_value = |o: DynamicObject| serde_json::to_value(o).unwrap_or(Value::Null);
        match event {
            watcher::Event::Init => listing.clear(),
            watcher::Event::InitApply(o) => listing.push(to_value(o)),
            watcher::Event::InitDone => hub.replace(kind, std::mem::take(&mut listing)),
            watcher::Event::Apply(o) => hub.apply(kind, to_value(o)),
            watcher::Event::Delete(o) => {
                if let Some(name) = o.metadata.name.as_deref() {
                    hub.delete(kind, name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(name: &str, v: i64) -> Value {
        json!({"metadata": {"name": name, "managedFields": [{}]}, "status": {"v": v}})
    }

    #[test]
    fn deltas_carry_changed_objects_and_deletion_stubs() {
        let hub = Hub::default();
        hub.replace(ViewKind::UIResource, vec![obj("a", 1), obj("b", 1)]);
        let (all, rev) = hub.all();
        assert_eq!(all[1].len(), 2);
        assert!(all[1][0]["metadata"].get("managedFields").is_none(), "managedFields are dropped");
        assert_eq!(all[1][0]["kind"], "UIResource");

        hub.apply(ViewKind::UIResource, obj("a", 1));
        assert_eq!(hub.since(rev).objects[1].len(), 0, "an unchanged object is no change");
        hub.apply(ViewKind::UIResource, obj("a", 2));
        hub.delete(ViewKind::UIResource, "b");
        let d = hub.since(rev);
        assert_eq!(d.objects[1].len(), 2);
        assert_eq!(d.objects[1][0]["status"]["v"], 2);
        assert_eq!(d.objects[1][1]["metadata"]["name"], "b");
        assert!(d.objects[1][1]["metadata"]["deletionTimestamp"].is_string());
        assert!(d.objects[1][1].get("status").is_none());
        assert!(hub.since(d.rev).objects.iter().all(Vec::is_empty));

        // A re-list without `a` deletes it.
        hub.replace(ViewKind::UIResource, vec![]);
        let d2 = hub.since(d.rev);
        assert_eq!(d2.objects[1].len(), 1);
        assert!(hub.all().0[1].is_empty());
    }

    #[test]
    fn a_socket_behind_pruned_tombstones_resyncs() {
        let hub = Hub::default();
        hub.replace(ViewKind::UIButton, (0..MAX_TOMBSTONES + 1).map(|i| obj(&format!("b{i}"), 0)).collect());
        let (_, rev) = hub.all();
        for i in 0..MAX_TOMBSTONES + 1 {
            hub.delete(ViewKind::UIButton, &format!("b{i}"));
        }
        assert!(hub.since(rev).resync);
        let (_, now) = hub.all();
        assert!(!hub.since(now).resync);
    }
}
