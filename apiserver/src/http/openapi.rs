//! OpenAPI v2 and v3 documents, generated on first request from the kinds' schemas and laid out as
//! kube-apiserver lays out its own: path-level `name`, `namespace` and `pretty` parameters, each operation's
//! query parameters, request bodies with their media types, and `x-kubernetes-group-version-kind` and
//! `x-kubernetes-action` on every operation (which `kubectl explain` uses to find a resource's schema).
//!
//! Where the server checks more than kube-apiserver's document says (the values `dryRun` and
//! `fieldValidation` take, object names, `apiVersion` and `kind` in a body, integer ranges), the schemas say
//! so too: a client generated from them, or a fuzzer, then sends what the server accepts. Error responses are
//! documented as the `Status` they are.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ListMeta, ObjectMeta, Status, WatchEvent};
use k8s_openapi::schemars;
use serde_json::{Map, Value, json};

use super::{Body, State, bytes_response};
use crate::error::ApiError;
use crate::kind::{Registry, ResourceKind};

/// The serialized documents.
pub(crate) struct Documents {
    v2: Bytes,
    v3_index: Bytes,
    v3: HashMap<String, (Bytes, String)>,
}

/// Which OpenAPI version a piece of a document is for: they spell parameters, bodies and `$ref`s differently.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Spec {
    V2,
    V3,
}

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const JSON_PATCH: &str = "dev.tilt.apiserver.JSONPatch";

/// Media types the server reads objects in, and writes them in.
const OBJECT_MEDIA: [&str; 2] = ["application/json", "application/yaml"];

fn reference(spec: Spec, name: &str) -> Value {
    match spec {
        Spec::V2 => json!({"$ref": format!("#/definitions/{name}")}),
        Spec::V3 => json!({"$ref": format!("#/components/schemas/{name}")}),
    }
}

/// `api/v1` for the core group, `apis/{group}/{version}` for the others: the URL prefix of a group version,
/// which is also its key in the OpenAPI v3 index.
fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") }
}

/// Points the `$ref`s that schemars writes for OpenAPI v3 at v2's `#/definitions/`.
fn refs_to_v2(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (key, child) in m.iter_mut() {
                match child {
                    Value::String(r) if key == "$ref" => {
                        if let Some(name) = r.strip_prefix("#/components/schemas/") {
                            *r = format!("#/definitions/{name}");
                        }
                    }
                    _ => refs_to_v2(child),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(refs_to_v2),
        _ => {}
    }
}

/// Bounds every integer schema by what its `format` holds: the server decodes into fixed-width integers and
/// refuses a number that does not fit, so the schema must not promise more.
fn bound_integers(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let bounds = match m.get("format").and_then(Value::as_str) {
                Some("int32") => Some((json!(i32::MIN), json!(i32::MAX))),
                Some("int64") => Some((json!(i64::MIN), json!(i64::MAX))),
                Some("uint32") => Some((json!(0), json!(u32::MAX))),
                Some("uint64" | "uint") => Some((json!(0), json!(u64::MAX))),
                Some("uint16") => Some((json!(0), json!(u16::MAX))),
                Some("uint8") => Some((json!(0), json!(u8::MAX))),
                Some("int16") => Some((json!(i16::MIN), json!(i16::MAX))),
                Some("int8") => Some((json!(i8::MIN), json!(i8::MAX))),
                _ => None,
            };
            if let Some((min, max)) = bounds {
                m.entry("minimum").or_insert(min);
                m.entry("maximum").or_insert(max);
            }
            m.values_mut().for_each(bound_integers);
        }
        Value::Array(a) => a.iter_mut().for_each(bound_integers),
        _ => {}
    }
}

/// What the server accepts as an object name (and checks on create): not empty, not `.` or `..`, no `/`
/// or `%`, at most 253 characters.
fn name_schema(max: u64) -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": max, "pattern": "^[^/%]+$", "not": {"enum": [".", ".."]}})
}

