//! Discovery: `/version`, `/api` and `/apis` (legacy and aggregated v2), `/api/{version}`,
//! `/apis/{group}[/{version}]`. The core group (`""`) is served under `/api`, every other group under `/apis`.

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
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).and_then(|accept| accept.split(',').next()).is_some_and(
        |first| first.contains("as=APIGroupDiscoveryList") && first.contains("v=v2") && !first.contains("v2beta1"),
    )
}

/// The verbs of a kind's resource, or of its `status` subresource.
fn verbs(k: &ResourceKind, subresource: bool) -> Value {
    match (subresource, k.is_read_only()) {
        (true, true) => json!(["get"]),
        (true, false) => json!(["get", "patch", "update"]),
        (false, true) => json!(["get", "list", "watch"]),
        // kube-apiserver's order for custom resources.
        (false, false) => json!(["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"]),
    }
}

/// `/api`: the core group's versions; empty when no core kind is served, so clients that scan it first work.
pub(crate) fn core_versions(state: &State, headers: &HeaderMap) -> Response<Body> {
    let versions: Vec<String> =
        state.registry.group_versions().into_iter().filter(|(g, _)| g.is_empty()).map(|(_, v)| v).collect();
    if wants_aggregated(headers) {
        let items: Vec<Value> =
            if versions.is_empty() { Vec::new() } else { vec![aggregated_group(state, "", &versions)] };
        let list = json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items});
        return bytes_response(StatusCode::OK, AGGREGATED, Bytes::from(list.to_string()));
    }
    json_response(
        StatusCode::OK,
        &json!({"kind": "APIVersions", "versions": versions, "serverAddressByClientCIDRs": []}),
    )
}

/// One group of an aggregated discovery document, with every version's resources.
fn aggregated_group(state: &State, group: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            // Sorted by resource name, as kube-apiserver lists them.
            let mut kinds: Vec<_> =
                state.registry.kinds().iter().filter(|k| k.group == group && &k.version == v).collect();
            kinds.sort_by(|a, b| a.plural.cmp(&b.plural));
            let resources: Vec<Value> = kinds.into_iter().map(|k| aggregated_resource(k)).collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    let metadata = if group.is_empty() { json!({}) } else { json!({"name": group}) };
    json!({"metadata": metadata, "versions": versions})
}

fn group_doc(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> =
        versions.iter().map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v})).collect();
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
    // The core group is under `/api`, never in `/apis`.
    for (g, v) in state.registry.group_versions().into_iter().filter(|(g, _)| !g.is_empty()) {
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
        "scope": if k.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": k.singular,
        "verbs": verbs(k, false),
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
            "verbs": verbs(k, true),
        }]);
    }
    r
}

/// `/apis`.
pub(crate) fn groups(state: &State, headers: &HeaderMap) -> Response<Body> {
    let groups = groups_with_versions(state);
    if wants_aggregated(headers) {
        let items: Vec<Value> = groups.iter().map(|(g, vs)| aggregated_group(state, g, vs)).collect();
        let list = json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items});
        return bytes_response(StatusCode::OK, AGGREGATED, Bytes::from(list.to_string()));
    }
    let list: Vec<Value> = groups.iter().map(|(g, vs)| group_doc(g, vs)).collect();
    json_response(StatusCode::OK, &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": list}))
}

/// `/apis/{group}`.
pub(crate) fn group(state: &State, group: &str) -> Result<Response<Body>, ApiError> {
    let groups = groups_with_versions(state);
    let (g, vs) =
        groups.iter().find(|(g, _)| g == group).ok_or_else(|| ApiError::no_route(&format!("/apis/{group}")))?;
    Ok(json_response(StatusCode::OK, &group_doc(g, vs)))
}

/// `/apis/{group}/{version}` (`/api/{version}` for the core group `""`): the APIResourceList.
pub(crate) fn resources(state: &State, group: &str, version: &str) -> Result<Response<Body>, ApiError> {
    let kinds: Vec<_> = state.registry.kinds().iter().filter(|k| k.group == group && k.version == version).collect();
    let group_version = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    if kinds.is_empty() {
        let prefix = if group.is_empty() { "/api" } else { "/apis" };
        return Err(ApiError::no_route(&format!("{prefix}/{group_version}")));
    }
    let mut resources = Vec::new();
    for k in kinds {
        let mut r = json!({
            "name": k.plural,
            "singularName": k.singular,
            "namespaced": k.namespaced,
            "kind": k.kind,
            "verbs": verbs(k, false),
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
                "namespaced": k.namespaced,
                "kind": k.kind,
                "verbs": verbs(k, true),
            }));
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    ))
}
