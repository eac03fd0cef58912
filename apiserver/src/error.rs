//! API errors and their Kubernetes `Status` bodies.
//!
//! [`Error`] is what request handling and the garbage collector pass around: a store refusal stays typed
//! (so a caller can retry on a stale version or skip a vanished object without reading messages) until the
//! response is built, when it becomes an [`ApiError`] and then a `Status`.

use serde_json::{Value, json};

use crate::store::StoreError;

/// One failing field of an Invalid (422) error.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`, …
    pub reason: &'static str,
    /// What is wrong, for humans.
    pub message: String,
    /// The field's path, e.g. `spec.args`.
    pub field: String,
}

/// An error answered as a `meta.k8s.io/v1 Status` with an HTTP code, as kube-apiserver does.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// Machine-readable reason (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, …).
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// `details.name`, `details.group`, `details.kind` and `details.causes`.
    pub details: Option<Box<Details>>,
}

/// The `details` of a Status.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Details {
    /// The object's name.
    pub name: String,
    /// The object's API group.
    pub group: String,
    /// The resource (plural) or kind.
    pub kind: String,
    /// Per-field causes.
    pub causes: Vec<Cause>,
    /// Seconds a client should wait before retrying.
    pub retry_after_seconds: Option<u32>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError { code, reason, message: message.into(), details: None }
    }

    /// `plural.group`, or just `plural` for the core group, as kube-apiserver names resources in messages.
    fn qualified(plural: &str, group: &str) -> String {
        if group.is_empty() { plural.to_string() } else { format!("{plural}.{group}") }
    }

    fn with_details(mut self, group: &str, kind: &str, name: &str) -> Self {
        self.details = Some(Box::new(Details {
            name: name.to_string(),
            group: group.to_string(),
            kind: kind.to_string(),
            ..Details::default()
        }));
        self
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 404 NotFound for an object.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{} \"{name}\" not found", Self::qualified(plural, group)))
            .with_details(group, plural, name)
    }

    /// 404 NotFound for a path that names no resource.
    pub fn no_route(path: &str) -> Self {
        Self::new(404, "NotFound", format!("the server could not find the requested resource ({path})"))
    }

    /// 403 Forbidden for one object, e.g. a create in a namespace being deleted.
    pub fn forbidden(group: &str, plural: &str, name: &str, why: &str) -> Self {
        Self::new(403, "Forbidden", format!("{} \"{name}\" is forbidden: {why}", Self::qualified(plural, group)))
            .with_details(group, plural, name)
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(method: &str, what: &str) -> Self {
        Self::new(405, "MethodNotAllowed", format!("{method} is not supported on {what}"))
    }

    /// 406 NotAcceptable.
    pub fn not_acceptable(accept: &str) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!(
                "only the following media types are accepted: application/json, application/yaml (asked for {accept})"
            ),
        )
    }

    /// 409 AlreadyExists.
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        Self::new(409, "AlreadyExists", format!("{} \"{name}\" already exists", Self::qualified(plural, group)))
            .with_details(group, plural, name)
    }

    /// 409 Conflict on a stale resourceVersion or failed precondition.
    pub fn conflict(group: &str, plural: &str, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {} \"{name}\": {why}", Self::qualified(plural, group)),
        )
        .with_details(group, plural, name)
    }

    /// 409 Conflict of a server-side apply with fields other managers own: as kube-apiserver, the details
    /// carry only the causes (`FieldManagerConflict`, one per field), not the object.
    pub fn apply_conflict(message: impl Into<String>, causes: Vec<Cause>) -> Self {
        let mut err = Self::new(409, "Conflict", message);
        err.details = Some(Box::new(Details { causes, ..Details::default() }));
        err
    }

    /// 409 Conflict because the object changed since the client read it.
    pub fn stale(group: &str, plural: &str, name: &str) -> Self {
        Self::conflict(
            group,
            plural,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 410 Gone: a watch or continue token from a compacted resourceVersion.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 413 RequestEntityTooLarge.
    pub fn too_large(limit: usize) -> Self {
        Self::new(413, "RequestEntityTooLarge", format!("the request body is larger than {limit} bytes"))
    }

    /// 415 UnsupportedMediaType.
    /// 415 UnsupportedMediaType, naming the media types the request accepts (kube-apiserver's wording).
    pub fn unsupported_media_type(accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// 422 Invalid, naming every failing field.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let list = causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect::<Vec<_>>();
        let message = if list.len() == 1 {
            format!("{} \"{name}\" is invalid: {}", Self::qualified(kind, group), list[0])
        } else {
            format!("{} \"{name}\" is invalid: [{}]", Self::qualified(kind, group), list.join(", "))
        };
        let mut err = Self::new(422, "Invalid", message).with_details(group, kind, name);
        if let Some(d) = err.details.as_mut() {
            d.causes = causes;
        }
        err
    }

    /// 500 InternalError; only for bugs, never for bad input.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            let mut details = json!({});
            if !d.name.is_empty() {
                details["name"] = json!(d.name);
            }
            if !d.group.is_empty() {
                details["group"] = json!(d.group);
            }
            if !d.kind.is_empty() {
                details["kind"] = json!(d.kind);
            }
            if !d.causes.is_empty() {
                details["causes"] = d
                    .causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect();
            }
            if let Some(s) = d.retry_after_seconds {
                details["retryAfterSeconds"] = json!(s);
            }
            status["details"] = details;
        }
        status
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

/// The object an error is about: its API group, resource (plural) and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectName {
    /// The API group (`""` for core).
    pub group: String,
    /// The resource, e.g. `cmds`.
    pub resource: String,
    /// The object's name.
    pub name: String,
}