/// The kind's definition as kube-apiserver documents a custom resource: its schema, plus `apiVersion`,
/// `kind` and `metadata` (a reference to `ObjectMeta`, where [`shared_definitions`] puts what the server
/// checks of names), so that `kubectl explain` prints the same for both.
fn definition(k: &ResourceKind) -> Value {
    let mut schema = k.schema.clone();
    if let Some(m) = schema.as_object_mut() {
        m.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([{"group": k.group, "version": k.version, "kind": k.kind}]),
        );
        let props = m.entry("properties").or_insert_with(|| json!({}));
        if let Some(props) = props.as_object_mut() {
            props.insert("apiVersion".into(), json!({"type": "string", "description": API_VERSION_DOC}));
            props.insert("kind".into(), json!({"type": "string", "description": KIND_DOC}));
            props.insert(
                "metadata".into(),
                json!({"description": METADATA_DOC, "allOf": [reference(Spec::V3, OBJECT_META)]}),
            );
        }
    }
    bound_integers(&mut schema);
    schema
}

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DOC: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// `{Kind}List`, as kube-apiserver defines one for each kind.
fn list_definition(k: &ResourceKind) -> Value {
    json!({
        "description": format!("{} is a list of {}.", k.list_kind, k.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."},
            "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object represents."},
            "metadata": {"allOf": [reference(Spec::V3, LIST_META)], "description": "Standard list metadata."},
            "items": {"type": "array", "items": reference(Spec::V3, k.definition_name())},
        },
        "x-kubernetes-group-version-kind": [{"group": k.group, "version": k.version, "kind": k.list_kind}],
    })
}

/// The definition name of a kind's list: `dev.tilt.v1alpha1.CmdList`.
fn list_name(k: &ResourceKind) -> String {
    format!("{}List", k.definition_name())
}

/// Schemas every document refers to: object and list metadata, `Status` (every error), `DeleteOptions`,
/// `WatchEvent` and the patch bodies, with the schemas they refer to.
fn shared_definitions() -> Map<String, Value> {
    let mut generator = schemars::generate::SchemaSettings::openapi3().with(|s| s.meta_schema = None).into_generator();
    generator.subschema_for::<ObjectMeta>();
    generator.subschema_for::<ListMeta>();
    generator.subschema_for::<Status>();
    generator.subschema_for::<DeleteOptions>();
    generator.subschema_for::<WatchEvent<Value>>();
    let mut defs: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    // What the server checks of names: not empty, not `.` or `..`, no `/` or `%`; a name or a
    // `generateName` (an empty one is none).
    if let Some(meta) = defs.get_mut(OBJECT_META).and_then(Value::as_object_mut) {
        if let Some(props) = meta.get_mut("properties").and_then(Value::as_object_mut) {
            for (field, max, pattern) in [("name", 253, "^[^/%]+$"), ("generateName", 248, "^[^/%]*$")] {
                if let Some(p) = props.get_mut(field).and_then(Value::as_object_mut) {
                    p.insert("maxLength".into(), json!(max));
                    p.insert("pattern".into(), json!(pattern));
                    p.insert("not".into(), json!({"enum": [".", ".."]}));
                }
            }
        }
        meta.insert(
            "anyOf".into(),
            json!([{"required": ["name"]}, {"required": ["generateName"], "properties": {"generateName": {"minLength": 1}}}]),
        );
    }
    // What the server checks in a DeleteOptions body.
    if let Some(props) = defs.get_mut(DELETE_OPTIONS).and_then(|d| d["properties"].as_object_mut()) {
        props.insert("kind".into(), json!({"type": "string", "enum": ["DeleteOptions"]}));
        props.insert("dryRun".into(), json!({"type": "array", "items": {"type": "string", "enum": ["All"]}}));
        props.insert(
            "propagationPolicy".into(),
            json!({"type": "string", "enum": ["Orphan", "Background", "Foreground"]}),
        );
        if let Some(pre) = props.get_mut("preconditions") {
            *pre = json!({
                "type": "object",
                "description": "Must be fulfilled before a deletion is carried out.",
                "properties": {
                    "resourceVersion": {"type": "string", "pattern": "^[0-9]+$", "maxLength": 20},
                    "uid": {"type": "string"},
                },
            });
        }
    }
    defs.insert(
        PATCH.into(),
        json!({"description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.", "type": "object"}),
    );
    defs.insert(
        JSON_PATCH.into(),
        json!({
            "description": "An RFC 6902 JSON Patch: the operations, applied in order.",
            "type": "array",
            "items": {
                "type": "object",
                "required": ["op", "path"],
                "properties": {
                    "op": {"type": "string", "enum": ["add", "remove", "replace", "move", "copy", "test"]},
                    "path": {"type": "string", "pattern": "^(/([^~/]|~[01])*)*$"},
                    "from": {"type": "string", "pattern": "^(/([^~/]|~[01])*)*$"},
                    "value": {},
                },
            },
        }),
    );
    for schema in defs.values_mut() {
        bound_integers(schema);
    }
    defs
}

