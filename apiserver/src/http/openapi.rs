//! OpenAPI v2 and v3 documents, generated on first request from the kinds' CRD schemas, with
//! `x-kubernetes-group-version-kind` so that `kubectl explain` finds them.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};
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

/// `dev.tilt.v1alpha1.Cmd`, `io.k8s.api.core.v1.Pod`: the definition name kube-openapi gives the kind.
fn definition_name(k: &ResourceKind) -> String {
    k.definition_name().to_string()
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

/// The kind's definition and every schema it refers to, for the v3 document (`v2`: with v2 `$ref`s).
fn definitions(k: &ResourceKind, v2: bool) -> Vec<(String, Value)> {
    let mut out = vec![(definition_name(k), definition(k))];
    out.extend(k.definitions().iter().map(|(name, schema)| (name.clone(), schema.clone())));
    if v2 {
        out.iter_mut().for_each(|(_, schema)| refs_to_v2(schema));
    }
    out
}

fn definition(k: &ResourceKind) -> Value {
    let mut schema = k.schema.clone();
    if let Some(m) = schema.as_object_mut() {
        m.insert("x-kubernetes-group-version-kind".into(), json!([{"group": k.group, "version": k.version, "kind": k.kind}]));
        if let Some(props) = m.get_mut("properties").and_then(Value::as_object_mut) {
            props.entry("apiVersion").or_insert_with(|| json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}));
            props.entry("kind").or_insert_with(|| json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}));
            props.entry("metadata").or_insert_with(|| json!({"type": "object", "description": "Standard object's metadata."}));
        }
    }
    schema
}

/// Path items for a kind's collection and object URLs, each operation tagged with the kind's GVK (which
/// `kubectl explain` uses to go from a resource to its schema).
fn paths(k: &ResourceKind, v3: bool) -> Vec<(String, Value)> {
    let reference = if v3 {
        json!({"$ref": format!("#/components/schemas/{}", definition_name(k))})
    } else {
        json!({"$ref": format!("#/definitions/{}", definition_name(k))})
    };
    let response = if v3 {
        json!({"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}})
    } else {
        json!({"200": {"description": "OK", "schema": reference}})
    };
    let gvk = json!({"group": k.group, "version": k.version, "kind": k.kind});
    let param = |name: &str, description: &str| {
        if v3 {
            json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
        } else {
            json!({"name": name, "in": "query", "description": description, "type": "string", "uniqueItems": true})
        }
    };
    // Clients (kubectl's QueryParamVerifier) look for these to know the server validates fields itself.
    let write_params = json!([
        param("dryRun", "When present, modifications are not persisted. Valid value: All."),
        param("fieldManager", "The name of the actor making the change."),
        param("fieldValidation", "How to treat unknown fields: Ignore, Warn or Strict."),
    ]);
    let op = |action: &str, verb: &str| {
        let mut op = json!({
            "operationId": format!("{verb}{}{}", k.kind, if action == "list" { "List" } else { "" }),
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
            "responses": response,
        });
        if matches!(action, "post" | "put" | "patch") {
            op["parameters"] = write_params.clone();
            if action == "patch" {
                op["parameters"].as_array_mut().expect("an array").push(param("force", "Force an apply, taking conflicting fields."));
            }
        }
        op
    };
    let prefix = format!("/{}", group_version_path(&k.group, &k.version));
    let base = if k.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", k.plural)
    } else {
        format!("{prefix}/{}", k.plural)
    };
    let mut out = if k.is_read_only() {
        vec![(base.clone(), json!({"get": op("list", "list")})), (format!("{base}/{{name}}"), json!({"get": op("get", "read")}))]
    } else {
        vec![
            (base.clone(), json!({"get": op("list", "list"), "post": op("post", "create"), "delete": op("deletecollection", "deleteCollection")})),
            (format!("{base}/{{name}}"), json!({"get": op("get", "read"), "put": op("put", "replace"), "patch": op("patch", "patch"), "delete": op("delete", "delete")})),
        ]
    };
    if k.has_status {
        let status = if k.is_read_only() {
            json!({"get": op("get", "readStatus")})
        } else {
            json!({"get": op("get", "readStatus"), "put": op("put", "replaceStatus"), "patch": op("patch", "patchStatus")})
        };
        out.push((format!("{base}/{{name}}/status"), status));
    }
    if k.namespaced {
        let mut list = op("list", "list");
        list["operationId"] = json!(format!("list{}ForAllNamespaces", k.kind));
        out.push((format!("{prefix}/{}", k.plural), json!({"get": list})));
    }
    out
}

fn hash_hex(bytes: &[u8]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    format!("{:016X}", h.finish())
}

impl Documents {
    /// Builds every document for `registry`.
    pub(crate) fn build(registry: &Registry) -> Self {
        let mut all = Map::new();
        let mut all_paths = Map::new();
        for k in registry.kinds() {
            all.extend(definitions(k, true));
            all_paths.extend(paths(k, false));
        }
        let v2 = json!({
            "swagger": "2.0",
            "info": {"title": "tilt-rs", "version": env!("CARGO_PKG_VERSION")},
            "paths": all_paths,
            "definitions": all,
        });
        let mut v3 = HashMap::new();
        let mut index = Map::new();
        for (g, v) in registry.group_versions() {
            let schemas: Map<String, Value> = registry
                .kinds()
                .iter()
                .filter(|k| k.group == g && k.version == v)
                .flat_map(|k| definitions(k, false))
                .collect();
            let gv_paths: Map<String, Value> = registry
                .kinds()
                .iter()
                .filter(|k| k.group == g && k.version == v)
                .flat_map(|k| paths(k, true))
                .collect();
            let doc = json!({
                "openapi": "3.0.0",
                "info": {"title": "tilt-rs", "version": env!("CARGO_PKG_VERSION")},
                "paths": gv_paths,
                "components": {"schemas": schemas},
            });
            let bytes = Bytes::from(doc.to_string());
            let hash = hash_hex(&bytes);
            let path = group_version_path(&g, &v);
            index.insert(path.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}));
            v3.insert(path, (bytes, hash));
        }
        Documents {
            v2: Bytes::from(v2.to_string()),
            v3_index: Bytes::from(json!({"paths": index}).to_string()),
            v3,
        }
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
    let (bytes, hash) = documents(state).v3.get(path).ok_or_else(|| ApiError::no_route(&format!("/openapi/v3/{path}")))?;
    let mut resp = bytes_response(StatusCode::OK, "application/json", bytes.clone());
    resp.headers_mut().insert(header::ETAG, http::HeaderValue::from_str(&format!("\"{hash}\"")).expect("hex is a header value"));
    resp.headers_mut().insert(header::CACHE_CONTROL, http::HeaderValue::from_static("public, immutable"));
    Ok(resp)
}
