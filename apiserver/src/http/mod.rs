//! HTTP: TLS and bearer-token transport, routing, request parsing and content negotiation.
//!
//! Paths are laid out as kube-apiserver lays them out: the core group under `/api/{version}`, other groups
//! under `/apis/{group}/{version}`, namespaced kinds under `namespaces/{ns}/` (and listed or watched across
//! namespaces without it), plus registered [`Subresource`] endpoints. Connections support HTTP/1.1 upgrades.
//!
//! Every handler returns `Result<Response, ApiError>` (object handlers a typed [`crate::error::Error`], converted
//! here); errors become Kubernetes `Status` bodies, so bad input never reaches a panic or a 500.

mod discovery;
mod objects;
mod openapi;
mod table;
mod watch;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::kind::Registry;
use crate::store::Store;

/// Response bodies: whole buffers or watch streams.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The future an [`Endpoint`] returns.
pub type EndpointFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send>>;

/// A non-resource endpoint (e.g. logs) served behind the same TLS, token check and error handling.
/// It receives the request head (method, path, query, headers).
pub type Endpoint = Arc<dyn Fn(http::request::Parts) -> EndpointFuture + Send + Sync>;

/// An endpoint served for `{plural}/{name}/{subresource}` of one kind (after authentication), e.g. `pods/log`
/// or `pods/portforward`, at the same paths as the kind's objects (`/api/v1/namespaces/{ns}/pods/{name}/log`).
///
/// The endpoint gets the request head. For methods other than GET and HEAD (and no `Upgrade` header) the body
/// is read (within the body limit) and put in `parts.extensions` as [`bytes::Bytes`]. Connections are served
/// with upgrade support, so an endpoint can answer 101 and take the connection with
/// `parts.extensions.remove::<hyper::upgrade::OnUpgrade>()`. [`subresource_object`] parses the
/// namespace and name from `parts.uri.path()`.
#[derive(Clone)]
pub struct Subresource {
    /// The kind's API group (`""` for core).
    pub group: String,
    /// The kind's plural, e.g. `pods`.
    pub plural: String,
    /// The subresource, e.g. `log`.
    pub subresource: String,
    /// What serves it.
    pub endpoint: Endpoint,
}

/// The namespace (empty for a cluster-scoped kind) and name of the object a subresource path names:
/// `/api/v1/namespaces/{ns}/pods/{name}/{sub}` → `(ns, name)`, `/apis/{g}/{v}/{plural}/{name}/{sub}` →
/// `("", name)`, percent-decoded. `None` for any other path. Meant for the path a [`Subresource`] endpoint was
/// called with: `/api/v1/namespaces/{ns}/{sub}` alone reads as a subresource of Namespace `{ns}`.
pub fn subresource_object(path: &str) -> Option<(String, String)> {
    let segments = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned()))
        .collect::<Option<Vec<String>>>()?;
    let base = match segments.first()?.as_str() {
        "api" => 2,
        "apis" => 3,
        _ => return None,
    };
    match segments.get(base..)? {
        [namespaces, ns, _plural, name, _sub] if namespaces == "namespaces" => Some((ns.clone(), name.clone())),
        [_plural, name, _sub] => Some((String::new(), name.clone())),
        _ => None,
    }
}

/// Everything a request handler can see.
pub(crate) struct State {
    pub registry: Registry,
    /// Shared with the garbage collector.
    pub store: Arc<Store>,
    pub token: String,
    pub body_limit: usize,
    /// Built on the first `/openapi/...` request: most runs never get one, and building them at start
    /// leaves megabytes of freed heap behind in a long-running `tilt up`.
    pub openapi: std::sync::OnceLock<openapi::Documents>,
    pub endpoints: Vec<(String, Endpoint)>,
    pub subresources: Vec<Subresource>,
}

