//! HTTP: TLS and bearer-token transport, routing, request parsing and content negotiation.
//!
//! Every handler returns `Result<Response, ApiError>`; errors become Kubernetes `Status` bodies, so bad input
//! never reaches a panic or a 500.

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
use crate::kind::{Registry, ResourceKind};
use crate::store::{KindStore, Store};

/// Response bodies: whole buffers or watch streams.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The future an [`Endpoint`] returns.
pub type EndpointFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send>>;

/// A non-resource endpoint (e.g. logs) served behind the same TLS, token check and error handling.
/// It receives the request head (method, path, query, headers).
pub type Endpoint = Arc<dyn Fn(http::request::Parts) -> EndpointFuture + Send + Sync>;

/// Everything a request handler can see.
pub(crate) struct State {
    pub registry: Registry,
    pub store: Store,
    pub token: String,
    pub body_limit: usize,
    pub openapi: openapi::Documents,
    pub endpoints: Vec<(String, Endpoint)>,
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
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        tokio::select! { r = conn => r, _ = shutdown.cancelled() => Ok(()) }
                    }
                    Err(err) => {
                        tracing::debug!(%err, "TLS handshake failed");
                        Ok(())
                    }
                },
                None => {
                    let conn = builder.serve_connection(TokioIo::new(tcp), service);
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
    if let Some((_, endpoint)) = state.endpoints.iter().find(|(prefix, _)| path == *prefix || path.starts_with(&format!("{prefix}/"))) {
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
            Ok(discovery::core_versions(req.headers()))
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
            openapi::v3_group_version(state, group, version, req.headers())
        }
        ["apis", group, version, plural, rest @ ..] if rest.len() <= 2 => {
            let (kind, store) = lookup(state, group, version, plural)?;
            let name = rest.first().copied();
            let subresource = match rest.get(1).copied() {
                None => None,
                Some("status") if kind.has_status => Some("status"),
                Some(other) => return Err(ApiError::no_route(&format!("{plural}/{other}"))),
            };
            let call = objects::Call::new(state, kind, store, &req)?;
            let body = if method == Method::GET || method == Method::HEAD {
                Bytes::new()
            } else {
                read_body(req, state.body_limit).await?
            };
            call.dispatch(&method, name, subresource, body).await
        }
        _ => Err(ApiError::no_route(&path)),
    }
}

fn lookup<'s>(
    state: &'s State,
    group: &str,
    version: &str,
    plural: &str,
) -> Result<(&'s Arc<ResourceKind>, &'s Arc<KindStore>), ApiError> {
    let kind = state
        .registry
        .get(group, version, plural)
        .ok_or_else(|| ApiError::no_route(&format!("/apis/{group}/{version}/{plural}")))?;
    let store = state.store.kind(&kind.plural).ok_or_else(|| ApiError::internal("kind without a store"))?;
    Ok((kind, store))
}

async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(limit)),
        Err(err) => Err(ApiError::bad_request(format!("reading the request body: {err}"))),
    }
}

/// A whole-buffer response.
pub fn bytes_response(code: StatusCode, content_type: &str, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Full::new(body).boxed_unsync());
    *resp.status_mut() = code;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static("application/json")));
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

/// Builds the OpenAPI documents served for `registry`.
pub(crate) fn openapi_documents(registry: &Registry) -> openapi::Documents {
    openapi::Documents::build(registry)
}
