//! The web server's routes: the page, Go Tilt's `/api/*` endpoints, `/ws/view` and `/proxy/*`.
//!
//! Every error is a 4xx with a one-line text message (the page shows it), or a 502 when the API server
//! did not answer a proxied request.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, Query, Request, State as AxumState, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tilt_apis::{
    AUTO_FILE_WATCHES_ANNOTATION, Cmd, CmdImage, DockerImage, TRIGGER_MODE_ANNOTATION, Tiltfile, UIButton, UIResource,
};
use tokio_util::sync::CancellationToken;

use crate::hub::Hub;
use crate::socket::Feed;
use crate::{Source, assets, hub, socket, view};

/// The cookie (and `X-Tilt-Token` header) that authorizes `/api` and `/proxy` requests.
pub const TOKEN_COOKIE: &str = "Tilt-Token";
/// The header alternative to the cookie.
pub const TOKEN_HEADER: &str = "X-Tilt-Token";
/// The main Tiltfile's resource and object name.
const TILTFILE: &str = "(Tiltfile)";
/// Largest body accepted on `/api` and `/proxy` requests.
const BODY_LIMIT: usize = 3 * 1024 * 1024;

struct Live {
    client: Client,
    feed: Arc<Feed>,
}

/// The server's shared state.
pub struct State {
    token: String,
    csrf: String,
    live: Option<Live>,
    snapshot: Option<Value>,
    shutdown: CancellationToken,
}

impl State {
    /// State for `source`; a live source starts following the API until `shutdown`.
    pub fn new(source: Source, shutdown: CancellationToken) -> Arc<State> {
        let (live, snapshot) = match source {
            Source::Live { client, logs, tilt_start_time } => {
                let hub = Arc::new(Hub::default());
                tokio::spawn(hub::follow(hub.clone(), client.clone(), shutdown.clone()));
                (Some(Live { client, feed: Arc::new(Feed { hub, logs, tilt_start_time }) }), None)
            }
            Source::Snapshot(s) => (None, Some(s)),
        };
        Arc::new(State {
            token: uuid::Uuid::new_v4().to_string(),
            csrf: uuid::Uuid::new_v4().to_string(),
            live,
            snapshot,
            shutdown,
        })
    }

    /// The live source's objects.
    pub fn hub(&self) -> Option<Arc<Hub>> {
        self.live.as_ref().map(|l| l.feed.hub.clone())
    }

    fn live(&self) -> Result<&Live, Reject> {
        self.live.as_ref().ok_or_else(|| {
            reject(StatusCode::NOT_FOUND, "this tilt serves a snapshot, not a live session (see /snapshot/local)")
        })
    }
}

type S = AxumState<Arc<State>>;

/// A refused request: its status and a one-line message for the page.
pub struct Reject(StatusCode, String);

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        let Reject(status, mut text) = self;
        text.push('\n');
        (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
    }
}

fn reject(status: StatusCode, message: impl Into<String>) -> Reject {
    Reject(status, message.into())
}

/// What a handler answers: a response, or why not.
type Answer = Result<Response, Reject>;

fn api_error(e: kube::Error) -> Reject {
    match e {
        kube::Error::Api(s) => {
            let status = StatusCode::from_u16(s.code).unwrap_or(StatusCode::BAD_GATEWAY);
            reject(if status.is_server_error() { StatusCode::BAD_GATEWAY } else { status }, s.message)
        }
        other => reject(StatusCode::BAD_GATEWAY, format!("the API server did not answer: {other}")),
    }
}

/// All routes over `state`.
pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/api/websocket_token", get(websocket_token))
        .route("/api/view", get(view))
        .route("/api/snapshot/{id}", get(snapshot))
        .route("/api/trigger", post(trigger))
        .route("/api/override/trigger_mode", post(override_trigger_mode))
        .route("/api/set_tiltfile_args", post(set_tiltfile_args))
        .route("/api/{*rest}", any(|| async { reject(StatusCode::NOT_FOUND, "no such API endpoint") }))
        .route("/ws/view", get(websocket))
        .route("/ws/{*rest}", any(|| async { reject(StatusCode::NOT_FOUND, "no such socket") }))
        .route("/proxy/{*path}", any(proxy))
        .fallback(page)
        .layer(from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// The value of cookie `name` in `headers`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The origin check on every route, and the token check on `/api` and `/proxy`.
async fn guard(AxumState(state): S, request: Request, next: Next) -> Answer {
    let headers = request.headers();
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()).filter(|o| !o.is_empty()) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
        let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
        if origin_host != host {
            return Err(reject(StatusCode::FORBIDDEN, format!("origin {origin} does not match host {host}")));
        }
    }
    let path = request.uri().path();
    if path.starts_with("/api/") || path.starts_with("/proxy/") {
        let given = headers
            .get(TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .or_else(|| cookie(headers, TOKEN_COOKIE))
            .filter(|t| !t.is_empty());
        match given {
            None => {
                return Err(reject(
                    StatusCode::UNAUTHORIZED,
                    format!("missing {TOKEN_COOKIE} cookie or {TOKEN_HEADER} header (load the page first)"),
                ));
            }
            Some(t) if t != state.token => {
                return Err(reject(StatusCode::FORBIDDEN, format!("invalid {TOKEN_COOKIE}: reload the page")));
            }
            Some(_) => {}
        }
    }
    Ok(next.run(request).await)
}

