//! The garbage collector: deletes objects whose owners (`metadata.ownerReferences`, by uid) are all gone,
//! and carries out foreground and orphan deletion, as kube-controller-manager's garbage collector does.
//!
//! It is part of the server, not a client: it reads every committed change from the store's change feed
//! ([`Store::changes`]) and keeps an [`OwnerIndex`] (owner uid → dependents, and which owners are deleting
//! their dependents in the foreground), so an event costs a few map operations and no scan. Before it acts
//! it indexes every change committed so far, and it decides from the live objects (an owner is absent when
//! no object of its kind has its name and uid), then deletes and updates through [`crate::deletion`], the
//! code the DELETE handler uses.
//!
//! - A dependent none of whose owners exists is deleted (background, unless its own finalizers say
//!   otherwise); that includes one created with a reference to a uid that does not exist.
//! - A dependent with a live owner keeps living; references to absent owners are removed from it.
//! - An owner deleted in the foreground (`foregroundDeletion` finalizer) gets its dependents deleted and loses
//!   the finalizer (and so goes) once no dependent with `blockOwnerDeletion: true` remains.
//! - An owner deleted with `orphan` loses its reference from every dependent, then the finalizer.
//! - A reference to a kind this server does not serve, or from a cluster-scoped dependent to a namespaced
//!   kind, cannot be resolved: such a dependent is never collected. A namespaced owner is looked up in the
//!   dependent's namespace, a cluster-scoped one cluster-wide.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::deletion::{self, DeleteOptions, FOREGROUND_FINALIZER, ORPHAN_FINALIZER, Propagation};
use crate::error::Error;
use crate::fields::{self, Writer};
use crate::kind::{Registry, ResourceKind};
use crate::store::{Change, EventType, Precondition, Store, StoreError, StoredObject};

/// The field manager of the collector's updates.
const MANAGER: &str = "garbage-collector";
/// The first retry delay after a lost race; doubled per attempt up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(5);
const MAX_RETRY: Duration = Duration::from_secs(2);

/// One object, as the collector names it: its kind's position in the registry, namespace, name and uid.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectId {
    kind: usize,
    namespace: String,
    name: String,
    uid: String,
}

/// The parts of `metadata` the collector reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Meta {
    uid: String,
    owner_references: Vec<OwnerRef>,
    finalizers: Vec<String>,
    deletion_timestamp: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct OwnerRef {
    api_version: String,
    kind: String,
    name: String,
    uid: String,
    block_owner_deletion: Option<bool>,
}

#[derive(Deserialize)]
struct Head {
    #[serde(default)]
    metadata: Meta,
}

impl Meta {
    fn of(object: &StoredObject) -> Option<Meta> {
        serde_json::from_slice::<Head>(&object.json).ok().map(|h| h.metadata)
    }

    fn has(&self, finalizer: &str) -> bool {
        self.finalizers.iter().any(|f| f == finalizer)
    }

    /// Deleted in the foreground: its dependents go first.
    fn deleting_dependents(&self) -> bool {
        self.deletion_timestamp.is_some() && self.has(FOREGROUND_FINALIZER)
    }
}

/// A dependent: an object with ownerReferences.
#[derive(Debug)]
struct Dependent {
    id: ObjectId,
    /// Owner uids, and whether each reference blocks the owner's foreground deletion.
    owners: Vec<(String, bool)>,
}

/// Who depends on whom, built from the change feed. Only objects with ownerReferences have an entry.
#[derive(Debug, Default)]
pub struct OwnerIndex {
    /// Dependents by uid.
    dependents: HashMap<String, Dependent>,
    /// Owner uid → the uids of its dependents.
    by_owner: HashMap<String, HashSet<String>>,
    /// Objects being deleted in the foreground, by uid.
    deleting_dependents: HashMap<String, ObjectId>,
}

