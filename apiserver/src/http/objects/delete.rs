//! DELETE and deletecollection: `DeleteOptions` from the body or the query (preconditions, dryRun,
//! `propagationPolicy`, `orphanDependents`), then [`crate::deletion`], which the garbage collector uses too.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::{Body, Call};
use crate::deletion::{self, DeleteOptions, Deleted, Propagation};
use crate::error::{ApiError, Cause, Error};
use crate::store::StoreError;

fn unsupported_policy() -> ApiError {
    ApiError::bad_request(
        "DeleteOptions.propagationPolicy: Unsupported value: supported values: \"Foreground\", \"Background\", \"Orphan\"",
    )
}

impl Call<'_> {
    /// Parses DeleteOptions from the body, or from the query when there is no body (as kube-apiserver does).
    fn delete_options(&self, body: &[u8]) -> Result<DeleteOptions, Error> {
        self.query.check_write_options("DeleteOptions")?;
        let policy = |p: &str| Propagation::parse(p).ok_or_else(unsupported_policy);
        let mut opts = DeleteOptions {
            dry_run: self.query.dry_run,
            propagation: self.query.propagation_policy.as_deref().map(policy).transpose()?,
            orphan_dependents: self.query.orphan_dependents,
            ..Default::default()
        };
        if !body.iter().all(u8::is_ascii_whitespace) {
            let body = self.parse_object(body, matches!(self.media_type().as_str(), "application/yaml"))?;
            self.parse_delete_body(&body, &mut opts)?;
        }
        if let (Some(orphan), Some(p)) = (opts.orphan_dependents, opts.propagation) {
            let p = match p {
                Propagation::Orphan => "Orphan",
                Propagation::Background => "Background",
                Propagation::Foreground => "Foreground",
            };
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "DeleteOptions",
                "",
                vec![Cause {
                    reason: "FieldValueInvalid",
                    message: format!(
                        "Invalid value: {p:?}: orphanDependents ({orphan}) and deletionPropagation cannot be both set"
                    ),
                    field: "propagationPolicy".into(),
                }],
            )
            .into());
        }
        Ok(opts)
    }

    fn parse_delete_body(&self, opts_body: &Value, opts: &mut DeleteOptions) -> Result<(), ApiError> {
        if let Some(k) = opts_body.get("kind").and_then(Value::as_str)
            && k != "DeleteOptions"
        {
            return Err(ApiError::bad_request(format!("expected a DeleteOptions body, got kind {k:?}")));
        }
        let pre = &opts_body["preconditions"];
        if !pre.is_null() && !pre.is_object() {
            return Err(ApiError::bad_request("DeleteOptions.preconditions must be an object"));
        }
        opts.uid = match &pre["uid"] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            _ => return Err(ApiError::bad_request("DeleteOptions.preconditions.uid must be a string")),
        };
        opts.resource_version = match &pre["resourceVersion"] {
            Value::Null => None,
            Value::String(s) => Some(
                s.parse::<u64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid preconditions.resourceVersion {s:?}")))?,
            ),
            _ => return Err(ApiError::bad_request("DeleteOptions.preconditions.resourceVersion must be a string")),
        };
        match &opts_body["dryRun"] {
            Value::Null => {}
            Value::Array(a) if a.iter().all(|v| v == "All") => opts.dry_run |= !a.is_empty(),
            _ => {
                return Err(ApiError::bad_request(
                    "DeleteOptions.dryRun: Unsupported value: supported values: \"All\"",
                ));
            }
        }
        if let Some(g) = opts_body.get("gracePeriodSeconds")
            && !g.is_null()
            && !g.is_i64()
        {
            return Err(ApiError::bad_request("DeleteOptions.gracePeriodSeconds must be an integer"));
        }
        match &opts_body["propagationPolicy"] {
            Value::Null => {}
            p => opts.propagation = Some(p.as_str().and_then(Propagation::parse).ok_or_else(unsupported_policy)?),
        }
        match &opts_body["orphanDependents"] {
            Value::Null => {}
            Value::Bool(b) => opts.orphan_dependents = Some(*b),
            _ => return Err(ApiError::bad_request("DeleteOptions.orphanDependents must be a boolean")),
        }
        Ok(())
    }

    fn delete_one(&self, name: &str, opts: &DeleteOptions) -> Result<Deleted, Error> {
        deletion::delete(&self.state.store, &self.state.registry, self.kind, self.ns(), name, opts)
    }

    pub(super) fn delete(&self, name: &str, body: Bytes) -> Result<Response<Body>, Error> {
        let opts = self.delete_options(&body)?;
        match self.delete_one(name, &opts)? {
            Deleted::Gone(s) => self.deleted(&s.value()),
            // kube-apiserver answers 202 for an object left in place only when asked not to orphan.
            Deleted::Pending(s) if opts.orphan_dependents == Some(false) => {
                self.object_response(StatusCode::ACCEPTED, &s)
            }
            Deleted::Pending(s) => self.object_response(StatusCode::OK, &s),
            Deleted::DryRun(v) if v["metadata"]["deletionTimestamp"].is_null() => self.deleted(&v),
            Deleted::DryRun(v) => self.value_response(StatusCode::OK, &v),
        }
    }

    /// What kube-apiserver answers when a custom resource is deleted at once: a `Status` naming it, not the
    /// object.
    fn deleted(&self, v: &Value) -> Result<Response<Body>, Error> {
        let details = json!({
            "name": v["metadata"]["name"],
            "group": self.group(),
            "kind": self.kind.plural,
            "uid": v["metadata"]["uid"],
        });
        let status =
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details});
        Ok(super::super::json_response(StatusCode::OK, &status))
    }

    pub(super) fn delete_collection(&self, body: Bytes) -> Result<Response<Body>, Error> {
        let mut opts = self.delete_options(&body)?;
        // Preconditions name one object; a collection has none.
        (opts.uid, opts.resource_version) = (None, None);
        let page = self.store.list(self.namespace.as_deref(), None, 0, |o| self.selected(o));
        let mut items = Vec::new();
        for o in page.items {
            match self.delete_one(&o.name, &opts) {
                Ok(Deleted::Gone(s) | Deleted::Pending(s)) => items.push(s.value()),
                Ok(Deleted::DryRun(v)) => items.push(v),
                Err(e) if e.is_store(&StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        let list = json!({
            "apiVersion": self.kind.api_version(),
            "kind": self.kind.list_kind,
            "metadata": {"resourceVersion": self.state.store.current_rv().to_string()},
            "items": items,
        });
        Ok(crate::http::json_response(StatusCode::OK, &list))
    }
}