/// Serves the API on `listener` (TLS with `tls`, or plain HTTP when `None`) until `shutdown` is cancelled.
pub(crate) async fn serve(
    state: Arc<State>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: CancellationToken,
) {
    loop {
        let (tcp, _peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let state = state.clone();
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let result = match tls {
                Some(acceptor) => match acceptor.accept(tcp).await {
                    Ok(stream) => {
                        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        tokio::select! { r = conn => r, _ = shutdown.cancelled() => Ok(()) }
                    }
                    Err(err) => {
                        tracing::debug!(%err, "TLS handshake failed");
                        Ok(())
                    }
                },
                None => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
                    tokio::select! { r = conn => r, _ = shutdown.cancelled() => Ok(()) }
                }
            };
            if let Err(err) = result {
                tracing::debug!(%err, "connection ended with an error");
            }
        });
    }
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Body> {
    match route(state, req).await {
        Ok(resp) => resp,
        Err(err) => error_response(&err),
    }
}

/// The `Status` response for an error.
pub fn error_response(err: &ApiError) -> Response<Body> {
    json_response(StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &err.to_status())
}

fn authorized(state: &State, headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(token) = value.strip_prefix("Bearer ").map(str::trim) else {
        return false;
    };
    // Length-independent comparison of every byte.
    token.len() == state.token.len()
        && token.bytes().zip(state.token.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

async fn route(state: &State, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    if !authorized(state, req.headers()) {
        return Err(ApiError::unauthorized());
    }
    let path = req.uri().path().to_string();
    let decoded = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_encoding::percent_decode_str(s).decode_utf8().map(|c| c.into_owned()))
        .collect::<Result<Vec<String>, _>>()
        .map_err(|_| ApiError::bad_request(format!("the path {path:?} is not valid UTF-8 after percent-decoding")))?;
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let method = req.method().clone();
    if let Some((_, endpoint)) =
        state.endpoints.iter().find(|(prefix, _)| path == *prefix || path.starts_with(&format!("{prefix}/")))
    {
        let (parts, _body) = req.into_parts();
        return Ok(endpoint(parts).await);
    }
    let read_only = || -> Result<(), ApiError> {
        if method == Method::GET || method == Method::HEAD {
            Ok(())
        } else {
            Err(ApiError::method_not_allowed(method.as_str(), &path))
        }
    };
    match segments.as_slice() {
        ["healthz"] | ["livez"] | ["readyz"] => {
            read_only()?;
            Ok(bytes_response(StatusCode::OK, "text/plain", Bytes::from_static(b"ok")))
        }
        ["version"] => {
            read_only()?;
            Ok(json_response(StatusCode::OK, &discovery::version()))
        }
        ["api"] => {
            read_only()?;
            Ok(discovery::core_versions(state, req.headers()))
        }
        ["api", version] => {
            read_only()?;
            discovery::resources(state, "", version)
        }
        ["apis"] => {
            read_only()?;
            Ok(discovery::groups(state, req.headers()))
        }
        ["apis", group] => {
            read_only()?;
            discovery::group(state, group)
        }
        ["apis", group, version] => {
            read_only()?;
            discovery::resources(state, group, version)
        }
        ["openapi", "v2"] => {
            read_only()?;
            openapi::v2(state, req.headers())
        }
        ["openapi", "v3"] => {
            read_only()?;
            Ok(openapi::v3_index(state))
        }
        ["openapi", "v3", "apis", group, version] => {
            read_only()?;
            openapi::v3_group_version(state, &format!("apis/{group}/{version}"), req.headers())
        }
        ["openapi", "v3", "api", version] => {
            read_only()?;
            openapi::v3_group_version(state, &format!("api/{version}"), req.headers())
        }
        ["api", version, rest @ ..] => resource(state, req, "", version, rest, &path).await,
        ["apis", group, version, rest @ ..] => resource(state, req, group, version, rest, &path).await,
        _ => Err(ApiError::no_route(&path)),
    }
}

/// Serves `rest` of `/api/{version}/…` or `/apis/{group}/{version}/…`, laid out as kube-apiserver lays it
/// out: `[namespaces/{ns}/]{plural}[/{name}[/{subresource}]]`.
async fn resource(
    state: &State,
    req: Request<Incoming>,
    group: &str,
    version: &str,
    rest: &[&str],
    path: &str,
) -> Result<Response<Body>, ApiError> {
    let no_route = || ApiError::no_route(path);
    let namespaced_plural = |p: &str| state.registry.get(group, version, p).is_some_and(|k| k.namespaced);
    // `namespaces/{name}/status` is the Namespace kind's own subresource, not a kind called `status`.
    let (namespace, plural, tail) = match rest {
        ["namespaces", ns, plural, tail @ ..] if namespaced_plural(plural) => (Some(ns.to_string()), *plural, tail),
        [plural, tail @ ..] => (None, *plural, tail),
        [] => return Err(no_route()),
    };
    if tail.len() > 2 {
        return Err(no_route());
    }
    let kind = state.registry.get(group, version, plural).ok_or_else(no_route)?;
    let store = state.store.kind(group, plural).ok_or_else(|| ApiError::internal("kind without a store"))?;
    let name = tail.first().copied();
    // A namespaced object is only reachable inside its namespace; only lists and watches span namespaces.
    if kind.namespaced && namespace.is_none() && name.is_some() {
        return Err(no_route());
    }
    let method = req.method().clone();
    let subresource = match tail.get(1).copied() {
        None => None,
        Some("status") if kind.has_status => Some("status"),
        Some(other) => {
            let sub = state
                .subresources
                .iter()
                .find(|s| s.group == kind.group && s.plural == kind.plural && s.subresource == other)
                .ok_or_else(no_route)?;
            let (mut parts, body) = req.into_parts();
            if method != Method::GET && method != Method::HEAD && !parts.headers.contains_key(header::UPGRADE) {
                parts.extensions.insert(read_body(body, state.body_limit).await?);
            }
            return Ok((sub.endpoint)(parts).await);
        }
    };
    // The body is read before anything can refuse the request: a connection closed with request bytes
    // unread is reset, and the client loses the response.
    let (parts, incoming) = req.into_parts();
    let body = if method == Method::GET || method == Method::HEAD {
        Bytes::new()
    } else {
        read_body(incoming, state.body_limit).await?
    };
    let reads_only = method == Method::GET || method == Method::HEAD;
    // What kube-apiserver answers for a verb the resource does not support.
    if !reads_only && (kind.is_read_only() || (kind.namespaced && namespace.is_none())) {
        return Err(ApiError::method_not_allowed(method.as_str(), path));
    }
    let req = Request::from_parts(parts, ());
    let call = objects::Call::new(state, kind, store, namespace, &req)?;
    // Store refusals stay typed through the handlers; here the response is built.
    call.dispatch(&method, name, subresource, body).await.map_err(ApiError::from)
}

async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(limit)),
        Err(err) => Err(ApiError::bad_request(format!("reading the request body: {err}"))),
    }
}

