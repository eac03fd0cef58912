//! Deleting objects as kube-apiserver does, shared by the HTTP handlers and the garbage collector ([`crate::gc`]):
//! `DeleteOptions` preconditions, finalizers and `deletionTimestamp`, the collector's `orphan` and
//! `foregroundDeletion` finalizers that carry a `propagationPolicy`, and a deleted namespace's contents.
//!
//! Every kind here defaults to background propagation (kube-apiserver's `DeleteDependents`, as for custom
//! resources and apps/v1): the owner goes at once and the collector deletes its dependents afterwards.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::error::{Error, ObjectName};
use crate::kind::{Registry, ResourceKind};
use crate::store::{Precondition, Store, StoreError, StoredObject};

/// The finalizer that holds an owner until the collector has deleted its blocking dependents.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// The finalizer that holds an owner until the collector has removed it from its dependents' ownerReferences.
pub const ORPHAN_FINALIZER: &str = "orphan";

/// `DeleteOptions.propagationPolicy`: what happens to an object's dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Dependents stay, without their reference to the deleted owner.
    Orphan,
    /// The owner goes at once; the collector deletes the dependents afterwards.
    Background,
    /// The owner stays (with a deletionTimestamp) until its blocking dependents are gone.
    Foreground,
}

impl Propagation {
    /// Parses `Orphan`, `Background` or `Foreground`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Orphan" => Some(Propagation::Orphan),
            "Background" => Some(Propagation::Background),
            "Foreground" => Some(Propagation::Foreground),
            _ => None,
        }
    }
}

/// What a delete asks for: preconditions, propagation and dry run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeleteOptions {
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<u64>,
    /// `propagationPolicy`.
    pub propagation: Option<Propagation>,
    /// The deprecated `orphanDependents`; never set together with `propagation`.
    pub orphan_dependents: Option<bool>,
    /// `dryRun=All`: compute, store nothing.
    pub dry_run: bool,
}

/// What a delete did.
#[derive(Debug)]
pub enum Deleted {
    /// The object is gone; its last state, stamped with the delete's version.
    Gone(Arc<StoredObject>),
    /// Finalizers hold the object: it carries a deletionTimestamp and stays until they are removed.
    Pending(Arc<StoredObject>),
    /// A dry run's result, not stored.
    DryRun(Value),
}

/// The current time as a metav1.Time (RFC 3339, seconds).
pub fn now() -> String {
    jiff::Timestamp::now().round(jiff::Unit::Second).unwrap_or_else(|_| jiff::Timestamp::now()).to_string()
}