/// The page (and its files), with the token cookie.
async fn page(AxumState(state): S, uri: axum::http::Uri) -> Response {
    let mut response = assets::serve(uri.path());
    if let Ok(v) = HeaderValue::from_str(&format!("{TOKEN_COOKIE}={}; Path=/; SameSite=Strict", state.token)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

async fn websocket_token(AxumState(state): S) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], state.csrf.clone()).into_response()
}

async fn websocket(
    AxumState(state): S,
    Query(query): Query<HashMap<String, String>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Answer {
    if query.get("csrf") != Some(&state.csrf) {
        return Err(reject(StatusCode::FORBIDDEN, "missing or invalid csrf token (GET /api/websocket_token first)"));
    }
    let feed = state.live()?.feed.clone();
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => return Ok(rejection.into_response()),
    };
    let shutdown = state.shutdown.clone();
    Ok(upgrade.on_upgrade(move |ws| async move {
        tokio::select! {
            _ = socket::serve(ws, feed) => {}
            _ = shutdown.cancelled() => {}
        }
    }))
}

async fn view(AxumState(state): S) -> Answer {
    if let Some(s) = &state.snapshot {
        return Ok(axum::Json(s["view"].clone()).into_response());
    }
    Ok(axum::Json(state.live()?.feed.complete().await.0).into_response())
}

async fn snapshot(AxumState(state): S, Path(id): Path<String>) -> Answer {
    match &state.snapshot {
        Some(s) if id == "local" => Ok(axum::Json(s.clone()).into_response()),
        Some(_) => Err(reject(StatusCode::NOT_FOUND, format!("no snapshot {id:?}: this server has only \"local\""))),
        None if id == "now" => Ok(axum::Json(view::snapshot(state.live()?.feed.complete().await.0)).into_response()),
        None => Err(reject(StatusCode::NOT_FOUND, format!("no snapshot {id:?}: a live tilt serves only \"now\""))),
    }
}

/// A JSON body of type `T`, or a 400 naming what is wrong with it.
fn parse<T: serde::de::DeserializeOwned>(body: &Bytes, what: &str) -> Result<T, Reject> {
    serde_json::from_slice(body).map_err(|e| reject(StatusCode::BAD_REQUEST, format!("invalid {what}: {e}")))
}

#[derive(Deserialize)]
struct TriggerPayload {
    manifest_names: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)] // Go Tilt's clients send it; every trigger here is a manual one.
    build_reason: i64,
}

async fn resource(client: &Client, name: &str) -> Result<UIResource, Reject> {
    match Api::<UIResource>::all(client.clone()).get_opt(&tilt_apis::path_name(name)).await {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(reject(StatusCode::NOT_FOUND, format!("no resource named {name:?}"))),
        Err(e) => Err(api_error(e)),
    }
}

