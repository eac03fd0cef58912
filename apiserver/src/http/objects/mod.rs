//! Object and collection endpoints, one file per verb: `get`, `list`, `create`, `update`, `patch` and `delete`
//! (with deletecollection), sharing `write` (validation, server fields, managedFields, commit) and the
//! request context [`Call`] defined here.
//!
//! Handlers return the typed [`Error`]: a store refusal stays a [`StoreError`] (so `patch` can retry on a
//! stale version and deletecollection can skip a vanished object) until the response is built.

mod create;
mod delete;
mod get;
mod list;
mod patch;
mod query;
mod update;
mod write;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};

use self::query::FieldValidation;
pub(crate) use self::query::Query;
use super::{Body, Format, State, bytes_response, negotiate, table};
use crate::deletion::now;
use crate::error::{ApiError, Cause, Error};
use crate::fields::Writer;
use crate::kind::ResourceKind;
use crate::store::{KindStore, StoreError, StoredObject};

/// One request against one kind.
pub(crate) struct Call<'a> {
    pub state: &'a State,
    pub kind: &'a Arc<ResourceKind>,
    pub store: &'a Arc<KindStore>,
    /// The namespace of the path; `None` for cluster-scoped kinds and for lists across all namespaces.
    pub namespace: Option<String>,
    pub query: Query,
    pub format: Format,
    content_type: String,
    user_agent: String,
}

/// What a write produced.
enum Written {
    /// A stored version.
    Stored(Arc<StoredObject>),
    /// A dry run's result, not stored.
    DryRun(Value),
}

/// Whether a write went through the main resource or `/status`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Main,
    Status,
}

enum Operation {
    Create,
    Update,
    /// Server-side apply: the merged object already carries its managedFields.
    Apply,
}

impl<'a> Call<'a> {
    pub fn new<B>(
        state: &'a State,
        kind: &'a Arc<ResourceKind>,
        store: &'a Arc<KindStore>,
        namespace: Option<String>,
        req: &Request<B>,
    ) -> Result<Self, ApiError> {
        let header =
            |h| req.headers().get(h).and_then(|v: &HeaderValue| v.to_str().ok()).unwrap_or_default().to_string();
        Ok(Call {
            state,
            kind,
            store,
            namespace,
            query: Query::parse(req.uri().query())?,
            format: negotiate(req.headers())?,
            content_type: header(header::CONTENT_TYPE),
            user_agent: header(header::USER_AGENT),
        })
    }

    pub async fn dispatch(
        self,
        method: &Method,
        name: Option<&str>,
        subresource: Option<&str>,
        body: Bytes,
    ) -> Result<Response<Body>, Error> {
        let target = if subresource == Some("status") { Target::Status } else { Target::Main };
        match (method.as_str(), name) {
            ("GET" | "HEAD", None) if self.query.watch => Ok(super::watch::serve(self, None).await?),
            ("GET" | "HEAD", Some(n)) if self.query.watch => Ok(super::watch::serve(self, Some(n.to_string())).await?),
            ("GET" | "HEAD", None) => self.list(),
            ("GET" | "HEAD", Some(n)) => self.get(n),
            ("POST", None) => self.create(body),
            ("DELETE", None) => self.delete_collection(body),
            ("PUT", Some(n)) => self.update(n, target, body),
            ("PATCH", Some(n)) => self.patch(n, target, body),
            ("DELETE", Some(n)) if target == Target::Main => self.delete(n, body),
            (m, _) => Err(Error::Api(ApiError::method_not_allowed(
                m,
                &format!("{}{}", self.kind.plural, if name.is_some() { "/{name}" } else { "" }),
            ))),
        }
    }

    fn group(&self) -> &str {
        &self.kind.group
    }

    /// The namespace objects of this call live in; empty for cluster-scoped kinds.
    fn ns(&self) -> &str {
        self.namespace.as_deref().unwrap_or_default()
    }

    /// Whether an object is in this call's namespace and passes its selectors.
    fn selected(&self, o: &StoredObject) -> bool {
        let labels = &self.query.labels;
        (labels.is_empty() || labels.matches(&o.labels)) && self.query.fields.matches(&o.namespace, &o.name)
    }

    /// The store's refusal of `name`, typed until the response is built.
    fn store_error(&self, name: &str, err: StoreError) -> Error {
        Error::store(err, self.group(), &self.kind.plural, name)
    }

    fn not_found(&self, name: &str) -> Error {
        self.store_error(name, StoreError::NotFound)
    }

    fn manager(&self) -> String {
        self.query.field_manager.clone().unwrap_or_else(|| {
            let agent = self.user_agent.split('/').next().unwrap_or_default().trim();
            if agent.is_empty() { "unknown".into() } else { agent.chars().take(128).collect() }
        })
    }

    /// Who is writing, for managedFields.
    fn writer(&self, target: Target) -> Writer {
        Writer {
            manager: self.manager(),
            subresource: if target == Target::Status { "status".into() } else { String::new() },
            api_version: self.kind.api_version(),
            time: now(),
        }
    }

    fn media_type(&self) -> String {
        self.content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
    }