fn finalizers_of(object: &Value) -> Vec<String> {
    object["metadata"]["finalizers"]
        .as_array()
        .map(|f| f.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// The finalizers an object gets for `opts`'s propagation, as kube-apiserver's
/// `deletionFinalizersForGarbageCollection`: an explicit policy replaces the collector's finalizers, none
/// keeps what the object has. `None` when they do not change.
pub fn propagation_finalizers(finalizers: &[String], opts: &DeleteOptions) -> Option<Vec<String>> {
    let has = |f: &str| finalizers.iter().any(|x| x == f);
    let (orphan, foreground) = match (opts.orphan_dependents, opts.propagation) {
        (Some(orphan), _) => (orphan, false),
        (None, Some(p)) => (p == Propagation::Orphan, p == Propagation::Foreground),
        // An earlier delete's choice stands; the kinds' default is background.
        (None, None) => (has(ORPHAN_FINALIZER), !has(ORPHAN_FINALIZER) && has(FOREGROUND_FINALIZER)),
    };
    let mut out: Vec<String> =
        finalizers.iter().filter(|f| *f != ORPHAN_FINALIZER && *f != FOREGROUND_FINALIZER).cloned().collect();
    if orphan {
        out.push(ORPHAN_FINALIZER.to_string());
    }
    if foreground {
        out.push(FOREGROUND_FINALIZER.to_string());
    }
    let same = out.len() == finalizers.len() && out.iter().all(|f| has(f));
    (!same).then_some(out)
}

/// Deletes `name` of `kind` in `namespace` (empty: cluster-scoped) as kube-apiserver does: the preconditions
/// must hold; an object left with finalizers (its own, or the collector's for `opts`'s propagation) gets a
/// deletionTimestamp and stays; one without is removed. A delete of an object already being deleted only
/// updates the collector's finalizers.
pub fn delete(
    store: &Store,
    registry: &Registry,
    kind: &ResourceKind,
    namespace: &str,
    name: &str,
    opts: &DeleteOptions,
) -> Result<Deleted, Error> {
    let object = || ObjectName::new(&kind.group, &kind.plural, name);
    let refused = |e: StoreError| Error::Store(e, object());
    let objects = store.kind(&kind.group, &kind.plural).ok_or_else(|| refused(StoreError::NotFound))?;
    // Retry when another writer slips in between the read and the commit.
    for _ in 0..16 {
        let current = objects.get(namespace, name).ok_or_else(|| refused(StoreError::NotFound))?;
        let mut cur = current.value();
        let cur_uid = cur["metadata"]["uid"].as_str().unwrap_or_default().to_string();
        if let Some(uid) = &opts.uid
            && *uid != cur_uid
        {
            return Err(Error::Precondition(
                object(),
                format!("UID in precondition: {uid}, UID in object meta: {cur_uid}"),
            ));
        }
        if let Some(rv) = opts.resource_version
            && rv != current.rv
        {
            return Err(Error::Precondition(
                object(),
                format!("ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}", current.rv),
            ));
        }
        let finalizers = finalizers_of(&cur);
        let updated = propagation_finalizers(&finalizers, opts);
        let being_deleted = cur["metadata"].get("deletionTimestamp").is_some();
        let left = updated.as_ref().unwrap_or(&finalizers);
        if opts.dry_run {
            // What the delete would answer: the object marked, when finalizers would hold it.
            if !left.is_empty() && !being_deleted {
                mark_deleting(&mut cur);
            }
            return Ok(Deleted::DryRun(cur));
        }
        let result = if left.is_empty() {
            objects.delete(namespace, name, Precondition::Version(current.rv)).map(Deleted::Gone)
        } else if being_deleted && updated.is_none() {
            return Ok(Deleted::Pending(current));
        } else {
            // Finalizers hold the object: mark it; it goes when the last finalizer is removed.
            if !being_deleted {
                mark_deleting(&mut cur);
            }
            cur["metadata"]["finalizers"] = json!(left);
            objects.put(namespace, name, Precondition::Version(current.rv), cur).map(Deleted::Pending)
        };
        match result {
            Ok(deleted) => {
                if let Deleted::Gone(_) = &deleted
                    && is_core_namespace(kind)
                {
                    delete_namespace_contents(store, registry, name);
                }
                return Ok(deleted);
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(refused(e)),
        }
    }
    Err(refused(StoreError::Conflict))
}

/// Sets deletionTimestamp, and bumps a generation as kube-apiserver does when a deletion starts (the object's
/// controllers must now behave differently).
fn mark_deleting(object: &mut Value) {
    object["metadata"]["deletionTimestamp"] = json!(now());
    object["metadata"]["deletionGracePeriodSeconds"] = json!(0);
    if let Some(g) = object["metadata"]["generation"].as_i64().filter(|g| *g > 0) {
        object["metadata"]["generation"] = json!(g + 1);
    }
}

/// Commits `object` as the new state of `name` under `pre`; an object whose deletionTimestamp is set and
/// whose last finalizer is gone is removed instead, as kube-apiserver does on such an update.
pub fn commit(
    store: &Store,
    registry: &Registry,
    kind: &ResourceKind,
    namespace: &str,
    name: &str,
    pre: Precondition,
    object: Value,
) -> Result<Arc<StoredObject>, StoreError> {
    let objects = store.kind(&kind.group, &kind.plural).ok_or(StoreError::NotFound)?;
    let finalizers_left = object["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
    if object["metadata"].get("deletionTimestamp").is_some() && !finalizers_left && pre != Precondition::Absent {
        let gone = objects.delete(namespace, name, pre)?;
        if is_core_namespace(kind) {
            delete_namespace_contents(store, registry, name);
        }
        return Ok(gone);
    }
    objects.put(namespace, name, pre, object)
}

/// Whether `kind` is the core Namespace kind.
pub fn is_core_namespace(kind: &ResourceKind) -> bool {
    kind.group.is_empty() && kind.plural == "namespaces"
}

/// Deletes every object of every namespaced kind in `namespace`, as kube's namespace controller does once
/// a namespace is gone (objects with finalizers are marked and stay until their finalizers are removed).
fn delete_namespace_contents(store: &Store, registry: &Registry, namespace: &str) {
    for kind in registry.kinds().iter().filter(|k| k.namespaced) {
        let Some(objects) = store.kind(&kind.group, &kind.plural) else { continue };
        for o in objects.list(Some(namespace), None, 0, |_| true).items {
            if let Err(err) = delete(store, registry, kind, namespace, &o.name, &DeleteOptions::default()) {
                tracing::debug!(%err, "deleting namespace contents");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn propagation_finalizers_follow_kube_apiserver() {
        let policy = |p| DeleteOptions { propagation: Some(p), ..Default::default() };
        // Background (and no policy on a fresh object) adds nothing.
        assert_eq!(propagation_finalizers(&[], &policy(Propagation::Background)), None);
        assert_eq!(propagation_finalizers(&names(&["x"]), &DeleteOptions::default()), None);
        assert_eq!(propagation_finalizers(&[], &policy(Propagation::Foreground)), Some(names(&["foregroundDeletion"])));
        assert_eq!(propagation_finalizers(&names(&["x"]), &policy(Propagation::Orphan)), Some(names(&["x", "orphan"])));
        // An explicit policy replaces an earlier one; none keeps it.
        let fg = names(&["foregroundDeletion"]);
        assert_eq!(propagation_finalizers(&fg, &policy(Propagation::Orphan)), Some(names(&["orphan"])));
        assert_eq!(propagation_finalizers(&fg, &policy(Propagation::Background)), Some(vec![]));
        assert_eq!(propagation_finalizers(&fg, &DeleteOptions::default()), None);
        let orphan = |o| DeleteOptions { orphan_dependents: Some(o), ..Default::default() };
        assert_eq!(propagation_finalizers(&[], &orphan(true)), Some(names(&["orphan"])));
        assert_eq!(propagation_finalizers(&fg, &orphan(false)), Some(vec![]));
    }
}