/// The kind's definitions and every schema they refer to.
fn definitions(k: &ResourceKind) -> Vec<(String, Value)> {
    let mut out = vec![(k.definition_name().to_string(), definition(k)), (list_name(k), list_definition(k))];
    out.extend(k.definitions().iter().map(|(name, schema)| {
        let mut schema = schema.clone();
        bound_integers(&mut schema);
        (name.clone(), schema)
    }));
    out
}

/// One parameter, in the spelling of `spec`.
fn param(spec: Spec, name: &str, location: &str, schema: Value, description: &str) -> Value {
    let mut p = json!({"name": name, "in": location, "description": description});
    if location == "path" {
        p["required"] = json!(true);
    }
    let mut schema = schema;
    schema["uniqueItems"] = json!(true);
    match spec {
        Spec::V3 => p["schema"] = schema,
        Spec::V2 => {
            if let (Some(p), Some(s)) = (p.as_object_mut(), schema.as_object()) {
                // v2 parameters carry their schema keywords inline; v2 has no `not`.
                p.extend(s.iter().filter(|(k, _)| k.as_str() != "not").map(|(k, v)| (k.clone(), v.clone())));
            }
        }
    }
    p
}

fn query(spec: Spec, name: &str) -> Value {
    let string = || json!({"type": "string"});
    let boolean = || json!({"type": "boolean"});
    let (schema, description) = match name {
        "pretty" => (string(), "If 'true', then the output is pretty printed."),
        "allowWatchBookmarks" => (boolean(), "allowWatchBookmarks requests watch events with type \"BOOKMARK\"."),
        "continue" => (
            string(),
            "The continue option should be set when retrieving more results from the server; its value comes from a previous list's metadata.continue.",
        ),
        "fieldSelector" => (
            string(),
            "A selector to restrict the list of returned objects by their fields (metadata.name, metadata.namespace). Defaults to everything.",
        ),
        "labelSelector" => {
            (string(), "A selector to restrict the list of returned objects by their labels. Defaults to everything.")
        }
        "limit" => (
            json!({"type": "integer"}),
            "limit is a maximum number of responses to return for a list call; more are announced by metadata.continue.",
        ),
        "resourceVersion" => (
            string(),
            "resourceVersion sets a constraint on what resource versions a request may be served from; a watch starts after it.",
        ),
        "resourceVersionMatch" => {
            (string(), "resourceVersionMatch determines how resourceVersion is applied to list calls.")
        }
        "sendInitialEvents" => (
            boolean(),
            "With watch=true, the stream begins with the current objects, then a BOOKMARK annotated k8s.io/initial-events-end.",
        ),
        "timeoutSeconds" => (json!({"type": "integer", "minimum": 0}), "Timeout for the list/watch call."),
        "watch" => (
            boolean(),
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
        ),
        "dryRun" => (
            json!({"type": "string", "enum": ["All"]}),
            "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
        ),
        "fieldManager" => (
            json!({"type": "string", "maxLength": 128}),
            "fieldManager is a name associated with the actor or entity that is making these changes. Required for apply requests (application/apply-patch).",
        ),
        "fieldValidation" => (
            json!({"type": "string", "enum": ["Ignore", "Warn", "Strict"]}),
            "How the server treats fields the schema does not declare: Ignore drops them, Warn (the default) drops them with a Warning header, Strict fails the request.",
        ),
        "force" => {
            (boolean(), "Force is going to \"force\" Apply requests: they re-acquire fields owned by other managers.")
        }
        "gracePeriodSeconds" => {
            (json!({"type": "integer"}), "The duration in seconds before the object should be deleted.")
        }
        "orphanDependents" => {
            (boolean(), "Deprecated: please use the PropagationPolicy. Should the dependent objects be orphaned.")
        }
        "propagationPolicy" => {
            (string(), "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'.")
        }
        other => unreachable!("no query parameter {other}"),
    };
    param(spec, name, "query", schema, description)
}