    /// Parses a JSON or YAML body into an object.
    fn parse_object(&self, body: &[u8], yaml: bool) -> Result<Value, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request("the request body is empty"));
        }
        let value: Value = if yaml {
            let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the YAML body is not UTF-8"))?;
            serde_saphyr::from_str(text).map_err(|e| ApiError::bad_request(format!("invalid YAML: {e}")))?
        } else {
            serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?
        };
        if !value.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        Ok(value)
    }

    /// Parses the body of a create or update.
    fn parse_write_body(&self, body: &[u8]) -> Result<Value, ApiError> {
        match self.media_type().as_str() {
            "" | "application/json" | "*/*" => self.parse_object(body, false),
            "application/yaml" | "application/x-yaml" | "text/yaml" => self.parse_object(body, true),
            _ => Err(ApiError::unsupported_media_type(&["application/json", "application/yaml"])),
        }
    }

    fn check_type_meta(&self, object: &Value) -> Result<(), ApiError> {
        let expected = self.kind.api_version();
        if let Some(v) = object.get("apiVersion").filter(|v| !v.is_null())
            && v.as_str() != Some(expected.as_str())
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({}) does not match the expected API version ({expected})",
                v.as_str().unwrap_or("?")
            )));
        }
        if let Some(k) = object.get("kind").filter(|v| !v.is_null())
            && k.as_str() != Some(self.kind.kind.as_str())
        {
            // kube-apiserver: 422 about the kind the data names.
            let Some(named) = k.as_str() else { return Err(ApiError::bad_request("kind must be a string")) };
            return Err(ApiError::invalid(
                self.group(),
                named,
                object["metadata"]["name"].as_str().unwrap_or_default(),
                vec![Cause {
                    reason: "FieldValueInvalid",
                    message: format!("Invalid value: {named:?}: must be {}", self.kind.kind),
                    field: "kind".into(),
                }],
            ));
        }
        Ok(())
    }

    /// Validates and normalizes `object`, returning it and any warnings.
    fn validate(&self, name: &str, object: Value) -> Result<(Value, Vec<String>), ApiError> {
        let checked = self.kind.check(object).map_err(|cause| self.invalid(name, cause))?;
        let warnings = match self.query.field_validation {
            FieldValidation::Ignore => Vec::new(),
            _ if checked.unknown_fields.is_empty() => Vec::new(),
            FieldValidation::Strict => {
                let list: Vec<String> =
                    checked.unknown_fields.iter().map(|f| format!("unknown field \"{f}\"")).collect();
                let kind = &self.kind.kind;
                return Err(ApiError::bad_request(format!(
                    "{kind} in version {:?} cannot be handled as a {kind}: strict decoding error: {}",
                    self.kind.version,
                    list.join(", ")
                )));
            }
            FieldValidation::Warn => checked.unknown_fields.iter().map(|f| format!("unknown field \"{f}\"")).collect(),
        };
        Ok((checked.object, warnings))
    }

    fn invalid(&self, name: &str, cause: Cause) -> ApiError {
        ApiError::invalid(self.group(), &self.kind.kind, name, vec![cause])
    }

    fn respond(&self, code: StatusCode, written: Written, warnings: &[String]) -> Result<Response<Body>, Error> {
        let mut resp = match written {
            Written::Stored(s) => self.object_response(code, &s),
            Written::DryRun(v) => self.value_response(code, &v),
        }?;
        // kube-apiserver keeps a response's warnings within 4 KiB; clients also cap how many headers they
        // read (Python's http.client: 100).
        let mut budget = 4096usize;
        for w in warnings.iter().take(64) {
            let value = format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""));
            let Some(left) = budget.checked_sub(value.len()) else { break };
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().append(header::WARNING, v);
                budget = left;
            }
        }
        Ok(resp)
    }

    /// An object, in the negotiated format.
    fn object_response(&self, code: StatusCode, obj: &StoredObject) -> Result<Response<Body>, Error> {
        match self.format {
            Format::Json => Ok(bytes_response(code, "application/json", obj.json.clone())),
            _ => self.value_response(code, &obj.value()),
        }
    }

    fn value_response(&self, code: StatusCode, v: &Value) -> Result<Response<Body>, Error> {
        match self.format {
            Format::Json => Ok(super::json_response(code, v)),
            Format::Yaml => yaml_response(code, v),
            Format::Table => {
                let t = table::table(
                    self.kind,
                    std::iter::once(v),
                    json!({"resourceVersion": v["metadata"]["resourceVersion"]}),
                    &self.query.include_object,
                );
                Ok(super::json_response(code, &t))
            }
            Format::PartialMetadata => Ok(super::json_response(code, &partial_metadata(v))),
        }
    }
}

fn yaml_response(code: StatusCode, v: &Value) -> Result<Response<Body>, Error> {
    let text =
        tilt_apis::yaml::to_string(v).map_err(|e| Error::Api(ApiError::internal(format!("encoding YAML: {e}"))))?;
    Ok(bytes_response(code, "application/yaml", Bytes::from(text)))
}

/// `PartialObjectMetadata` of an object.
pub(crate) fn partial_metadata(v: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": v["metadata"]})
}