/// A whole-buffer response.
pub fn bytes_response(code: StatusCode, content_type: &str, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Full::new(body).boxed_unsync());
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")),
    );
    resp
}

/// A JSON response.
pub fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    bytes_response(code, "application/json", Bytes::from(serde_json::to_vec(value).expect("JSON values serialize")))
}

/// What the client asked to get back, from `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `application/json` (the default).
    Json,
    /// `application/yaml`.
    Yaml,
    /// `meta.k8s.io/v1 Table` (`as=Table`).
    Table,
    /// `meta.k8s.io/v1 PartialObjectMetadata` (`as=PartialObjectMetadata`).
    PartialMetadata,
}

/// Picks the first acceptable media type of `Accept` that we serve; 406 when none is.
pub(crate) fn negotiate(headers: &HeaderMap) -> Result<Format, ApiError> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(Format::Json);
    };
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        let param = |k: &str| params.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
        match media {
            "application/json" | "*/*" | "application/*" => match param("as") {
                None => return Ok(Format::Json),
                Some("Table") if param("g") == Some("meta.k8s.io") && matches!(param("v"), Some("v1" | "v1beta1")) => {
                    return Ok(Format::Table);
                }
                Some("PartialObjectMetadata" | "PartialObjectMetadataList") if param("g") == Some("meta.k8s.io") => {
                    return Ok(Format::PartialMetadata);
                }
                Some(_) => continue,
            },
            "application/yaml" => return Ok(Format::Yaml),
            _ => continue,
        }
    }
    Err(ApiError::not_acceptable(accept))
}