const LIST_PARAMS: &[&str] = &[
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
];
const WRITE_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation"];
const PATCH_PARAMS: &[&str] = &["dryRun", "fieldManager", "fieldValidation", "force"];
const DELETE_PARAMS: &[&str] = &["dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy"];
const DELETE_COLLECTION_PARAMS: &[&str] = &[
    "continue",
    "dryRun",
    "fieldSelector",
    "gracePeriodSeconds",
    "labelSelector",
    "limit",
    "orphanDependents",
    "propagationPolicy",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
];

/// One response: `schema` in each of `media` types.
fn response(spec: Spec, description: &str, schema: &str, media: &[&str]) -> Value {
    match spec {
        Spec::V2 => json!({"description": description, "schema": reference(spec, schema)}),
        Spec::V3 => {
            let content: Map<String, Value> =
                media.iter().map(|m| (m.to_string(), json!({"schema": reference(spec, schema)}))).collect();
            json!({"description": description, "content": content})
        }
    }
}

/// A request body: `schema` in each of `media` types (v2: one `body` parameter).
fn body(spec: Spec, media: &[(&str, &str)], required: bool) -> Value {
    match spec {
        Spec::V2 => json!({"name": "body", "in": "body", "required": required, "schema": reference(spec, media[0].1)}),
        Spec::V3 => {
            let content: Map<String, Value> =
                media.iter().map(|(m, s)| (m.to_string(), json!({"schema": reference(spec, s)}))).collect();
            json!({"content": content, "required": required})
        }
    }
}

/// Builds one kind's operations in one OpenAPI version.
struct Operations<'a> {
    k: &'a ResourceKind,
    spec: Spec,
}

