//! The in-memory object store: per-kind maps of serialized objects, one global resourceVersion clock, and a
//! bounded per-kind `WatchHistory` so a watch from a recent version replays exactly what followed it.
//!
//! Objects are keyed by namespace and name (`ns/name`, or just `name` for cluster-scoped kinds) and kept as
//! their serialized JSON (plus name, namespace and labels for selectors), so memory per object stays
//! close to its JSON size and a LIST is a concatenation. Each kind has its own lock, held only to check a
//! precondition, stamp the next resourceVersion and swap a pointer — never across I/O.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};

use crate::kind::Registry;

/// One stored object version.
#[derive(Debug)]
pub struct StoredObject {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`; empty for cluster-scoped kinds.
    pub namespace: String,
    /// `metadata.resourceVersion`.
    pub rv: u64,
    /// `metadata.labels`, kept for selectors.
    pub labels: Labels,
    /// The whole object as JSON.
    pub json: Bytes,
}

/// An object's labels, compact: one allocation for the pairs (none when there are none) instead of a
/// `BTreeMap`, whose smallest node takes ~540 bytes even for one label; there is one per stored object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels(Box<[(Box<str>, Box<str>)]>);

impl Labels {
    /// The labels of `object` (`metadata.labels`; a non-string value counts as empty), sorted by key.
    pub fn of(object: &Value) -> Labels {
        let Some(map) = object["metadata"]["labels"].as_object() else { return Labels::default() };
        let mut pairs: Vec<(Box<str>, Box<str>)> =
            map.iter().map(|(k, v)| (k.as_str().into(), v.as_str().unwrap_or_default().into())).collect();
        pairs.sort();
        Labels(pairs.into_boxed_slice())
    }

    /// The value of label `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(key)).ok().map(|i| &*self.0[i].1)
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The labels as key-value pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    /// The labels as a map (what kube-core's selector matches against).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
}

/// `object` serialized, in an allocation of exactly its size: serializing grows the buffer by doubling,
/// and a stored object would otherwise keep up to half of it unused for as long as it lives.
fn to_json(object: &Value) -> Bytes {
    let mut json = serde_json::to_vec(object).expect("JSON values serialize");
    json.shrink_to_fit();
    Bytes::from(json)
}

/// The store key of an object: `ns/name`, or `name` when `namespace` is empty. Names and namespaces never
/// contain `/`, so the objects of one namespace are one contiguous key range.
pub fn object_key(namespace: &str, name: &str) -> String {
    if namespace.is_empty() { name.to_string() } else { format!("{namespace}/{name}") }
}

impl StoredObject {
    /// The store key (see [`object_key`]).
    pub fn key(&self) -> String {
        object_key(&self.namespace, &self.name)
    }

    /// The object parsed back into a JSON value.
    pub fn value(&self) -> Value {
        serde_json::from_slice(&self.json).expect("stored objects are valid JSON")
    }
}

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// The watch event `type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as kept in the history and sent to watchers.
#[derive(Debug)]
pub struct WatchEvent {
    /// The resourceVersion of the change.
    pub rv: u64,
    /// What happened.
    pub kind: EventType,
    /// The object after the change (for a delete: the last state, stamped with the delete's version).
    pub object: Arc<StoredObject>,
    /// The object before the change, for selector transitions.
    pub previous: Option<Arc<StoredObject>>,
}

/// Why a store operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// Create of a name that exists.
    AlreadyExists,
    /// The object does not exist.
    NotFound,
    /// The object's resourceVersion differs from the precondition.
    Conflict,
    /// The asked-for resourceVersion is older than the history kept.
    Expired {
        /// The oldest version a watch can start from.
        oldest: u64,
    },
}

/// A condition the current object must meet for a write to happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// The name must be free (create).
    Absent,
    /// The object must exist, whatever its version.
    Exists,
    /// The object must exist at exactly this version (optimistic concurrency).
    Version(u64),
}

/// One page of a LIST.
pub struct ListPage {
    /// The list's resourceVersion: every change after it is a watch event.
    pub rv: u64,
    /// Matching objects, ordered by key (namespace, then name).
    pub items: Vec<Arc<StoredObject>>,
    /// Whether more matching objects may follow `items`.
    pub more: bool,
}

/// The start of a watch: events to replay, then a live feed.
pub struct WatchStart {
    /// Objects to send as ADDED first (a watch without a version, or `sendInitialEvents`).
    pub initial: Vec<Arc<StoredObject>>,
    /// Events after the asked-for version, to replay in order.
    pub replay: Vec<Arc<WatchEvent>>,
    /// The version the initial set is consistent with.
    pub rv: u64,
    /// Live events; may contain events already replayed (skip by rv).
    pub live: broadcast::Receiver<Arc<WatchEvent>>,
}