/// `POST /api/trigger`: clicks the resource's trigger button, as `tilt trigger` does.
async fn trigger(AxumState(state): S, body: Bytes) -> Answer {
    let live = state.live()?;
    let payload: TriggerPayload = parse(&body, "trigger request")?;
    let [name] = payload.manifest_names.as_slice() else {
        return Err(reject(
            StatusCode::BAD_REQUEST,
            format!("/api/trigger takes exactly one manifest name, got {}", payload.manifest_names.len()),
        ));
    };
    let r = resource(&live.client, name).await?;
    if r.status.as_ref().is_some_and(|s| s.disable_status.state == "Disabled") {
        return Ok(
            (StatusCode::OK, format!("resource {name:?} is disabled; enable it to trigger it\n")).into_response()
        );
    }
    let button = format!("{name}:trigger");
    let click = json!({"status": {"lastClickedAt": MicroTime(jiff::Timestamp::now())}});
    let buttons = Api::<UIButton>::all(live.client.clone());
    match buttons.patch_status(&tilt_apis::path_name(&button), &PatchParams::default(), &Patch::Merge(&click)).await {
        Ok(_) => Ok(StatusCode::OK.into_response()),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            Err(reject(StatusCode::BAD_REQUEST, format!("resource {name:?} cannot be triggered (no button {button})")))
        }
        Err(e) => Err(api_error(e)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideTriggerModePayload {
    manifest_names: Vec<String>,
    trigger_mode: i32,
}

/// Go Tilt's trigger modes: auto, manual with auto init, manual, auto with manual init.
fn is_auto(mode: i32) -> bool {
    mode == 0 || mode == 3
}

/// `POST /api/override/trigger_mode`: switches resources between auto and manual: the objects that restart
/// on file changes keep their FileWatches in auto mode only, and the UIResource records the mode.
async fn override_trigger_mode(AxumState(state): S, body: Bytes) -> Answer {
    let live = state.live()?;
    let payload: OverrideTriggerModePayload = parse(&body, "trigger mode request")?;
    if !(0..=3).contains(&payload.trigger_mode) {
        let message = format!("invalid trigger mode {}: want 0 to 3", payload.trigger_mode);
        return Err(reject(StatusCode::BAD_REQUEST, message));
    }
    if payload.manifest_names.is_empty() {
        return Err(reject(StatusCode::BAD_REQUEST, "no manifest names given"));
    }
    for name in &payload.manifest_names {
        if name == TILTFILE {
            return Err(reject(StatusCode::BAD_REQUEST, "the Tiltfile's trigger mode cannot be changed"));
        }
        resource(&live.client, name).await?;
    }
    for name in &payload.manifest_names {
        set_trigger_mode(&live.client, name, payload.trigger_mode).await.map_err(api_error)?;
    }
    Ok(StatusCode::OK.into_response())
}

async fn set_trigger_mode(client: &Client, name: &str, mode: i32) -> Result<(), kube::Error> {
    // The label holds the name made label-safe; the annotation the exact name.
    let labelled = ListParams::default();
    let of_resource = |meta: &kube::api::ObjectMeta| tilt_apis::resource_name_of(meta) == Some(name);
    let watches = |annotations: &BTreeMap<String, String>| -> Option<Vec<String>> {
        let auto: Vec<String> = serde_json::from_str(annotations.get(AUTO_FILE_WATCHES_ANNOTATION)?).ok()?;
        Some(if is_auto(mode) { auto } else { Vec::new() })
    };
    let cmds: Api<Cmd> = Api::all(client.clone());
    for c in cmds.list(&labelled).await?.into_iter().filter(|c| of_resource(kube::Resource::meta(c))) {
        if let Some(fws) = watches(c.annotations()) {
            let patch = json!({"spec": {"restartOn": {"fileWatches": fws}}});
            cmds.patch(&tilt_apis::path_name(c.name_any()), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
    }
    let images: Api<DockerImage> = Api::all(client.clone());
    for i in images.list(&labelled).await?.into_iter().filter(|i| of_resource(kube::Resource::meta(i))) {
        if let Some(fws) = watches(i.annotations()) {
            let patch = json!({"spec": {"restartOn": {"fileWatches": fws}}});
            images.patch(&tilt_apis::path_name(i.name_any()), &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
    }
    let cmd_images: Api<CmdImage> = Api::all(client.clone());
    for i in cmd_images.list(&labelled).await?.into_iter().filter(|i| of_resource(kube::Resource::meta(i))) {
        if let Some(fws) = watches(i.annotations()) {
            let patch = json!({"spec": {"restartOn": {"fileWatches": fws}}});
            let name = tilt_apis::path_name(i.name_any());
            cmd_images.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
    }
    let patch = json!({"metadata": {"annotations": {TRIGGER_MODE_ANNOTATION: mode.to_string()}}});
    Api::<UIResource>::all(client.clone())
        .patch(&tilt_apis::path_name(name), &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// `POST /api/set_tiltfile_args`: the Tiltfile's new arguments (a JSON list of strings).
async fn set_tiltfile_args(AxumState(state): S, body: Bytes) -> Answer {
    let live = state.live()?;
    let args: Vec<String> = parse(&body, "Tiltfile arguments (want a JSON list of strings)")?;
    let patch = json!({"spec": {"args": args}});
    let tiltfiles = Api::<Tiltfile>::all(live.client.clone());
    tiltfiles.patch(TILTFILE, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(api_error)?;
    Ok(StatusCode::OK.into_response())
}

/// `/proxy/<path>`: the same request to the API server's `/<path>`, answered with its response.
async fn proxy(AxumState(state): S, Path(path): Path<String>, request: Request) -> Answer {
    let live = state.live()?;
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| reject(StatusCode::PAYLOAD_TOO_LARGE, format!("request body over {BODY_LIMIT} bytes")))?;
    let mut uri = format!("/{path}");
    if let Some(q) = parts.uri.query() {
        uri.push('?');
        uri.push_str(q);
    }
    let mut forward = http::Request::builder().method(parts.method).uri(&uri);
    for name in [header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(v) = parts.headers.get(&name) {
            forward = forward.header(name, v);
        }
    }
    let forward = forward
        .body(kube::client::Body::from(body.to_vec()))
        .map_err(|e| reject(StatusCode::BAD_REQUEST, format!("cannot forward {uri:?}: {e}")))?;
    let response = live
        .client
        .send(forward)
        .await
        .map_err(|e| reject(StatusCode::BAD_GATEWAY, format!("the API server did not answer: {e}")))?;
    let (parts, body) = response.into_parts();
    let mut out = Response::new(Body::new(body));
    *out.status_mut() = parts.status;
    if let Some(v) = parts.headers.get(header::CONTENT_TYPE) {
        out.headers_mut().insert(header::CONTENT_TYPE, v.clone());
    }
    Ok(out)
}