impl Operations<'_> {
    /// An operation: its id, action, query parameters, body, and `responses` (code, description, schema).
    fn op(
        &self,
        id: &str,
        action: &str,
        params: &[&str],
        body: Option<Value>,
        responses: &[(&str, &str, &str)],
    ) -> Value {
        let k = self.k;
        let mut codes = Map::new();
        for (code, description, schema) in responses {
            let mut r = response(self.spec, description, schema, &OBJECT_MEDIA);
            if action == "list" && self.spec == Spec::V3 {
                // With watch=true, the body is a stream of WatchEvents.
                r["content"]["application/json;stream=watch"] = json!({"schema": reference(self.spec, WATCH_EVENT)});
            }
            codes.insert(code.to_string(), r);
        }
        codes.insert("401".into(), json!({"description": "Unauthorized"}));
        // Every refusal is a Status: bad input, a missing object, a conflict, an unsupported media type.
        codes.insert(
            "default".into(),
            response(self.spec, "A Status saying why the request failed", STATUS, &["application/json"]),
        );
        let mut op = json!({
            "description": format!("{action} {}", k.kind),
            "operationId": id,
            "tags": [format!("{}_{}", if k.group.is_empty() { "core" } else { &k.group }, k.version)],
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": {"group": k.group, "version": k.version, "kind": k.kind},
            "responses": codes,
        });
        let mut parameters: Vec<Value> = params.iter().map(|p| query(self.spec, p)).collect();
        match (self.spec, body) {
            (Spec::V2, Some(b)) => parameters.push(b),
            (Spec::V3, Some(b)) => op["requestBody"] = b,
            (_, None) => {}
        }
        if !parameters.is_empty() {
            op["parameters"] = json!(parameters);
        }
        op
    }

    /// Path-level parameters: `name` for object paths, `namespace` for namespaced kinds, and `pretty`.
    fn path_params(&self, object: bool) -> Value {
        let mut out = Vec::new();
        if object {
            out.push(param(self.spec, "name", "path", name_schema(253), &format!("name of the {}", self.k.kind)));
        }
        if self.k.namespaced {
            out.push(param(
                self.spec,
                "namespace",
                "path",
                name_schema(63),
                "object name and auth scope, such as for teams and projects",
            ));
        }
        out.push(query(self.spec, "pretty"));
        json!(out)
    }

    /// The kind's path items, keyed by path.
    fn paths(&self) -> Vec<(String, Value)> {
        let (k, spec) = (self.k, self.spec);
        let kind = k.definition_name().to_string();
        let list = list_name(k);
        let id = |verb: &str, suffix: &str| {
            let group: String = k
                .group
                .split(['.', '-'])
                .filter(|s| !s.is_empty())
                .map(|s| s[..1].to_ascii_uppercase() + &s[1..])
                .collect();
            let version = k.version[..1].to_ascii_uppercase() + &k.version[1..];
            let group = if group.is_empty() { "Core".to_string() } else { group };
            format!("{verb}{group}{version}{}{suffix}", k.kind)
        };
        let object_body = || body(spec, &OBJECT_MEDIA.map(|m| (m, kind.as_str())), true);
        let patch_body = || {
            body(
                spec,
                &[
                    ("application/merge-patch+json", PATCH),
                    ("application/json-patch+json", JSON_PATCH),
                    ("application/apply-patch+yaml", PATCH),
                ],
                true,
            )
        };
        let delete_body = || body(spec, &[("application/json", DELETE_OPTIONS)], false);
        let prefix = format!("/{}", group_version_path(&k.group, &k.version));
        let base = if k.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}", k.plural)
        } else {
            format!("{prefix}/{}", k.plural)
        };

        let mut collection = json!({
            "parameters": self.path_params(false),
            "get": self.op(&id("list", ""), "list", LIST_PARAMS, None, &[("200", "OK", &list)]),
        });
        let mut object = json!({
            "parameters": self.path_params(true),
            "get": self.op(&id("read", ""), "get", &[], None, &[("200", "OK", &kind)]),
        });
        if !k.is_read_only() {
            collection["post"] =
                self.op(&id("create", ""), "post", WRITE_PARAMS, Some(object_body()), &[("201", "Created", &kind)]);
            collection["delete"] = self.op(
                &id("deleteCollection", ""),
                "deletecollection",
                DELETE_COLLECTION_PARAMS,
                Some(delete_body()),
                &[("200", "OK", &list)],
            );
            object["put"] =
                self.op(&id("replace", ""), "put", WRITE_PARAMS, Some(object_body()), &[("200", "OK", &kind)]);
            object["patch"] = self.op(
                &id("patch", ""),
                "patch",
                PATCH_PARAMS,
                Some(patch_body()),
                &[("200", "OK", &kind), ("201", "Created", &kind)],
            );
            object["delete"] =
                self.op(&id("delete", ""), "delete", DELETE_PARAMS, Some(delete_body()), &[("200", "OK", &kind)]);
        }
        let mut out = vec![(base.clone(), collection), (format!("{base}/{{name}}"), object)];
        if k.has_status {
            let mut status = json!({
                "parameters": self.path_params(true),
                "get": self.op(&id("read", "Status"), "get", &[], None, &[("200", "OK", &kind)]),
            });
            if !k.is_read_only() {
                status["put"] = self.op(
                    &id("replace", "Status"),
                    "put",
                    WRITE_PARAMS,
                    Some(object_body()),
                    &[("200", "OK", &kind)],
                );
                status["patch"] =
                    self.op(&id("patch", "Status"), "patch", PATCH_PARAMS, Some(patch_body()), &[("200", "OK", &kind)]);
            }
            out.push((format!("{base}/{{name}}/status"), status));
        }
        if k.namespaced {
            let all = json!({
                "parameters": [query(spec, "pretty")],
                "get": self.op(&id("list", "ForAllNamespaces"), "list", LIST_PARAMS, None, &[("200", "OK", &list)]),
            });
            out.push((format!("{prefix}/{}", k.plural), all));
        }
        out
    }
}

fn hash_hex(bytes: &[u8]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    format!("{:016X}", h.finish())
}