/// One change of any kind, for an in-process consumer (the garbage collector): the kind's position in the
/// registry, and the event.
pub type Change = (usize, Arc<WatchEvent>);

/// Where every kind's changes also go, once a consumer asked for them (see [`Store::changes`]).
type ChangeFeed = Arc<OnceLock<mpsc::UnboundedSender<Change>>>;

/// Objects of every kind.
pub struct Store {
    clock: Arc<AtomicU64>,
    /// Keyed by `(group, plural)`.
    kinds: HashMap<(String, String), Arc<KindStore>>,
    changes: ChangeFeed,
}

impl Store {
    /// A store for every kind in `registry`, keeping `history` events per kind for watch replay.
    pub fn new(registry: &Registry, history: usize) -> Self {
        // Versions start above 0 so that a list's version is never the "any version" 0.
        let clock = Arc::new(AtomicU64::new(1));
        let changes = ChangeFeed::default();
        let kinds = registry
            .kinds()
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let store = KindStore::new(clock.clone(), history, i, changes.clone());
                ((k.group.clone(), k.plural.clone()), Arc::new(store))
            })
            .collect();
        Store { clock, kinds, changes }
    }

    /// Every later change of every kind, in each kind's order, as it is committed (unbounded: the consumer
    /// must keep up). Only one consumer: `None` once taken.
    pub fn changes(&self) -> Option<mpsc::UnboundedReceiver<Change>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.changes.set(tx).ok().map(|()| rx)
    }

    /// The store of one kind, by group and plural.
    pub fn kind(&self, group: &str, plural: &str) -> Option<&Arc<KindStore>> {
        self.kinds.get(&(group.to_string(), plural.to_string()))
    }

    /// The latest resourceVersion handed out.
    pub fn current_rv(&self) -> u64 {
        self.clock.load(Ordering::SeqCst)
    }
}

struct KindState {
    objects: BTreeMap<String, Arc<StoredObject>>,
    history: VecDeque<Arc<WatchEvent>>,
    /// Every event with a version above this one is in `history`.
    oldest: u64,
}

/// Objects of one kind, with their watch history.
pub struct KindStore {
    clock: Arc<AtomicU64>,
    limit: usize,
    /// The kind's position in the registry, for [`Change`]s.
    index: usize,
    changes: ChangeFeed,
    state: RwLock<KindState>,
    feed: broadcast::Sender<Arc<WatchEvent>>,
}