impl ObjectName {
    /// Names `name` of `resource` in `group`.
    pub fn new(group: &str, resource: &str, name: &str) -> Self {
        ObjectName { group: group.to_string(), resource: resource.to_string(), name: name.to_string() }
    }
}

/// Why an operation on objects failed, typed until a response is built from it.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The store refused an operation on one object (exists, missing, stale version, expired history).
    Store(StoreError, ObjectName),
    /// `DeleteOptions.preconditions` (uid or resourceVersion) do not hold for the current object.
    Precondition(ObjectName, String),
    /// Any other refusal, already described as a `Status` (bad input, validation, apply conflicts).
    Api(ApiError),
}

impl Error {
    /// A store refusal about `name` of `resource` in `group`.
    pub fn store(error: StoreError, group: &str, resource: &str, name: &str) -> Self {
        Error::Store(error, ObjectName::new(group, resource, name))
    }

    /// Whether this is the store's refusal `error` (e.g. a stale version worth retrying).
    pub fn is_store(&self, error: &StoreError) -> bool {
        matches!(self, Error::Store(e, _) if e == error)
    }

    /// The error as kube-apiserver would answer it.
    pub fn to_api(&self) -> ApiError {
        match self {
            Error::Store(error, o) => match error {
                StoreError::AlreadyExists => ApiError::already_exists(&o.group, &o.resource, &o.name),
                StoreError::NotFound => ApiError::not_found(&o.group, &o.resource, &o.name),
                StoreError::Conflict => ApiError::stale(&o.group, &o.resource, &o.name),
                StoreError::Expired { oldest } => {
                    ApiError::expired(format!("too old resource version (oldest kept: {oldest})"))
                }
            },
            Error::Precondition(o, why) => {
                ApiError::conflict(&o.group, &o.resource, &o.name, &format!("Precondition failed: {why}"))
            }
            Error::Api(e) => e.clone(),
        }
    }
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error::Api(e)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Api(e) => e,
            other => other.to_api(),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_api().fmt(f)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_become_statuses() {
        let stale = Error::store(StoreError::Conflict, "tilt.dev", "cmds", "a");
        assert!(stale.is_store(&StoreError::Conflict));
        let s = ApiError::from(stale).to_status();
        assert_eq!((s["code"].as_u64(), s["reason"].as_str()), (Some(409), Some("Conflict")));
        assert!(s["message"].as_str().unwrap().contains("has been modified"), "{s}");
        let gone = ApiError::from(Error::store(StoreError::NotFound, "", "pods", "p")).to_status();
        assert_eq!(gone["message"], "pods \"p\" not found");
        let pre = ApiError::from(Error::Precondition(ObjectName::new("tilt.dev", "cmds", "a"), "UID".into()));
        assert_eq!(pre.message, "Operation cannot be fulfilled on cmds.tilt.dev \"a\": Precondition failed: UID");
    }

    #[test]
    fn invalid_names_fields() {
        let err = ApiError::invalid(
            "tilt.dev",
            "Cmd",
            "x",
            vec![Cause { reason: "FieldValueInvalid", message: "bad".into(), field: "spec.args".into() }],
        );
        let s = err.to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["reason"], "Invalid");
        assert_eq!(s["details"]["causes"][0]["field"], "spec.args");
        assert_eq!(s["message"], "Cmd.tilt.dev \"x\" is invalid: spec.args: bad");
    }
}