impl Documents {
    /// Builds every document for `registry`.
    pub(crate) fn build(registry: &Registry) -> Self {
        let shared = shared_definitions();
        let mut all = shared.clone();
        let mut all_paths = Map::new();
        for k in registry.kinds() {
            all.extend(definitions(k));
            all_paths.extend(Operations { k, spec: Spec::V2 }.paths());
        }
        let mut v2 = json!({
            "swagger": "2.0",
            "info": {"title": "tilt-rs", "version": env!("CARGO_PKG_VERSION")},
            "paths": all_paths,
            "definitions": all,
        });
        refs_to_v2(&mut v2);
        let mut v3 = HashMap::new();
        let mut index = Map::new();
        for (g, v) in registry.group_versions() {
            let kinds: Vec<_> = registry.kinds().iter().filter(|k| k.group == g && k.version == v).collect();
            let mut schemas = shared.clone();
            schemas.extend(kinds.iter().flat_map(|k| definitions(k)));
            let gv_paths: Map<String, Value> =
                kinds.iter().flat_map(|k| Operations { k, spec: Spec::V3 }.paths()).collect();
            let doc = json!({
                "openapi": "3.0.0",
                "info": {"title": "tilt-rs", "version": env!("CARGO_PKG_VERSION")},
                "paths": gv_paths,
                "components": {
                    "schemas": schemas,
                    "securitySchemes": {"BearerToken": {"type": "apiKey", "in": "header", "name": "authorization", "description": "Bearer Token authentication"}},
                },
                "security": [{"BearerToken": []}],
            });
            let bytes = Bytes::from(doc.to_string());
            let hash = hash_hex(&bytes);
            let path = group_version_path(&g, &v);
            index.insert(path.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}));
            v3.insert(path, (bytes, hash));
        }
        Documents { v2: Bytes::from(v2.to_string()), v3_index: Bytes::from(json!({"paths": index}).to_string()), v3 }
    }
}

fn accepts_json(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        None => Ok(()),
        Some(a) if a.contains("json") || a.contains("*/*") => Ok(()),
        Some(a) => Err(ApiError::not_acceptable(a)),
    }
}

/// The server's documents, built on first use.
fn documents(state: &State) -> &Documents {
    state.openapi.get_or_init(|| Documents::build(&state.registry))
}

/// `/openapi/v2`.
pub(crate) fn v2(state: &State, headers: &HeaderMap) -> Result<Response<Body>, ApiError> {
    accepts_json(headers)?;
    Ok(bytes_response(StatusCode::OK, "application/json", documents(state).v2.clone()))
}

/// `/openapi/v3`: the index of group-version documents.
pub(crate) fn v3_index(state: &State) -> Response<Body> {
    bytes_response(StatusCode::OK, "application/json", documents(state).v3_index.clone())
}

