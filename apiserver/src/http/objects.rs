//! Object and collection endpoints: get, list, create, update, patch, delete, deletecollection.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};

use super::{Body, Format, State, bytes_response, negotiate, table};
use crate::error::{ApiError, Cause};
use crate::fields::{self, Writer};
use crate::kind::ResourceKind;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{KindStore, ListPage, Precondition, StoreError, StoredObject};

/// `fieldValidation`: what to do with fields the schema does not declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldValidation {
    /// Reject with 400.
    Strict,
    /// Drop them, with a `Warning` header.
    Warn,
    /// Drop them silently.
    Ignore,
}

/// The query parameters the API understands.
pub(crate) struct Query {
    pub watch: bool,
    pub resource_version: Option<String>,
    pub timeout_seconds: Option<u64>,
    pub allow_bookmarks: bool,
    pub send_initial_events: bool,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: usize,
    pub continue_token: Option<String>,
    pub dry_run: bool,
    pub field_manager: Option<String>,
    pub force: bool,
    pub field_validation: FieldValidation,
    pub include_object: String,
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" | "" => Ok(false),
        _ => Err(ApiError::bad_request(format!("invalid value {v:?} for {key}: expected true or false"))),
    }
}

impl Query {
    /// Parses a query string; empty pairs (kube-rs sends `?&…`) are skipped.
    pub fn parse(query: Option<&str>) -> Result<Query, ApiError> {
        let mut q = Query {
            watch: false,
            resource_version: None,
            timeout_seconds: None,
            allow_bookmarks: false,
            send_initial_events: false,
            labels: LabelSelector::default(),
            fields: FieldSelector::default(),
            limit: 0,
            continue_token: None,
            dry_run: false,
            field_manager: None,
            force: false,
            field_validation: FieldValidation::Warn,
            include_object: "Metadata".into(),
        };
        for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match k.as_ref() {
                "watch" => q.watch = parse_bool(&k, &v)?,
                "resourceVersion" if !v.is_empty() => q.resource_version = Some(v.into_owned()),
                "timeoutSeconds" => {
                    q.timeout_seconds = Some(v.parse().map_err(|_| {
                        ApiError::bad_request(format!("invalid value {v:?} for timeoutSeconds: expected a number"))
                    })?)
                }
                "allowWatchBookmarks" => q.allow_bookmarks = parse_bool(&k, &v)?,
                "sendInitialEvents" => q.send_initial_events = parse_bool(&k, &v)?,
                "labelSelector" => {
                    q.labels = LabelSelector::parse(&v)
                        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?
                }
                "fieldSelector" => q.fields = FieldSelector::parse(&v).map_err(ApiError::bad_request)?,
                "limit" => {
                    let n: i64 = v.parse().map_err(|_| {
                        ApiError::bad_request(format!("invalid value {v:?} for limit: expected a number"))
                    })?;
                    q.limit = n.max(0) as usize;
                }
                "continue" if !v.is_empty() => q.continue_token = Some(v.into_owned()),
                "dryRun" => match v.as_ref() {
                    "All" => q.dry_run = true,
                    "" => {}
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "Unsupported value: {other:?}: supported values: \"All\""
                        )));
                    }
                },
                "fieldManager" if !v.is_empty() => {
                    if v.len() > 128 {
                        return Err(ApiError::bad_request("fieldManager: Too long: may not be longer than 128"));
                    }
                    q.field_manager = Some(v.into_owned())
                }
                "force" => q.force = parse_bool(&k, &v)?,
                "fieldValidation" => {
                    q.field_validation = match v.as_ref() {
                        "Strict" => FieldValidation::Strict,
                        "Warn" | "" => FieldValidation::Warn,
                        "Ignore" => FieldValidation::Ignore,
                        other => {
                            return Err(ApiError::bad_request(format!(
                                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
                            )));
                        }
                    }
                }
                "includeObject" => q.include_object = v.into_owned(),
                _ => {}
            }
        }
        Ok(q)
    }
}

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

fn valid_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("name or generateName is required".into());
    }
    if name == "." || name == ".." || name.contains('/') || name.contains('%') {
        return Err(format!("Invalid value: {name:?}: may not be '.' or '..' and may not contain '/' or '%'"));
    }
    if name.len() > 253 {
        return Err(format!("Invalid value: {name:?}: must be no more than 253 characters"));
    }
    Ok(())
}

