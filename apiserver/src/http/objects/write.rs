//! The common tail of create, update and patch: merge with the current object, validate, stamp server
//! fields, record field ownership, and commit.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{Call, Operation, Target, Written, now};
use crate::deletion::{self, FOREGROUND_FINALIZER, ORPHAN_FINALIZER};
use crate::error::{ApiError, Cause, Error};
use crate::fields;
use crate::store::{Precondition, StoreError, StoredObject};

/// Everything of an object but metadata and status: what `generation` tracks.
fn spec_part(v: &Value) -> Vec<(&String, &Value)> {
    v.as_object()
        .map(|m| {
            m.iter().filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")).collect()
        })
        .unwrap_or_default()
}

fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v["metadata"].as_object_mut() {
        m.remove("managedFields");
        m.remove("resourceVersion");
    }
    v
}

/// kube-apiserver's metadata validation: an object cannot ask to orphan its dependents and to delete them.
/// An object being deleted takes no new finalizers (kube-apiserver's rule: its deletion must be able to end).
fn check_no_new_finalizers(current: &Value, new: &Value) -> Result<(), Cause> {
    let list = |o: &Value| -> Vec<String> {
        o["metadata"]["finalizers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str().map(String::from))
            .collect()
    };
    let old = list(current);
    let added: Vec<String> = list(new).into_iter().filter(|f| !old.contains(f)).map(|f| format!("{f:?}")).collect();
    if added.is_empty() {
        return Ok(());
    }
    Err(Cause {
        reason: "FieldValueForbidden",
        message: format!(
            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
            added.join(", ")
        ),
        field: "metadata.finalizers".into(),
    })
}

fn check_gc_finalizers(object: &Value) -> Result<(), Cause> {
    let finalizers = object["metadata"]["finalizers"].as_array().map(Vec::as_slice).unwrap_or_default();
    let has = |f: &str| finalizers.iter().any(|x| x == f);
    if has(ORPHAN_FINALIZER) && has(FOREGROUND_FINALIZER) {
        return Err(Cause {
            reason: "FieldValueInvalid",
            message: format!(
                "Invalid value: {}: finalizer {ORPHAN_FINALIZER} and {FOREGROUND_FINALIZER} cannot be both set",
                Value::Array(finalizers.to_vec())
            ),
            field: "metadata.finalizers".into(),
        });
    }
    Ok(())
}

impl Call<'_> {
    /// What kube-apiserver's NamespaceLifecycle admission checks before a create: the namespace exists and
    /// is not being deleted. Only when the core Namespace kind is served.
    fn check_namespace_open(&self, name: &str) -> Result<(), ApiError> {
        let Some(namespaces) =
            self.state.registry.get("", "v1", "namespaces").and_then(|_| self.state.store.kind("", "namespaces"))
        else {
            return Ok(());
        };
        match namespaces.get("", self.ns()) {
            None => Err(ApiError::not_found("", "namespaces", self.ns())),
            Some(n) if n.value()["metadata"].get("deletionTimestamp").is_some() => Err(ApiError::forbidden(
                self.group(),
                &self.kind.plural,
                name,
                &format!("unable to create new content in namespace {} because it is being terminated", self.ns()),
            )),
            Some(_) => Ok(()),
        }
    }

    /// The common tail of every write: merge with the current object, validate, stamp server fields, record
    /// field ownership, and commit under `pre`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn write(
        &self,
        name: &str,
        current: Option<&Arc<StoredObject>>,
        mut incoming: Value,
        target: Target,
        operation: Operation,
        pre: Precondition,
        warnings: &mut Vec<String>,
    ) -> Result<Written, Error> {
        // A JSON patch can replace the whole document with a non-object.
        if !incoming.is_object() {
            let message = "Invalid value: the object must be a JSON object".into();
            return Err(self
                .invalid(name, Cause { reason: "FieldValueInvalid", message, field: String::new() })
                .into());
        }
        // Every create checks the name, including a server-side apply that creates.
        if current.is_none() {
            super::create::valid_name(name).map_err(|message| {
                self.invalid(name, Cause { reason: "FieldValueInvalid", message, field: "metadata.name".into() })
            })?;
        }
        self.check_type_meta(&incoming)?;
        incoming["apiVersion"] = json!(self.kind.api_version());
        incoming["kind"] = json!(self.kind.kind);
        if !incoming["metadata"].is_object() {
            incoming["metadata"] = json!({});
        }
        incoming["metadata"]["name"] = json!(name);
        if self.kind.namespaced {
            if let Some(ns) = incoming["metadata"]["namespace"].as_str().filter(|ns| !ns.is_empty())
                && ns != self.ns()
            {
                return Err(Error::from(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                )));
            }
            incoming["metadata"]["namespace"] = json!(self.ns());
            if current.is_none() {
                self.check_namespace_open(name)?;
            }
        }
        // A status write changes only the status, as kube-apiserver's status strategies do: the rest of the
        // object is the stored one, so a client may send just `{metadata, status}` (Go Tilt's web UI does).
        if let (Some(cur), Target::Status) = (current, target) {
            let mut merged = cur.value();
            merged["status"] = incoming.get("status").cloned().unwrap_or(Value::Null);
            for key in ["managedFields", "resourceVersion"] {
                match incoming["metadata"].get(key) {
                    Some(v) => merged["metadata"][key] = v.clone(),
                    None => {
                        merged["metadata"].as_object_mut().map(|m| m.remove(key));
                    }
                }
            }
            incoming = merged;
        }
        let (incoming, mut w) = self.validate(name, incoming)?;
        warnings.append(&mut w);
        let current_value = current.map(|c| c.value());
        let mut result = match (&current_value, target) {
            (Some(cur), Target::Status) => {
                let mut r = cur.clone();
                match incoming.get("status") {
                    Some(s) if !s.is_null() => r["status"] = s.clone(),
                    _ => {
                        r.as_object_mut().map(|m| m.remove("status"));
                    }
                }
                r
            }
            (Some(cur), Target::Main) => {
                let mut r = incoming.clone();
                if self.kind.has_status {
                    match cur.get("status") {
                        Some(s) => r["status"] = s.clone(),
                        None => {
                            r.as_object_mut().map(|m| m.remove("status"));
                        }
                    }
                }
                for key in ["uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds"]
                {
                    match cur["metadata"].get(key) {
                        Some(v) => r["metadata"][key] = v.clone(),
                        None => {
                            r["metadata"].as_object_mut().map(|m| m.remove(key));
                        }
                    }
                }
                r
            }
            (None, _) => {
                let mut r = incoming.clone();
                if self.kind.has_status {
                    r.as_object_mut().map(|m| m.remove("status"));
                }
                let meta = r["metadata"].as_object_mut().expect("metadata is an object");
                for key in ["deletionTimestamp", "deletionGracePeriodSeconds", "resourceVersion"] {
                    meta.remove(key);
                }
                meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
                meta.insert("creationTimestamp".into(), json!(now()));
                meta.insert("generation".into(), json!(1));
                if deletion::is_core_namespace(self.kind) {
                    // kube-apiserver's namespace strategy: a new namespace is Active.
                    r["status"] = json!({"phase": "Active"});
                }
                r
            }
        };
        if let Some(cur) = &current_value
            && target == Target::Main
            && spec_part(cur) != spec_part(&result)
        {
            let generation = cur["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            result["metadata"]["generation"] = json!(generation);
        }
        let writer = self.writer(target);
        match operation {
            // Server-side apply computed the new field ownership; keep it whichever part was written.
            Operation::Apply => match incoming["metadata"].get("managedFields") {
                Some(m) => result["metadata"]["managedFields"] = m.clone(),
                None => {
                    result["metadata"].as_object_mut().map(|m| m.remove("managedFields"));
                }
            },
            Operation::Create | Operation::Update => {
                if let Some(cur) = &current_value {
                    match cur["metadata"].get("managedFields") {
                        Some(m) => result["metadata"]["managedFields"] = m.clone(),
                        None => {
                            result["metadata"].as_object_mut().map(|m| m.remove("managedFields"));
                        }
                    }
                }
                fields::record_update(current_value.as_ref(), &mut result, &writer);
            }
        }
        if let (Some(cur), Some(stored)) = (&current_value, current)
            && without_managed_fields(cur) == without_managed_fields(&result)
        {
            // A write that changes nothing is not a new version, and wakes no watcher.
            return Ok(Written::Stored(stored.clone()));
        }
        check_gc_finalizers(&result).map_err(|cause| self.invalid(name, cause))?;
        if let Some(cur) = current_value.as_ref().filter(|c| c["metadata"].get("deletionTimestamp").is_some()) {
            check_no_new_finalizers(cur, &result).map_err(|cause| self.invalid(name, cause))?;
        }
        if self.query.dry_run {
            if current.is_none() && pre == Precondition::Absent && self.store.get(self.ns(), name).is_some() {
                return Err(self.store_error(name, StoreError::AlreadyExists));
            }
            return Ok(Written::DryRun(result));
        }
        // An object being deleted whose last finalizer this write removes goes now.
        deletion::commit(&self.state.store, &self.state.registry, self.kind, self.ns(), name, pre, result)
            .map(Written::Stored)
            .map_err(|e| self.store_error(name, e))
    }
}