/// `/openapi/v3/apis/{group}/{version}` and `/openapi/v3/api/{version}`; `path` is what follows `/openapi/v3/`.
pub(crate) fn v3_group_version(state: &State, path: &str, headers: &HeaderMap) -> Result<Response<Body>, ApiError> {
    accepts_json(headers)?;
    let (bytes, hash) =
        documents(state).v3.get(path).ok_or_else(|| ApiError::no_route(&format!("/openapi/v3/{path}")))?;
    let mut resp = bytes_response(StatusCode::OK, "application/json", bytes.clone());
    resp.headers_mut()
        .insert(header::ETAG, http::HeaderValue::from_str(&format!("\"{hash}\"")).expect("hex is a header value"));
    resp.headers_mut().insert(header::CACHE_CONTROL, http::HeaderValue::from_static("public, immutable"));
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v3_doc() -> Value {
        let docs = Documents::build(&Registry::tilt());
        serde_json::from_slice(&docs.v3["apis/tilt.dev/v1alpha1"].0).unwrap()
    }

    #[test]
    fn object_paths_declare_name_and_operations_their_query_parameters() {
        let doc = v3_doc();
        let item = &doc["paths"]["/apis/tilt.dev/v1alpha1/cmds/{name}"];
        let names: Vec<&str> =
            item["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["name", "pretty"]);
        assert_eq!(item["parameters"][0]["in"], "path");
        assert_eq!(item["parameters"][0]["required"], true);
        let op_params = |method: &str| -> Vec<String> {
            item[method]["parameters"]
                .as_array()
                .map(|a| a.iter().map(|p| p["name"].as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        };
        assert_eq!(op_params("patch"), ["dryRun", "fieldManager", "fieldValidation", "force"]);
        assert_eq!(op_params("delete"), ["dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy"]);
        assert!(item["patch"]["requestBody"]["content"]["application/merge-patch+json"].is_object());
        let list = &doc["paths"]["/apis/tilt.dev/v1alpha1/cmds"]["get"]["parameters"];
        let list: Vec<&str> = list.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert!(list.contains(&"watch") && list.contains(&"labelSelector") && list.contains(&"resourceVersionMatch"));
        assert_eq!(
            doc["paths"]["/apis/tilt.dev/v1alpha1/cmds"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
                ["$ref"],
            "#/components/schemas/dev.tilt.v1alpha1.CmdList"
        );
    }

    #[test]
    fn every_path_template_parameter_is_declared_and_every_ref_resolves() {
        let doc = v3_doc();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for template in path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))) {
                assert!(
                    item["parameters"].as_array().unwrap().iter().any(|p| p["name"] == template && p["in"] == "path"),
                    "{path} does not declare {template}"
                );
            }
        }
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => m.iter().for_each(|(k, v)| match v {
                    Value::String(r) if k == "$ref" => out.push(r.clone()),
                    _ => refs(v, out),
                }),
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let mut all = Vec::new();
        refs(&doc, &mut all);
        for r in all {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r} is not a v3 ref"));
            assert!(schemas.contains_key(name), "{r} does not resolve");
        }
    }

    #[test]
    fn read_only_kinds_have_read_operations_only() {
        let docs = Documents::build(&Registry::tilt());
        let doc: Value = serde_json::from_slice(&docs.v3["apis/apiextensions.k8s.io/v1"].0).unwrap();
        let item = &doc["paths"]["/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"];
        let methods: Vec<&String> = item.as_object().unwrap().keys().filter(|k| *k != "parameters").collect();
        assert_eq!(methods, ["get"]);
    }

    #[test]
    fn v2_parameters_are_inline_and_refs_point_at_definitions() {
        let docs = Documents::build(&Registry::tilt());
        let doc: Value = serde_json::from_slice(&docs.v2).unwrap();
        let item = &doc["paths"]["/apis/tilt.dev/v1alpha1/cmds/{name}"];
        assert_eq!(item["parameters"][0]["type"], "string");
        assert!(item["parameters"][0].get("not").is_none());
        let put = item["put"]["parameters"].as_array().unwrap();
        assert_eq!(put.last().unwrap()["schema"]["$ref"], "#/definitions/dev.tilt.v1alpha1.Cmd");
        assert!(!doc.to_string().contains("#/components/schemas/"));
    }

    #[test]
    fn kinds_are_documented_as_kube_apiserver_documents_custom_resources() {
        let doc = v3_doc();
        let cmd = &doc["components"]["schemas"]["dev.tilt.v1alpha1.Cmd"];
        assert_eq!(cmd["properties"]["apiVersion"], json!({"type": "string", "description": API_VERSION_DOC}));
        assert_eq!(
            cmd["properties"]["metadata"]["allOf"],
            json!([{"$ref": format!("#/components/schemas/{OBJECT_META}")}])
        );
        assert!(!cmd["required"].as_array().into_iter().flatten().any(|r| r == "metadata"), "{cmd}");
        // What the server checks of names is on ObjectMeta.
        let meta = &doc["components"]["schemas"][OBJECT_META];
        assert_eq!(meta["properties"]["name"]["pattern"], "^[^/%]+$");
        assert_eq!(meta["anyOf"][0], json!({"required": ["name"]}));
    }

    #[test]
    fn integer_formats_get_their_bounds() {
        let mut v = json!({"properties": {"a": {"type": "integer", "format": "int32"}, "b": {"type": "integer", "format": "uint64"}}});
        bound_integers(&mut v);
        assert_eq!(v["properties"]["a"]["maximum"], json!(i32::MAX));
        assert_eq!(v["properties"]["b"]["minimum"], json!(0));
    }
}
