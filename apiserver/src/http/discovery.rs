//! Discovery: `/version`, `/api`, `/apis` (legacy and aggregated v2), `/apis/{group}[/{version}]`.

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header};
use serde_json::{Value, json};

use super::{Body, State, bytes_response, json_response};
use crate::error::ApiError;
use crate::kind::ResourceKind;

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// The Kubernetes version we speak (kubectl compares it with its own for skew warnings).
pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": concat!("v1.32.0+tilt-rs-", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

fn wants_aggregated(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .and_then(|accept| accept.split(',').next())
        .is_some_and(|first| first.contains("as=APIGroupDiscoveryList") && first.contains("v=v2") && !first.contains("v2beta1"))
}

fn verbs(subresource: bool) -> Value {
    if subresource {
        json!(["get", "patch", "update"])
    } else {
        json!(["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"])
    }
}

/// `/api`: no core group is served, but the document exists so clients that scan it first work.
pub(crate) fn core_versions(headers: &HeaderMap) -> Response<Body> {
    if wants_aggregated(headers) {
        let list = json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": []});
        return bytes_response(StatusCode::OK, AGGREGATED, Bytes::from(list.to_string()));
    }
    json_response(StatusCode::OK, &json!({"kind": "APIVersions", "versions": [], "serverAddressByClientCIDRs": []}))
}

fn group_doc(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions.iter().map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v})).collect();
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
    })
}

fn groups_with_versions(state: &State) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (g, v) in state.registry.group_versions() {
        match out.iter_mut().find(|(og, _)| *og == g) {
            Some((_, vs)) => vs.push(v),
            None => out.push((g, vec![v])),
        }
    }
    out
}

fn aggregated_resource(k: &ResourceKind) -> Value {
    let mut r = json!({
        "resource": k.plural,
        "responseKind": {"group": k.group, "version": k.version, "kind": k.kind},
        "scope": "Cluster",
        "singularResource": k.singular,
        "verbs": verbs(false),
    });
    if !k.short_names.is_empty() {
        r["shortNames"] = json!(k.short_names);
    }
    if !k.categories.is_empty() {
        r["categories"] = json!(k.categories);
    }
    if k.has_status {
        r["subresources"] = json!([{
            "subresource": "status",
            "responseKind": {"group": k.group, "version": k.version, "kind": k.kind},
            "verbs": verbs(true),
        }]);
    }
    r
}

/// `/apis`.
pub(crate) fn groups(state: &State, headers: &HeaderMap) -> Response<Body> {
    let groups = groups_with_versions(state);
    if wants_aggregated(headers) {
        let items: Vec<Value> = groups
            .iter()
            .map(|(g, vs)| {
                let versions: Vec<Value> = vs
                    .iter()
                    .map(|v| {
                        let resources: Vec<Value> = state
                            .registry
                            .kinds()
                            .iter()
                            .filter(|k| &k.group == g && &k.version == v)
                            .map(|k| aggregated_resource(k))
                            .collect();
                        json!({"version": v, "resources": resources, "freshness": "Current"})
                    })
                    .collect();
                json!({"metadata": {"name": g}, "versions": versions})
            })
            .collect();
        let list = json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items});
        return bytes_response(StatusCode::OK, AGGREGATED, Bytes::from(list.to_string()));
    }
    let list: Vec<Value> = groups.iter().map(|(g, vs)| group_doc(g, vs)).collect();
    json_response(StatusCode::OK, &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": list}))
}

/// `/apis/{group}`.
pub(crate) fn group(state: &State, group: &str) -> Result<Response<Body>, ApiError> {
    let groups = groups_with_versions(state);
    let (g, vs) = groups.iter().find(|(g, _)| g == group).ok_or_else(|| ApiError::no_route(&format!("/apis/{group}")))?;
    Ok(json_response(StatusCode::OK, &group_doc(g, vs)))
}

/// `/apis/{group}/{version}`: the APIResourceList.
pub(crate) fn resources(state: &State, group: &str, version: &str) -> Result<Response<Body>, ApiError> {
    let kinds: Vec<_> = state.registry.kinds().iter().filter(|k| k.group == group && k.version == version).collect();
    if kinds.is_empty() {
        return Err(ApiError::no_route(&format!("/apis/{group}/{version}")));
    }
    let mut resources = Vec::new();
    for k in kinds {
        let mut r = json!({
            "name": k.plural,
            "singularName": k.singular,
            "namespaced": false,
            "kind": k.kind,
            "verbs": verbs(false),
        });
        if !k.short_names.is_empty() {
            r["shortNames"] = json!(k.short_names);
        }
        if !k.categories.is_empty() {
            r["categories"] = json!(k.categories);
        }
        resources.push(r);
        if k.has_status {
            resources.push(json!({
                "name": format!("{}/status", k.plural),
                "singularName": "",
                "namespaced": false,
                "kind": k.kind,
                "verbs": verbs(true),
            }));
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": format!("{group}/{version}"), "resources": resources}),
    ))
}
