//! DELETE and deletecollection: `DeleteOptions` (preconditions, dryRun), finalizers and `deletionTimestamp`,
//! and a deleted namespace's contents.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Value, json};

use super::{Body, Call, Format, Query, Written, now};
use crate::error::{ApiError, Error, ObjectName};
use crate::store::{Precondition, StoreError};

impl Call<'_> {
    /// Deletes every object of every namespaced kind in `namespace`, as kube's namespace controller does once
    /// a namespace is gone (objects with finalizers are marked and stay until their finalizers are removed).
    pub(super) fn delete_namespace_contents(&self, namespace: &str) {
        for kind in self.state.registry.kinds().iter().filter(|k| k.namespaced) {
            let Some(store) = self.state.store.kind(&kind.group, &kind.plural) else { continue };
            let call = Call {
                state: self.state,
                kind,
                store,
                namespace: Some(namespace.to_string()),
                query: Query::parse(None).expect("an empty query parses"),
                format: Format::Json,
                content_type: String::new(),
                user_agent: String::new(),
            };
            for o in store.list(Some(namespace), None, 0, |_| true).items {
                if let Err(err) = call.delete_one(&o.name, None, None, false) {
                    tracing::debug!(%err, "deleting namespace contents");
                }
            }
        }
    }

    /// Parses DeleteOptions: preconditions and dryRun.
    fn delete_options(&self, body: &[u8]) -> Result<(Option<String>, Option<u64>, bool), Error> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok((None, None, self.query.dry_run));
        }
        let opts = self.parse_object(body, matches!(self.media_type().as_str(), "application/yaml"))?;
        if let Some(k) = opts.get("kind").and_then(Value::as_str)
            && k != "DeleteOptions"
        {
            return Err(Error::from(ApiError::bad_request(format!("expected a DeleteOptions body, got kind {k:?}"))));
        }
        let pre = &opts["preconditions"];
        if !pre.is_null() && !pre.is_object() {
            return Err(Error::from(ApiError::bad_request("DeleteOptions.preconditions must be an object")));
        }
        let uid = match &pre["uid"] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            _ => return Err(Error::from(ApiError::bad_request("DeleteOptions.preconditions.uid must be a string"))),
        };
        let rv = match &pre["resourceVersion"] {
            Value::Null => None,
            Value::String(s) => Some(
                s.parse::<u64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid preconditions.resourceVersion {s:?}")))?,
            ),
            _ => {
                return Err(Error::from(ApiError::bad_request(
                    "DeleteOptions.preconditions.resourceVersion must be a string",
                )));
            }
        };
        let dry_run = match &opts["dryRun"] {
            Value::Null => self.query.dry_run,
            Value::Array(a) if a.iter().all(|v| v == "All") => !a.is_empty() || self.query.dry_run,
            _ => {
                return Err(Error::from(ApiError::bad_request(
                    "DeleteOptions.dryRun: Unsupported value: supported values: \"All\"",
                )));
            }
        };
        if let Some(g) = opts.get("gracePeriodSeconds")
            && !g.is_null()
            && !g.is_i64()
        {
            return Err(Error::from(ApiError::bad_request("DeleteOptions.gracePeriodSeconds must be an integer")));
        }
        if let Some(p) = opts.get("propagationPolicy")
            && !p.is_null()
            && !matches!(p.as_str(), Some("Orphan" | "Background" | "Foreground"))
        {
            return Err(Error::from(ApiError::bad_request(
                "DeleteOptions.propagationPolicy: Unsupported value: supported values: \"Foreground\", \"Background\", \"Orphan\"",
            )));
        }
        Ok((uid, rv, dry_run))
    }

    pub(super) fn delete(&self, name: &str, body: Bytes) -> Result<Response<Body>, Error> {
        let (uid, rv, dry_run) = self.delete_options(&body)?;
        let written = self.delete_one(name, uid.as_deref(), rv, dry_run)?;
        match written {
            Written::Stored(s) => self.object_response(StatusCode::OK, &s),
            Written::DryRun(v) => self.value_response(StatusCode::OK, &v),
        }
    }

    fn delete_one(&self, name: &str, uid: Option<&str>, rv: Option<u64>, dry_run: bool) -> Result<Written, Error> {
        for _ in 0..16 {
            let current = self.store.get(self.ns(), name).ok_or_else(|| self.not_found(name))?;
            let mut cur = current.value();
            let cur_uid = cur["metadata"]["uid"].as_str().unwrap_or_default().to_string();
            if let Some(uid) = uid
                && uid != cur_uid
            {
                return Err(Error::Precondition(
                    ObjectName::new(self.group(), &self.kind.plural, name),
                    format!("UID in precondition: {uid}, UID in object meta: {cur_uid}"),
                ));
            }
            if let Some(rv) = rv
                && rv != current.rv
            {
                return Err(Error::Precondition(
                    ObjectName::new(self.group(), &self.kind.plural, name),
                    format!("ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}", current.rv),
                ));
            }
            let has_finalizers = cur["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
            if dry_run {
                return Ok(Written::DryRun(cur));
            }
            let result = if has_finalizers {
                if cur["metadata"].get("deletionTimestamp").is_some() {
                    return Ok(Written::Stored(current));
                }
                // Finalizers hold the object: mark it, and delete it when the last finalizer is removed.
                cur["metadata"]["deletionTimestamp"] = json!(now());
                cur["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                self.store.put(self.ns(), name, Precondition::Version(current.rv), cur)
            } else {
                self.store.delete(self.ns(), name, Precondition::Version(current.rv))
            };
            match result {
                Ok(s) => {
                    if self.is_core_namespace() && !has_finalizers {
                        self.delete_namespace_contents(name);
                    }
                    return Ok(Written::Stored(s));
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(self.store_error(name, e)),
            }
        }
        Err(self.store_error(name, StoreError::Conflict))
    }

    pub(super) fn delete_collection(&self, body: Bytes) -> Result<Response<Body>, Error> {
        let (_, _, dry_run) = self.delete_options(&body)?;
        let page = self.store.list(self.namespace.as_deref(), None, 0, |o| self.selected(o));
        let mut items = Vec::new();
        for o in page.items {
            match self.delete_one(&o.name, None, None, dry_run) {
                Ok(Written::Stored(s)) => items.push(s.value()),
                Ok(Written::DryRun(v)) => items.push(v),
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