fn now() -> String {
    jiff::Timestamp::now().round(jiff::Unit::Second).unwrap_or_else(|_| jiff::Timestamp::now()).to_string()
}

fn random_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

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

impl<'a> Call<'a> {
    pub fn new<B>(
        state: &'a State,
        kind: &'a Arc<ResourceKind>,
        store: &'a Arc<KindStore>,
        namespace: Option<String>,
        req: &Request<B>,
    ) -> Result<Self, ApiError> {
        let header = |h| req.headers().get(h).and_then(|v: &HeaderValue| v.to_str().ok()).unwrap_or_default().to_string();
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
    ) -> Result<Response<Body>, ApiError> {
        let target = if subresource == Some("status") { Target::Status } else { Target::Main };
        match (method.as_str(), name) {
            ("GET" | "HEAD", None) if self.query.watch => super::watch::serve(self, None).await,
            ("GET" | "HEAD", Some(n)) if self.query.watch => super::watch::serve(self, Some(n.to_string())).await,
            ("GET" | "HEAD", None) => self.list(),
            ("GET" | "HEAD", Some(n)) => self.get(n),
            ("POST", None) => self.create(body),
            ("DELETE", None) => self.delete_collection(body),
            ("PUT", Some(n)) => self.update(n, target, body),
            ("PATCH", Some(n)) => self.patch(n, target, body),
            ("DELETE", Some(n)) if target == Target::Main => self.delete(n, body),
            (m, _) => Err(ApiError::method_not_allowed(
                m,
                &format!("{}{}", self.kind.plural, if name.is_some() { "/{name}" } else { "" }),
            )),
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

    /// What kube-apiserver's NamespaceLifecycle admission checks before a create: the namespace exists and
    /// is not being deleted. Only when the core Namespace kind is served.
    fn check_namespace_open(&self, name: &str) -> Result<(), ApiError> {
        let Some(namespaces) = self
            .state
            .registry
            .get("", "v1", "namespaces")
            .and_then(|_| self.state.store.kind("", "namespaces"))
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

    fn is_core_namespace(&self) -> bool {
        self.kind.group.is_empty() && self.kind.plural == "namespaces"
    }

    /// Deletes every object of every namespaced kind in `namespace`, as kube's namespace controller does once
    /// a namespace is gone (objects with finalizers are marked and stay until their finalizers are removed).
    fn delete_namespace_contents(&self, namespace: &str) {
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

    fn not_found(&self, name: &str) -> ApiError {
        ApiError::not_found(self.group(), &self.kind.plural, name)
    }

    fn store_error(&self, name: &str, err: StoreError) -> ApiError {
        match err {
            StoreError::AlreadyExists => ApiError::already_exists(self.group(), &self.kind.plural, name),
            StoreError::NotFound => self.not_found(name),
            StoreError::Conflict => ApiError::stale(self.group(), &self.kind.plural, name),
            StoreError::Expired { oldest } => ApiError::expired(format!("too old resource version (oldest kept: {oldest})")),
        }
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
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }

    fn check_type_meta(&self, object: &Value) -> Result<(), ApiError> {
        let expected = self.kind.api_version();
        if let Some(v) = object.get("apiVersion").filter(|v| !v.is_null())
            && v.as_str() != Some(expected.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({}) does not match the expected API version ({expected})",
                    v.as_str().unwrap_or("?")
                )));
            }
        if let Some(k) = object.get("kind").filter(|v| !v.is_null())
            && k.as_str() != Some(self.kind.kind.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "the kind in the data ({}) does not match the expected kind ({})",
                    k.as_str().unwrap_or("?"),
                    self.kind.kind
                )));
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
                let list: Vec<String> = checked.unknown_fields.iter().map(|f| format!("unknown field \"{f}\"")).collect();
                return Err(ApiError::bad_request(format!("strict decoding error: {}", list.join(", "))));
            }
            FieldValidation::Warn => checked.unknown_fields.iter().map(|f| format!("unknown field \"{f}\"")).collect(),
        };
        Ok((checked.object, warnings))
    }

    fn invalid(&self, name: &str, cause: Cause) -> ApiError {
        ApiError::invalid(self.group(), &self.kind.kind, name, vec![cause])
    }

    /// The common tail of every write: merge with the current object, validate, stamp server fields, record
    /// field ownership, and commit under `pre`.
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        name: &str,
        current: Option<&Arc<StoredObject>>,
        mut incoming: Value,
        target: Target,
        operation: Operation,
        pre: Precondition,
        warnings: &mut Vec<String>,
    ) -> Result<Written, ApiError> {
        // A JSON patch can replace the whole document with a non-object.
        if !incoming.is_object() {
            return Err(self.invalid(name, Cause { reason: "FieldValueInvalid", message: "Invalid value: the object must be a JSON object".into(), field: String::new() }));
        }
        // Every create checks the name, including a server-side apply that creates.
        if current.is_none() {
            valid_name(name).map_err(|message| {
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
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            incoming["metadata"]["namespace"] = json!(self.ns());
            if current.is_none() {
                self.check_namespace_open(name)?;
            }
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
                for key in ["uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds"] {
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
                if self.is_core_namespace() {
                    // kube-apiserver's namespace strategy: a new namespace is Active.
                    r["status"] = json!({"phase": "Active"});
                }
                r
            }
        };
        if let Some(cur) = &current_value
            && target == Target::Main && spec_part(cur) != spec_part(&result) {
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
        if let (Some(cur), Some(stored)) = (&current_value, current) {
            if without_managed_fields(cur) == without_managed_fields(&result) {
                // A write that changes nothing is not a new version, and wakes no watcher.
                return Ok(Written::Stored(stored.clone()));
            }
            let finalizers_left = result["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
            if result["metadata"].get("deletionTimestamp").is_some() && !finalizers_left {
                if self.query.dry_run {
                    return Ok(Written::DryRun(result));
                }
                return self
                    .store
                    .delete(self.ns(), name, pre)
                    .map(|gone| {
                        if self.is_core_namespace() {
                            self.delete_namespace_contents(name);
                        }
                        Written::Stored(gone)
                    })
                    .map_err(|e| self.store_error(name, e));
            }
        }
        if self.query.dry_run {
            if current.is_none() && pre == Precondition::Absent && self.store.get(self.ns(), name).is_some() {
                return Err(self.store_error(name, StoreError::AlreadyExists));
            }
            return Ok(Written::DryRun(result));
        }
        self.store.put(self.ns(), name, pre, result).map(Written::Stored).map_err(|e| self.store_error(name, e))
    }

    fn respond(&self, code: StatusCode, written: Written, warnings: &[String]) -> Result<Response<Body>, ApiError> {
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
    fn object_response(&self, code: StatusCode, obj: &StoredObject) -> Result<Response<Body>, ApiError> {
        match self.format {
            Format::Json => Ok(bytes_response(code, "application/json", obj.json.clone())),
            _ => self.value_response(code, &obj.value()),
        }
    }

    fn value_response(&self, code: StatusCode, v: &Value) -> Result<Response<Body>, ApiError> {
        match self.format {
            Format::Json => Ok(super::json_response(code, v)),
            Format::Yaml => yaml_response(code, v),
            Format::Table => {
                let t = table::table(self.kind, std::iter::once(v), json!({"resourceVersion": v["metadata"]["resourceVersion"]}), &self.query.include_object);
                Ok(super::json_response(code, &t))
            }
            Format::PartialMetadata => Ok(super::json_response(code, &partial_metadata(v))),
        }
    }

    fn get(&self, name: &str) -> Result<Response<Body>, ApiError> {
        let obj = self.store.get(self.ns(), name).ok_or_else(|| self.not_found(name))?;
        self.object_response(StatusCode::OK, &obj)
    }

    fn list(&self) -> Result<Response<Body>, ApiError> {
        let (start, token_rv) = match &self.query.continue_token {
            Some(token) => {
                let (rv, start) = decode_continue(token)?;
                (Some(start), Some(rv))
            }
            None => (None, None),
        };
        let filter = |o: &StoredObject| self.selected(o);
        let page = match self.query.fields.exact_name() {
            // One namespace (or none) and one name pin a single key.
            Some(name) if !self.kind.namespaced || self.namespace.is_some() => {
                let rv = self.state.store.current_rv();
                let items = self.store.get(self.ns(), name).filter(|o| filter(o)).into_iter().collect();
                ListPage { rv, items, more: false }
            }
            _ => self.store.list(self.namespace.as_deref(), start.as_deref(), self.query.limit, filter),
        };
        // All pages of one list report the first page's version; a watch from it replays what changed since.
        let rv = token_rv.unwrap_or(page.rv);
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if page.more
            && let Some(last) = page.items.last() {
                meta["continue"] = json!(encode_continue(rv, &last.key()));
            }
        let list_kind = &self.kind.list_kind;
        match self.format {
            Format::Json => {
                let mut out = Vec::with_capacity(page.items.iter().map(|o| o.json.len() + 1).sum::<usize>() + 256);
                out.extend_from_slice(
                    format!(
                        r#"{{"apiVersion":"{}","kind":"{}","metadata":{},"items":["#,
                        self.kind.api_version(),
                        list_kind,
                        meta
                    )
                    .as_bytes(),
                );
                for (i, o) in page.items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(&o.json);
                }
                out.extend_from_slice(b"]}");
                Ok(bytes_response(StatusCode::OK, "application/json", Bytes::from(out)))
            }
            Format::Yaml => {
                let items: Vec<Value> = page.items.iter().map(|o| o.value()).collect();
                yaml_response(
                    StatusCode::OK,
                    &json!({"apiVersion": self.kind.api_version(), "kind": list_kind, "metadata": meta, "items": items}),
                )
            }
            Format::Table => {
                let values: Vec<Value> = page.items.iter().map(|o| o.value()).collect();
                let t = table::table(self.kind, values.iter(), meta, &self.query.include_object);
                Ok(super::json_response(StatusCode::OK, &t))
            }
            Format::PartialMetadata => {
                let items: Vec<Value> = page.items.iter().map(|o| partial_metadata(&o.value())).collect();
                Ok(super::json_response(
                    StatusCode::OK,
                    &json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": meta, "items": items}),
                ))
            }
        }
    }

    fn create(&self, body: Bytes) -> Result<Response<Body>, ApiError> {
        let mut obj = self.parse_write_body(&body)?;
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        let name = match obj["metadata"]["name"].as_str().filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => match obj["metadata"]["generateName"].as_str().filter(|n| !n.is_empty()) {
                Some(prefix) => format!("{prefix}{}", random_suffix()),
                None => {
                    return Err(self.invalid(
                        "",
                        Cause {
                            reason: "FieldValueRequired",
                            message: "Required value: name or generateName is required".into(),
                            field: "metadata.name".into(),
                        },
                    ));
                }
            },
        };
        // kube-apiserver checks a generateName prefix whenever it is set.
        if let Some(prefix) = obj["metadata"]["generateName"].as_str().filter(|p| !p.is_empty()) {
            // Room for the 5 random characters within a name's 253.
            let fits = || match prefix.len() {
                0..=248 => Ok(()),
                _ => Err(format!("Invalid value: {prefix:?}: must be no more than 248 characters")),
            };
            valid_name(prefix).and_then(|()| fits()).map_err(|message| {
                self.invalid(&name, Cause { reason: "FieldValueInvalid", message, field: "metadata.generateName".into() })
            })?;
        }
        let mut warnings = Vec::new();
        let written = self.write(&name, None, obj, Target::Main, Operation::Create, Precondition::Absent, &mut warnings)?;
        self.respond(StatusCode::CREATED, written, &warnings)
    }

    fn update(&self, name: &str, target: Target, body: Bytes) -> Result<Response<Body>, ApiError> {
        let obj = self.parse_write_body(&body)?;
        if let Some(body_name) = obj["metadata"]["name"].as_str()
            && body_name != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body_name}) does not match the name on the URL ({name})"
                )));
            }
        let rv = match &obj["metadata"]["resourceVersion"] {
            Value::String(s) if !s.is_empty() => s.parse::<u64>().map_err(|_| {
                self.invalid(name, Cause {
                    reason: "FieldValueInvalid",
                    message: format!("Invalid value: {s:?}: must be a decimal resourceVersion"),
                    field: "metadata.resourceVersion".into(),
                })
            })?,
            _ => {
                return Err(self.invalid(name, Cause {
                    reason: "FieldValueInvalid",
                    message: "Invalid value: 0x0: must be specified for an update".into(),
                    field: "metadata.resourceVersion".into(),
                }));
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

    fn patch(&self, name: &str, target: Target, body: Bytes) -> Result<Response<Body>, ApiError> {
        enum Kind {
            Merge(Value),
            Json(json_patch::Patch),
            Apply(Value),
        }
        let patch = match self.media_type().as_str() {
            "application/merge-patch+json" => Kind::Merge(self.parse_object(&body, false)?),
            "application/json-patch+json" => Kind::Json(
                serde_json::from_slice(&body)
                    .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?,
            ),
            "application/apply-patch+yaml" | "application/apply-patch+json" => {
                Kind::Apply(self.parse_object(&body, true)?)
            }
            other => return Err(ApiError::unsupported_media_type(other)),
        };
        if matches!(patch, Kind::Apply(_)) && self.query.field_manager.is_none() {
            return Err(ApiError::bad_request(
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            ));
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
                let written = self.write(name, None, obj, Target::Main, Operation::Apply, Precondition::Absent, &mut warnings);
                match written {
                    Err(e) if e.reason == "AlreadyExists" => continue,
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
                        self.invalid(name, Cause { reason: "FieldValueInvalid", message: e.to_string(), field: String::new() })
                    })?;
                    (v, Operation::Update)
                }
                Kind::Apply(config) => (self.apply_config(name, Some(&cur), config, target)?, Operation::Apply),
            };
            // A patch that carries a resourceVersion pins it: optimistic concurrency, as for PUT. On a lost
            // race the loop re-reads, so a pinned stale version then fails here.
            if let Value::String(s) = &patched["metadata"]["resourceVersion"]
                && *s != current.rv.to_string() {
                    return Err(self.store_error(name, StoreError::Conflict));
                }
            match self.write(name, Some(&current), patched, target, operation, Precondition::Version(current.rv), &mut warnings) {
                Err(e) if e.reason == "Conflict" && e.message.contains("has been modified") => continue,
                other => return self.respond(StatusCode::OK, other?, &warnings),
            }
        }
        Err(self.store_error(name, StoreError::Conflict))
    }

    /// Server-side apply of `config` onto `current`.
    fn apply_config(&self, name: &str, current: Option<&Value>, config: &Value, target: Target) -> Result<Value, ApiError> {
        self.check_type_meta(config)?;
        let mut config = config.clone();
        if let Some(n) = config["metadata"]["name"].as_str()
            && n != name {
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
            let list: Vec<String> = conflicts.iter().map(|c| format!("conflict with \"{}\": {}", c.manager, c.field)).collect();
            let mut err = ApiError::conflict(
                self.group(),
                &self.kind.plural,
                name,
                &format!("Apply failed with {} conflict{}: {}", list.len(), if list.len() == 1 { "" } else { "s" }, list.join(", ")),
            );
            err.message = format!("Apply failed with {} conflict{}: {}", list.len(), if list.len() == 1 { "" } else { "s" }, list.join("\n"));
            if let Some(d) = err.details.as_mut() {
                d.causes = conflicts
                    .iter()
                    .map(|c| Cause { reason: "FieldManagerConflict", message: format!("conflict with \"{}\"", c.manager), field: c.field.clone() })
                    .collect();
            }
            err
        })
    }

    /// Parses DeleteOptions: preconditions and dryRun.
    fn delete_options(&self, body: &[u8]) -> Result<(Option<String>, Option<u64>, bool), ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok((None, None, self.query.dry_run));
        }
        let opts = self.parse_object(body, matches!(self.media_type().as_str(), "application/yaml"))?;
        if let Some(k) = opts.get("kind").and_then(Value::as_str)
            && k != "DeleteOptions" {
                return Err(ApiError::bad_request(format!("expected a DeleteOptions body, got kind {k:?}")));
            }
        let pre = &opts["preconditions"];
        if !pre.is_null() && !pre.is_object() {
            return Err(ApiError::bad_request("DeleteOptions.preconditions must be an object"));
        }
        let uid = match &pre["uid"] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            _ => return Err(ApiError::bad_request("DeleteOptions.preconditions.uid must be a string")),
        };
        let rv = match &pre["resourceVersion"] {
            Value::Null => None,
            Value::String(s) => Some(
                s.parse::<u64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid preconditions.resourceVersion {s:?}")))?,
            ),
            _ => return Err(ApiError::bad_request("DeleteOptions.preconditions.resourceVersion must be a string")),
        };
        let dry_run = match &opts["dryRun"] {
            Value::Null => self.query.dry_run,
            Value::Array(a) if a.iter().all(|v| v == "All") => !a.is_empty() || self.query.dry_run,
            _ => return Err(ApiError::bad_request("DeleteOptions.dryRun: Unsupported value: supported values: \"All\"")),
        };
        if let Some(g) = opts.get("gracePeriodSeconds")
            && !g.is_null() && !g.is_i64() {
                return Err(ApiError::bad_request("DeleteOptions.gracePeriodSeconds must be an integer"));
            }
        if let Some(p) = opts.get("propagationPolicy")
            && !p.is_null() && !matches!(p.as_str(), Some("Orphan" | "Background" | "Foreground")) {
                return Err(ApiError::bad_request(
                    "DeleteOptions.propagationPolicy: Unsupported value: supported values: \"Foreground\", \"Background\", \"Orphan\"",
                ));
            }
        Ok((uid, rv, dry_run))
    }

    fn delete(&self, name: &str, body: Bytes) -> Result<Response<Body>, ApiError> {
        let (uid, rv, dry_run) = self.delete_options(&body)?;
        let written = self.delete_one(name, uid.as_deref(), rv, dry_run)?;
        match written {
            Written::Stored(s) => self.object_response(StatusCode::OK, &s),
            Written::DryRun(v) => self.value_response(StatusCode::OK, &v),
        }
    }

    fn delete_one(&self, name: &str, uid: Option<&str>, rv: Option<u64>, dry_run: bool) -> Result<Written, ApiError> {
        for _ in 0..16 {
            let current = self.store.get(self.ns(), name).ok_or_else(|| self.not_found(name))?;
            let mut cur = current.value();
            let cur_uid = cur["metadata"]["uid"].as_str().unwrap_or_default().to_string();
            if let Some(uid) = uid
                && uid != cur_uid {
                    return Err(ApiError::conflict(
                        self.group(),
                        &self.kind.plural,
                        name,
                        &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {cur_uid}"),
                    ));
                }
            if let Some(rv) = rv
                && rv != current.rv {
                    return Err(ApiError::conflict(
                        self.group(),
                        &self.kind.plural,
                        name,
                        &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}", current.rv),
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

    fn delete_collection(&self, body: Bytes) -> Result<Response<Body>, ApiError> {
        let (_, _, dry_run) = self.delete_options(&body)?;
        let page = self.store.list(self.namespace.as_deref(), None, 0, |o| self.selected(o));
        let mut items = Vec::new();
        for o in page.items {
            match self.delete_one(&o.name, None, None, dry_run) {
                Ok(Written::Stored(s)) => items.push(s.value()),
                Ok(Written::DryRun(v)) => items.push(v),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let list = json!({
            "apiVersion": self.kind.api_version(),
            "kind": self.kind.list_kind,
            "metadata": {"resourceVersion": self.state.store.current_rv().to_string()},
            "items": items,
        });
        Ok(super::json_response(StatusCode::OK, &list))
    }
}

fn yaml_response(code: StatusCode, v: &Value) -> Result<Response<Body>, ApiError> {
    let text = tilt_apis::yaml::to_string(v).map_err(|e| ApiError::internal(format!("encoding YAML: {e}")))?;
    Ok(bytes_response(code, "application/yaml", Bytes::from(text)))
}

/// `PartialObjectMetadata` of an object.
pub(crate) fn partial_metadata(v: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": v["metadata"]})
}

fn encode_continue(rv: u64, last: &str) -> String {
    let token = json!({"rv": rv, "start": last});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(u64, String), ApiError> {
    let bad = || ApiError::bad_request("continue key is not valid");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    Ok((v["rv"].as_u64().ok_or_else(bad)?, v["start"].as_str().ok_or_else(bad)?.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_skips_empty_pairs_and_rejects_bad_values() {
        let q = Query::parse(Some("&watch=true&&resourceVersion=5&labelSelector=a%3Db")).unwrap();
        assert!(q.watch);
        assert_eq!(q.resource_version.as_deref(), Some("5"));
        assert!(Query::parse(Some("limit=x")).is_err());
        assert!(Query::parse(Some("labelSelector=a%20in%20x")).is_err());
        assert!(Query::parse(Some("dryRun=Some")).is_err());
    }

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(42, "abc");
        assert_eq!(decode_continue(&t).unwrap(), (42, "abc".to_string()));
        assert!(decode_continue("!!").is_err());
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