/// Something for the collector to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Work {
    /// Check an object: collect it if its owners are gone, or finish its foreground deletion.
    Collect(ObjectId),
    /// Remove an owner being deleted with `orphan` from its dependents, then the finalizer.
    Orphan(ObjectId),
}

impl OwnerIndex {
    fn unlink(&mut self, owner: &str, dependent: &str) {
        if let Some(set) = self.by_owner.get_mut(owner) {
            set.remove(dependent);
            if set.is_empty() {
                self.by_owner.remove(owner);
            }
        }
    }

    /// The dependents of `owner`.
    fn dependents_of(&self, owner: &str) -> impl Iterator<Item = &Dependent> {
        self.by_owner.get(owner).into_iter().flatten().filter_map(|d| self.dependents.get(d))
    }

    /// Records one change; returns the work it calls for.
    fn observe(&mut self, id: ObjectId, kind: EventType, meta: &Meta, out: &mut Vec<Work>) {
        let uid = id.uid.clone();
        let old = self.dependents.remove(&uid).map(|d| d.owners).unwrap_or_default();
        if kind == EventType::Deleted {
            for (owner, _) in &old {
                self.unlink(owner, &uid);
                // A dependent gone may be the last one an owner's foreground deletion waited for.
                out.extend(self.deleting_dependents.get(owner).cloned().map(Work::Collect));
            }
            self.deleting_dependents.remove(&uid);
            // Its dependents may have lost their last owner.
            out.extend(self.dependents_of(&uid).map(|d| Work::Collect(d.id.clone())));
            return;
        }
        let owners: Vec<(String, bool)> =
            meta.owner_references.iter().map(|r| (r.uid.clone(), r.block_owner_deletion == Some(true))).collect();
        for (owner, blocked) in &old {
            let still = owners.iter().find(|(o, _)| o == owner);
            if still.is_none() {
                self.unlink(owner, &uid);
            }
            // A reference removed or no longer blocking may end an owner's foreground deletion.
            if *blocked && !still.is_some_and(|(_, b)| *b) {
                out.extend(self.deleting_dependents.get(owner).cloned().map(Work::Collect));
            }
        }
        // A new reference may name an owner that does not exist (any more): check.
        if owners.iter().any(|(o, _)| !old.iter().any(|(p, _)| p == o)) {
            out.push(Work::Collect(id.clone()));
        }
        for (owner, _) in &owners {
            self.by_owner.entry(owner.clone()).or_default().insert(uid.clone());
        }
        if !owners.is_empty() {
            self.dependents.insert(uid.clone(), Dependent { id: id.clone(), owners });
        }
        if meta.deleting_dependents() {
            if self.deleting_dependents.insert(uid.clone(), id.clone()).is_none() {
                out.extend(self.dependents_of(&uid).map(|d| Work::Collect(d.id.clone())));
                out.push(Work::Collect(id.clone()));
            }
        } else {
            self.deleting_dependents.remove(&uid);
        }
        if meta.deletion_timestamp.is_some() && meta.has(ORPHAN_FINALIZER) {
            out.push(Work::Orphan(id));
        }
    }
}

/// How a piece of work ended.
enum Outcome {
    Done,
    /// Lost a race with another writer: try again later.
    Retry,
}

/// Where an owner reference points, as the collector sees it.
enum OwnerState {
    /// The owner exists and is not deleting its dependents.
    Solid,
    /// No object of the owner's kind has its name and uid.
    Dangling,
    /// The owner is being deleted in the foreground.
    Waiting,
}

/// The collector: the index, a deduplicated queue and the retries.
pub(crate) struct Collector {
    store: Arc<Store>,
    registry: Registry,
    index: OwnerIndex,
    queue: VecDeque<Work>,
    queued: HashSet<Work>,
    /// Work that lost a race, with its attempts so far and when to try again.
    retries: HashMap<Work, (u32, Instant)>,
}

