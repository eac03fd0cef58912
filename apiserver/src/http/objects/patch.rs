//! PATCH: JSON merge patch, JSON patch and server-side apply, retried when another writer slips in.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::Value;

use super::{Body, Call, Operation, Target};
use crate::error::{ApiError, Cause, Error};
use crate::fields;
use crate::store::{Precondition, StoreError};

impl Call<'_> {
    pub(super) fn patch(&self, name: &str, target: Target, body: Bytes) -> Result<Response<Body>, Error> {
        self.query.check_write_options("PatchOptions")?;
        enum Kind {
            Merge(Value),
            Json(json_patch::Patch),
            Apply(Value),
        }
        let patch = match self.media_type().as_str() {
            "application/merge-patch+json" => Kind::Merge(self.parse_object(&body, false)?),
            "application/json-patch+json" => Kind::Json(
                serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?,
            ),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Kind::Apply(self.parse_object(&body, true)?)
            }
            _ => {
                return Err(Error::from(ApiError::unsupported_media_type(&[
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/apply-patch+yaml",
                ])));
            }
        };
        if matches!(patch, Kind::Apply(_)) && self.query.field_manager.is_none() {
            return Err(Error::from(ApiError::invalid(
                "meta.k8s.io",
                "PatchOptions",
                "",
                vec![Cause {
                    reason: "FieldValueRequired",
                    message: "Required value: is required for apply patch".into(),
                    field: "fieldManager".into(),
                }],
            )));
        }
        let mut warnings = Vec::new();
        // Retry when another writer slipped in between our read and our commit, unless the patch itself
        // pinned a resourceVersion (then the conflict is the client's to see).
        for _ in 0..16 {
            let current = self.store.get(self.ns(), name);
            let Some(current) = current else {
                // Only an apply to the main resource creates; a status write needs the object.
                let (Kind::Apply(config), Target::Main) = (&patch, target) else { return Err(self.not_found(name)) };
                let obj = self.apply_config(name, None, config, target)?;
                let written =
                    self.write(name, None, obj, Target::Main, Operation::Apply, Precondition::Absent, &mut warnings);
                match written {
                    Err(e) if e.is_store(&StoreError::AlreadyExists) => continue,
                    other => return self.respond(StatusCode::CREATED, other?, &warnings),
                }
            };
            let cur = current.value();
            let (patched, operation) = match &patch {
                Kind::Merge(p) => {
                    let mut v = cur.clone();
                    json_patch::merge(&mut v, p);
                    (v, Operation::Update)
                }
                Kind::Json(p) => {
                    let mut v = cur.clone();
                    json_patch_as_kubernetes(&mut v, p).map_err(|e| {
                        self.invalid(
                            name,
                            Cause { reason: "FieldValueInvalid", message: e.to_string(), field: String::new() },
                        )
                    })?;
                    (v, Operation::Update)
                }
                Kind::Apply(config) => (self.apply_config(name, Some(&cur), config, target)?, Operation::Apply),
            };
            // A patch that carries a resourceVersion pins it: optimistic concurrency, as for PUT. On a lost
            // race the loop re-reads, so a pinned stale version then fails here.
            if let Value::String(s) = &patched["metadata"]["resourceVersion"]
                && *s != current.rv.to_string()
            {
                return Err(self.store_error(name, StoreError::Conflict));
            }
            match self.write(
                name,
                Some(&current),
                patched,
                target,
                operation,
                Precondition::Version(current.rv),
                &mut warnings,
            ) {
                Err(e) if e.is_store(&StoreError::Conflict) => continue,
                other => return self.respond(StatusCode::OK, other?, &warnings),
            }
        }
        Err(self.store_error(name, StoreError::Conflict))
    }

    /// Server-side apply of `config` onto `current`.
    fn apply_config(
        &self,
        name: &str,
        current: Option<&Value>,
        config: &Value,
        target: Target,
    ) -> Result<Value, ApiError> {
        self.check_type_meta(config)?;
        let mut config = config.clone();
        if let Some(n) = config["metadata"]["name"].as_str()
            && n != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        // The merged result is validated by `write`, as kube-apiserver validates the applied object.
        if let Some(m) = config.as_object_mut() {
            m.remove("apiVersion");
            m.remove("kind");
            if target == Target::Status {
                m.retain(|k, _| k == "status");
            } else if self.kind.has_status {
                m.remove("status");
            }
        }
        let writer = self.writer(target);
        fields::apply(current, &config, &writer, self.query.force).map_err(|conflicts| {
            let list: Vec<String> =
                conflicts.iter().map(|c| format!("conflict with \"{}\": {}", c.manager, c.field)).collect();
            let message = format!(
                "Apply failed with {} conflict{}: {}",
                list.len(),
                if list.len() == 1 { "" } else { "s" },
                list.join("\n")
            );
            let causes = conflicts
                .iter()
                .map(|c| Cause {
                    reason: "FieldManagerConflict",
                    message: format!("conflict with \"{}\"", c.manager),
                    field: c.field.clone(),
                })
                .collect();
            ApiError::apply_conflict(message, causes)
        })
    }
}

/// Applies a JSON patch as kube-apiserver does: a `test` for `null` passes on an absent path (an omitted
/// field is null), which kube-runtime's `finalizer()` relies on when an object has no finalizers yet.
fn json_patch_as_kubernetes(doc: &mut Value, patch: &json_patch::Patch) -> Result<(), json_patch::PatchError> {
    for op in &patch.0 {
        if let json_patch::PatchOperation::Test(t) = op
            && t.value.is_null()
            && doc.pointer(t.path.as_str()).is_none_or(Value::is_null)
        {
            continue;
        }
        json_patch::patch(doc, std::slice::from_ref(op))?;
    }
    Ok(())
}
