//! PUT: replacing an object (or its status) under optimistic concurrency.

use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::Value;

use super::{Body, Call, Operation, Target};
use crate::error::{ApiError, Cause, Error};
use crate::store::{Precondition, StoreError};

impl Call<'_> {
    pub(super) fn update(&self, name: &str, target: Target, body: Bytes) -> Result<Response<Body>, Error> {
        self.query.check_write_options("UpdateOptions")?;
        let obj = self.parse_write_body(&body)?;
        if let Some(body_name) = obj["metadata"]["name"].as_str()
            && body_name != name
        {
            return Err(Error::from(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            ))));
        }
        let rv = match &obj["metadata"]["resourceVersion"] {
            Value::String(s) if !s.is_empty() => s.parse::<u64>().map_err(|_| {
                self.invalid(
                    name,
                    Cause {
                        reason: "FieldValueInvalid",
                        message: format!("Invalid value: {s:?}: must be a decimal resourceVersion"),
                        field: "metadata.resourceVersion".into(),
                    },
                )
            })?,
            // kube-apiserver names the resource (not the kind) in this one.
            _ => {
                return Err(Error::from(ApiError::invalid(
                    self.group(),
                    &self.kind.plural,
                    name,
                    vec![Cause {
                        reason: "FieldValueInvalid",
                        message: "Invalid value: 0: must be specified for an update".into(),
                        field: "metadata.resourceVersion".into(),
                    }],
                )));
            }
        };
        let current = self.store.get(self.ns(), name).ok_or_else(|| self.not_found(name))?;
        if current.rv != rv {
            return Err(self.store_error(name, StoreError::Conflict));
        }
        let mut warnings = Vec::new();
        let written =
            self.write(name, Some(&current), obj, target, Operation::Update, Precondition::Version(rv), &mut warnings)?;
        self.respond(StatusCode::OK, written, &warnings)
    }
}