impl Collector {
    /// A collector over `store`, whose kinds are `registry`'s.
    pub(crate) fn new(store: Arc<Store>, registry: Registry) -> Self {
        Collector {
            store,
            registry,
            index: OwnerIndex::default(),
            queue: VecDeque::new(),
            queued: HashSet::new(),
            retries: HashMap::new(),
        }
    }

    /// Runs until `shutdown` is cancelled or the store goes away.
    pub(crate) async fn run(mut self, mut changes: mpsc::UnboundedReceiver<Change>, shutdown: CancellationToken) {
        loop {
            // Index every change committed so far before acting on any, so a decision sees every dependent.
            loop {
                match changes.try_recv() {
                    Ok(change) => self.observe(change),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            }
            let now = Instant::now();
            let due: Vec<Work> =
                self.retries.iter().filter(|(_, (_, at))| *at <= now).map(|(w, _)| w.clone()).collect();
            for work in due {
                self.enqueue(work);
            }
            if let Some(work) = self.queue.pop_front() {
                self.queued.remove(&work);
                match self.process(&work) {
                    Outcome::Done => {
                        self.retries.remove(&work);
                    }
                    Outcome::Retry => {
                        let attempts = self.retries.get(&work).map(|(n, _)| n + 1).unwrap_or(0);
                        let delay = (FIRST_RETRY * 2u32.saturating_pow(attempts.min(16))).min(MAX_RETRY);
                        self.retries.insert(work, (attempts, Instant::now() + delay));
                    }
                }
                // Let request handlers run between pieces of work.
                tokio::task::yield_now().await;
                continue;
            }
            let next_retry = self.retries.values().map(|(_, at)| *at).min();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                change = changes.recv() => match change {
                    Some(change) => self.observe(change),
                    None => return,
                },
                _ = async {
                    match next_retry {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
        }
    }

    fn enqueue(&mut self, work: Work) {
        if self.queued.insert(work.clone()) {
            self.queue.push_back(work);
        }
    }

    fn observe(&mut self, (kind, event): Change) {
        let Some(meta) = Meta::of(&event.object) else { return };
        if meta.uid.is_empty() {
            return;
        }
        let id = ObjectId {
            kind,
            namespace: event.object.namespace.clone(),
            name: event.object.name.clone(),
            uid: meta.uid.clone(),
        };
        let mut work = Vec::new();
        self.index.observe(id, event.kind, &meta, &mut work);
        for w in work {
            self.enqueue(w);
        }
    }

    fn kind(&self, index: usize) -> Option<Arc<ResourceKind>> {
        self.registry.kinds().get(index).cloned()
    }

    /// The live object `id` names, if it still exists with that uid.
    fn live(&self, id: &ObjectId) -> Option<(Arc<ResourceKind>, Arc<StoredObject>, Meta)> {
        let kind = self.kind(id.kind)?;
        let object = self.store.kind(&kind.group, &kind.plural)?.get(&id.namespace, &id.name)?;
        let meta = Meta::of(&object).filter(|m| m.uid == id.uid)?;
        Some((kind, object, meta))
    }

    fn process(&mut self, work: &Work) -> Outcome {
        let result = match work {
            Work::Collect(id) => self.collect(id),
            Work::Orphan(id) => self.orphan(id),
        };
        match result {
            Ok(()) => Outcome::Done,
            Err(e) if e.is_store(&StoreError::Conflict) || matches!(e, Error::Precondition(..)) => Outcome::Retry,
            // Deleted meanwhile: its own change will bring whatever follows.
            Err(e) if e.is_store(&StoreError::NotFound) => Outcome::Done,
            Err(err) => {
                tracing::warn!(%err, ?work, "garbage collection failed");
                Outcome::Done
            }
        }
    }

    /// The state of the owner `r` names, for a dependent in `namespace`; `None` when it cannot be resolved.
    fn owner_state(&self, r: &OwnerRef, namespace: &str) -> Option<OwnerState> {
        let kind = self.registry.kinds().iter().find(|k| k.kind == r.kind && k.api_version() == r.api_version)?;
        if kind.namespaced && namespace.is_empty() {
            // A cluster-scoped object cannot be owned by a namespaced one.
            return None;
        }
        let owner_namespace = if kind.namespaced { namespace } else { "" };
        let owner = self.store.kind(&kind.group, &kind.plural)?.get(owner_namespace, &r.name);
        Some(match owner.as_deref().and_then(Meta::of) {
            Some(m) if m.uid == r.uid && m.deleting_dependents() => OwnerState::Waiting,
            Some(m) if m.uid == r.uid => OwnerState::Solid,
            _ => OwnerState::Dangling,
        })
    }

    /// attemptToDelete: collects `id` when its owners are gone, or moves its foreground deletion on.
    fn collect(&mut self, id: &ObjectId) -> Result<(), Error> {
        let Some((kind, object, meta)) = self.live(id) else { return Ok(()) };
        if meta.deletion_timestamp.is_some() {
            if meta.has(FOREGROUND_FINALIZER) {
                return self.finish_foreground(id, &kind, &object);
            }
            // On its way out: its deletion event will bring what follows.
            return Ok(());
        }
        if meta.owner_references.is_empty() {
            return Ok(());
        }
        let (mut solid, mut gone, mut waiting) = (0, Vec::new(), Vec::new());
        for r in &meta.owner_references {
            match self.owner_state(r, &id.namespace) {
                None => return Ok(()),
                Some(OwnerState::Solid) => solid += 1,
                Some(OwnerState::Dangling) => gone.push(r.uid.clone()),
                Some(OwnerState::Waiting) => waiting.push(r.uid.clone()),
            }
        }
        if solid > 0 {
            if gone.is_empty() && waiting.is_empty() {
                return Ok(());
            }
            // A live owner keeps it: drop only the references to owners that are gone or going (a waiting
            // owner would otherwise wait for it forever).
            gone.extend(waiting);
            return self.update_metadata(&kind, &object, |v| remove_owner_refs(v, &gone));
        }
        let has_dependents = self.index.by_owner.get(&id.uid).is_some_and(|d| !d.is_empty());
        if !waiting.is_empty() && has_dependents {
            // Its owner waits for it, and it has dependents of its own: delete it in the foreground too. A
            // dependent that is itself deleting its dependents could close a cycle; unblock to break it.
            let cycle =
                self.index.dependents_of(&id.uid).any(|d| self.index.deleting_dependents.contains_key(&d.id.uid));
            if cycle {
                self.update_metadata(&kind, &object, unblock_owner_refs)?;
            }
            let opts = DeleteOptions {
                uid: Some(id.uid.clone()),
                propagation: Some(Propagation::Foreground),
                ..Default::default()
            };
            return deletion::delete(&self.store, &self.registry, &kind, &id.namespace, &id.name, &opts).map(drop);
        }
        // Every owner is gone: collect it, honouring a propagation its own finalizers ask for.
        let propagation = if meta.has(ORPHAN_FINALIZER) {
            Propagation::Orphan
        } else if meta.has(FOREGROUND_FINALIZER) {
            Propagation::Foreground
        } else {
            Propagation::Background
        };
        let opts = DeleteOptions {
            uid: Some(id.uid.clone()),
            // Only the version whose owners were checked: a concurrent update means checking again.
            resource_version: Some(object.rv),
            propagation: Some(propagation),
            ..Default::default()
        };
        deletion::delete(&self.store, &self.registry, &kind, &id.namespace, &id.name, &opts).map(drop)
    }

    /// An owner deleting its dependents: once none with `blockOwnerDeletion` remains, it loses the finalizer;
    /// until then, its blocking dependents are collected.
    fn finish_foreground(&mut self, id: &ObjectId, kind: &ResourceKind, object: &StoredObject) -> Result<(), Error> {
        let blocking: Vec<ObjectId> = self
            .index
            .dependents_of(&id.uid)
            .filter(|d| d.owners.iter().any(|(o, blocked)| *o == id.uid && *blocked))
            .map(|d| d.id.clone())
            .collect();
        if blocking.is_empty() {
            return self.update_metadata(kind, object, |v| remove_finalizer(v, FOREGROUND_FINALIZER));
        }
        for dep in blocking {
            if !self.index.deleting_dependents.contains_key(&dep.uid) {
                self.enqueue(Work::Collect(dep));
            }
        }
        Ok(())
    }

    /// attemptToOrphan: removes the owner `id` from its dependents' references, then its `orphan` finalizer.
    fn orphan(&mut self, id: &ObjectId) -> Result<(), Error> {
        let Some((_, _, meta)) = self.live(id) else { return Ok(()) };
        if meta.deletion_timestamp.is_none() || !meta.has(ORPHAN_FINALIZER) {
            return Ok(());
        }
        let dependents: Vec<ObjectId> = self.index.dependents_of(&id.uid).map(|d| d.id.clone()).collect();
        let owner = [id.uid.clone()];
        for dep in dependents {
            let Some((kind, object, _)) = self.live(&dep) else { continue };
            match self.update_metadata(&kind, &object, |v| remove_owner_refs(v, &owner)) {
                Err(e) if e.is_store(&StoreError::NotFound) => {}
                other => other?,
            }
        }
        let Some((kind, object, _)) = self.live(id) else { return Ok(()) };
        self.update_metadata(&kind, &object, |v| remove_finalizer(v, ORPHAN_FINALIZER))
    }

    /// Applies `change` to the object's metadata and commits it at the version it was read at (an object
    /// being deleted whose last finalizer goes is removed).
    fn update_metadata(
        &self,
        kind: &ResourceKind,
        object: &StoredObject,
        change: impl FnOnce(&mut Value) -> bool,
    ) -> Result<(), Error> {
        let before = object.value();
        let mut after = before.clone();
        if !change(&mut after) {
            return Ok(());
        }
        let writer = Writer {
            manager: MANAGER.to_string(),
            subresource: String::new(),
            api_version: kind.api_version(),
            time: deletion::now(),
        };
        fields::record_update(Some(&before), &mut after, &writer);
        let pre = Precondition::Version(object.rv);
        deletion::commit(&self.store, &self.registry, kind, &object.namespace, &object.name, pre, after)
            .map(drop)
            .map_err(|e| Error::store(e, &kind.group, &kind.plural, &object.name))
    }
}

/// Removes the ownerReferences to any of `uids`; whether any was there.
fn remove_owner_refs(object: &mut Value, uids: &[String]) -> bool {
    let Some(refs) = object["metadata"]["ownerReferences"].as_array_mut() else { return false };
    let before = refs.len();
    refs.retain(|r| !uids.iter().any(|u| r["uid"].as_str() == Some(u.as_str())));
    let changed = refs.len() != before;
    if refs.is_empty()
        && let Some(meta) = object["metadata"].as_object_mut()
    {
        meta.remove("ownerReferences");
    }
    changed
}

/// Sets `blockOwnerDeletion: false` on every blocking reference; whether any was blocking.
fn unblock_owner_refs(object: &mut Value) -> bool {
    let mut changed = false;
    for r in object["metadata"]["ownerReferences"].as_array_mut().into_iter().flatten() {
        if r["blockOwnerDeletion"] == Value::Bool(true) {
            r["blockOwnerDeletion"] = Value::Bool(false);
            changed = true;
        }
    }
    changed
}

/// Removes `finalizer`; whether it was there.
fn remove_finalizer(object: &mut Value, finalizer: &str) -> bool {
    let Some(list) = object["metadata"]["finalizers"].as_array_mut() else { return false };
    let before = list.len();
    list.retain(|f| f.as_str() != Some(finalizer));
    let changed = list.len() != before;
    if list.is_empty()
        && let Some(meta) = object["metadata"].as_object_mut()
    {
        meta.remove("finalizers");
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(name: &str, uid: &str) -> ObjectId {
        ObjectId { kind: 0, namespace: String::new(), name: name.into(), uid: uid.into() }
    }

    fn meta(v: Value) -> Meta {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn index_links_dependents_to_owners_and_asks_for_checks() {
        let mut index = OwnerIndex::default();
        let mut work = Vec::new();
        let child = meta(json!({"uid": "c", "ownerReferences": [
            {"apiVersion": "v1", "kind": "K", "name": "a", "uid": "a", "blockOwnerDeletion": true},
            {"apiVersion": "v1", "kind": "K", "name": "b", "uid": "b"}]}));
        index.observe(id("c", "c"), EventType::Added, &child, &mut work);
        // A new reference is verified at once (a dangling one is collected).
        assert_eq!(work, vec![Work::Collect(id("c", "c"))]);
        assert_eq!(index.dependents_of("a").count(), 1);
        assert_eq!(index.dependents_of("b").count(), 1);

        // The owner starts a foreground deletion: its dependents and itself are checked.
        work.clear();
        let owner = meta(json!({"uid": "a", "deletionTimestamp": "t", "finalizers": ["foregroundDeletion"]}));
        index.observe(id("a", "a"), EventType::Modified, &owner, &mut work);
        assert_eq!(work, vec![Work::Collect(id("c", "c")), Work::Collect(id("a", "a"))]);

        // Dropping the blocking reference wakes the waiting owner; an unchanged update asks nothing else.
        work.clear();
        let child2 =
            meta(json!({"uid": "c", "ownerReferences": [{"apiVersion": "v1", "kind": "K", "name": "b", "uid": "b"}]}));
        index.observe(id("c", "c"), EventType::Modified, &child2, &mut work);
        assert_eq!(work, vec![Work::Collect(id("a", "a"))]);
        assert_eq!(index.dependents_of("a").count(), 0);
        assert!(!index.by_owner.contains_key("a"), "empty sets are dropped");

        // The owner's deletion asks for a check of each dependent; the dependent's unlinks it.
        work.clear();
        index.observe(id("b", "b"), EventType::Deleted, &meta(json!({"uid": "b"})), &mut work);
        assert_eq!(work, vec![Work::Collect(id("c", "c"))]);
        work.clear();
        index.observe(id("c", "c"), EventType::Deleted, &child2, &mut work);
        assert!(index.dependents.is_empty() && index.by_owner.is_empty());
    }

    #[test]
    fn orphan_finalizer_asks_for_orphaning() {
        let mut index = OwnerIndex::default();
        let mut work = Vec::new();
        let owner = meta(json!({"uid": "a", "deletionTimestamp": "t", "finalizers": ["orphan"]}));
        index.observe(id("a", "a"), EventType::Modified, &owner, &mut work);
        assert_eq!(work, vec![Work::Orphan(id("a", "a"))]);
    }

    #[test]
    fn metadata_edits() {
        let mut v = json!({"metadata": {"finalizers": ["orphan", "x"], "ownerReferences": [
            {"uid": "a", "blockOwnerDeletion": true}, {"uid": "b"}]}});
        assert!(remove_finalizer(&mut v, "orphan"));
        assert!(!remove_finalizer(&mut v, "orphan"));
        assert_eq!(v["metadata"]["finalizers"], json!(["x"]));
        assert!(unblock_owner_refs(&mut v));
        assert!(!unblock_owner_refs(&mut v));
        assert!(remove_owner_refs(&mut v, &["a".into(), "b".into()]));
        assert!(v["metadata"].get("ownerReferences").is_none());
    }
}