impl KindStore {
    fn new(clock: Arc<AtomicU64>, limit: usize, index: usize, changes: ChangeFeed) -> Self {
        let oldest = clock.load(Ordering::SeqCst);
        let (feed, _) = broadcast::channel(1024);
        KindStore {
            clock,
            limit: limit.max(1),
            index,
            changes,
            state: RwLock::new(KindState { objects: BTreeMap::new(), history: VecDeque::new(), oldest }),
            feed,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KindState> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, KindState> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The current object named `name` in `namespace` (empty: cluster-scoped).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<StoredObject>> {
        self.read().objects.get(&object_key(namespace, name)).cloned()
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.read().objects.len()
    }

    /// Whether there are no objects.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn check(state: &KindState, key: &str, pre: Precondition) -> Result<Option<Arc<StoredObject>>, StoreError> {
        let current = state.objects.get(key).cloned();
        match (pre, &current) {
            (Precondition::Absent, Some(_)) => Err(StoreError::AlreadyExists),
            (Precondition::Exists | Precondition::Version(_), None) => Err(StoreError::NotFound),
            (Precondition::Version(v), Some(c)) if c.rv != v => Err(StoreError::Conflict),
            _ => Ok(current),
        }
    }

    fn record(&self, state: &mut KindState, event: WatchEvent) {
        let event = Arc::new(event);
        state.history.push_back(event.clone());
        while state.history.len() > self.limit {
            if let Some(old) = state.history.pop_front() {
                state.oldest = old.rv;
            }
        }
        if let Some(changes) = self.changes.get() {
            // Sent under the kind's lock, so the consumer sees this kind's changes in order.
            let _ = changes.send((self.index, event.clone()));
        }
        // No receivers is fine: nobody is watching.
        let _ = self.feed.send(event);
    }

    /// Writes `object` (with any `metadata.resourceVersion` replaced by the new version) under `namespace`
    /// (empty: cluster-scoped) and `name`.
    pub fn put(
        &self,
        namespace: &str,
        name: &str,
        pre: Precondition,
        mut object: Value,
    ) -> Result<Arc<StoredObject>, StoreError> {
        let labels = Labels::of(&object);
        let key = object_key(namespace, name);
        let mut state = self.write();
        let previous = Self::check(&state, &key, pre)?;
        let rv = self.clock.fetch_add(1, Ordering::SeqCst) + 1;
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let json = to_json(&object);
        let stored =
            Arc::new(StoredObject { name: name.to_string(), namespace: namespace.to_string(), rv, labels, json });
        state.objects.insert(key, stored.clone());
        let kind = if previous.is_some() { EventType::Modified } else { EventType::Added };
        self.record(&mut state, WatchEvent { rv, kind, object: stored.clone(), previous });
        Ok(stored)
    }

    /// Removes `name` of `namespace`; returns its last state stamped with the delete's version.
    pub fn delete(&self, namespace: &str, name: &str, pre: Precondition) -> Result<Arc<StoredObject>, StoreError> {
        let key = object_key(namespace, name);
        let mut state = self.write();
        let previous = Self::check(&state, &key, pre)?.ok_or(StoreError::NotFound)?;
        let rv = self.clock.fetch_add(1, Ordering::SeqCst) + 1;
        let mut object = previous.value();
        object["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        let json = to_json(&object);
        let gone = Arc::new(StoredObject {
            name: name.to_string(),
            namespace: namespace.to_string(),
            rv,
            labels: previous.labels.clone(),
            json,
        });
        state.objects.remove(&key);
        self.record(
            &mut state,
            WatchEvent { rv, kind: EventType::Deleted, object: gone.clone(), previous: Some(previous) },
        );
        Ok(gone)
    }

    /// Up to `limit` objects (0: all) of `namespace` (`None`: every namespace) after the key `start_after`,
    /// in key order, that pass `filter`.
    pub fn list(
        &self,
        namespace: Option<&str>,
        start_after: Option<&str>,
        limit: usize,
        filter: impl Fn(&StoredObject) -> bool,
    ) -> ListPage {
        let state = self.read();
        let rv = self.clock.load(Ordering::SeqCst);
        let prefix = namespace.filter(|ns| !ns.is_empty()).map(|ns| format!("{ns}/"));
        let lower = match (start_after, prefix.as_deref()) {
            (Some(s), Some(p)) if s < p => Bound::Included(p),
            (Some(s), _) => Bound::Excluded(s),
            (None, Some(p)) => Bound::Included(p),
            (None, None) => Bound::Unbounded,
        };
        let range = state
            .objects
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(k, _)| prefix.as_deref().is_none_or(|p| k.starts_with(p)));
        let mut items = Vec::new();
        let mut more = false;
        for obj in range.map(|(_, o)| o).filter(|o| filter(o)) {
            if limit > 0 && items.len() == limit {
                more = true;
                break;
            }
            items.push(obj.clone());
        }
        ListPage { rv, items, more }
    }

    /// Starts a watch. `from: None` (or `send_initial`) starts with the current objects as ADDED; `Some(v)`
    /// replays every event after `v`, or fails with `Expired` when the history no longer reaches back to it.
    pub fn watch(&self, from: Option<u64>, send_initial: bool) -> Result<WatchStart, StoreError> {
        let state = self.read();
        // Subscribing under the read lock means no write lands between the snapshot and the feed.
        let live = self.feed.subscribe();
        let rv = self.clock.load(Ordering::SeqCst);
        match from {
            Some(v) if !send_initial => {
                if v < state.oldest {
                    return Err(StoreError::Expired { oldest: state.oldest });
                }
                let replay = state.history.iter().filter(|e| e.rv > v).cloned().collect();
                Ok(WatchStart { initial: Vec::new(), replay, rv: v, live })
            }
            _ => Ok(WatchStart { initial: state.objects.values().cloned().collect(), replay: Vec::new(), rv, live }),
        }
    }

    /// Events after `v`, to catch up a watcher that fell behind the live feed.
    pub fn events_after(&self, v: u64) -> Result<Vec<Arc<WatchEvent>>, StoreError> {
        let state = self.read();
        if v < state.oldest {
            return Err(StoreError::Expired { oldest: state.oldest });
        }
        Ok(state.history.iter().filter(|e| e.rv > v).cloned().collect())
    }

    /// The last version of this kind's history and the global clock, read together: a bookmark at the
    /// clock is safe once every event up to the first has been sent.
    pub fn bookmark_point(&self) -> (u64, u64) {
        let state = self.read();
        let last = state.history.back().map(|e| e.rv).unwrap_or(0);
        (last, self.clock.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store(history: usize) -> KindStore {
        KindStore::new(Arc::new(AtomicU64::new(1)), history, 0, ChangeFeed::default())
    }

    fn obj(name: &str) -> Value {
        json!({"metadata": {"name": name, "labels": {"app": name}}, "spec": {}})
    }

    #[test]
    fn versions_increase_and_preconditions_hold() {
        let s = store(10);
        let a = s.put("", "a", Precondition::Absent, obj("a")).unwrap();
        assert_eq!(a.rv, 2);
        assert_eq!(s.put("", "a", Precondition::Absent, obj("a")).unwrap_err(), StoreError::AlreadyExists);
        assert_eq!(s.put("", "a", Precondition::Version(1), obj("a")).unwrap_err(), StoreError::Conflict);
        let a2 = s.put("", "a", Precondition::Version(2), obj("a")).unwrap();
        assert_eq!(a2.rv, 3);
        assert_eq!(a2.value()["metadata"]["resourceVersion"], "3");
        assert_eq!(s.put("", "b", Precondition::Exists, obj("b")).unwrap_err(), StoreError::NotFound);
        let gone = s.delete("", "a", Precondition::Exists).unwrap();
        assert_eq!(gone.rv, 4);
        assert!(s.get("", "a").is_none());
    }

    #[test]
    fn labels_are_sorted_and_looked_up() {
        let l = Labels::of(&json!({"metadata": {"labels": {"b": "2", "a": "1", "c": 3}}}));
        assert_eq!(l.iter().collect::<Vec<_>>(), vec![("a", "1"), ("b", "2"), ("c", "")]);
        assert_eq!((l.get("a"), l.get("b"), l.get("z")), (Some("1"), Some("2"), None));
        assert_eq!(l.to_map().get("b").map(String::as_str), Some("2"));
        assert!(Labels::of(&json!({"metadata": {}})).is_empty());
        let json = to_json(&obj("x"));
        assert_eq!(serde_json::from_slice::<Value>(&json).unwrap(), obj("x"));
    }

    #[test]
    fn watch_replays_history_and_expires() {
        let s = store(3);
        for n in ["a", "b", "c", "d", "e"] {
            s.put("", n, Precondition::Absent, obj(n)).unwrap();
        }
        // Versions 2..=6; history keeps the last three (4, 5, 6).
        let w = s.watch(Some(3), false).unwrap();
        assert_eq!(w.replay.iter().map(|e| e.rv).collect::<Vec<_>>(), vec![4, 5, 6]);
        assert!(matches!(s.watch(Some(2), false), Err(StoreError::Expired { oldest: 3 })));
        let w = s.watch(None, false).unwrap();
        assert_eq!(w.initial.len(), 5);
        assert_eq!(w.rv, 6);
    }

    #[test]
    fn list_pages_in_name_order() {
        let s = store(10);
        for n in ["c", "a", "b", "d"] {
            s.put("", n, Precondition::Absent, obj(n)).unwrap();
        }
        let p = s.list(None, None, 2, |_| true);
        assert_eq!(p.items.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), vec!["a", "b"]);
        assert!(p.more);
        let p = s.list(None, Some("b"), 2, |_| true);
        assert_eq!(p.items.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), vec!["c", "d"]);
        assert!(!p.more);
        let p = s.list(None, None, 0, |o| o.labels.get("app") == Some("d"));
        assert_eq!(p.items.len(), 1);
    }

    #[test]
    fn namespaces_are_separate_key_ranges() {
        let s = store(10);
        for (ns, n) in [("a", "x"), ("b", "x"), ("a-b", "x"), ("a", "y"), ("b", "y")] {
            s.put(ns, n, Precondition::Absent, obj(n)).unwrap();
        }
        assert_eq!(s.len(), 5);
        assert_eq!(s.get("b", "x").unwrap().namespace, "b");
        assert!(s.get("", "x").is_none());
        let keys = |p: &ListPage| p.items.iter().map(|o| o.key()).collect::<Vec<_>>();
        assert_eq!(keys(&s.list(Some("a"), None, 0, |_| true)), vec!["a/x", "a/y"]);
        let p = s.list(Some("b"), None, 1, |_| true);
        assert_eq!(keys(&p), vec!["b/x"]);
        assert!(p.more);
        assert_eq!(keys(&s.list(Some("b"), Some("b/x"), 1, |_| true)), vec!["b/y"]);
        // A start key outside the namespace (a forged continue token) still only yields that namespace.
        assert_eq!(keys(&s.list(Some("b"), Some("a/x"), 0, |_| true)), vec!["b/x", "b/y"]);
        assert_eq!(s.list(None, None, 0, |_| true).items.len(), 5);
        s.delete("a", "x", Precondition::Exists).unwrap();
        assert!(s.get("a", "x").is_none() && s.get("b", "x").is_some());
    }
}
