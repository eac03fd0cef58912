//! WATCH: newline-delimited JSON events over a chunked response, in resourceVersion order with no gaps.
//!
//! A watch from a version still in the kind's history replays what followed it; an older one gets an ERROR
//! event with a 410 Expired `Status`. A watcher that falls behind the live feed catches up from the history.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::json;
use tokio::sync::broadcast;

use super::objects::Call;
use super::{Body, Format, table};
use crate::error::ApiError;
use crate::kind::ResourceKind;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{EventType, KindStore, StoreError, StoredObject, WatchEvent};

/// How often an idle watch with `allowWatchBookmarks` gets a BOOKMARK.
const BOOKMARK_EVERY: Duration = Duration::from_secs(30);
/// kube-apiserver's default when a client sets no `timeoutSeconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct Watcher {
    kind: Arc<ResourceKind>,
    store: Arc<KindStore>,
    /// Only objects of this namespace; `None`: every namespace (or a cluster-scoped kind).
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    format: Format,
    include_object: String,
    /// Encoded lines not yet handed to the connection.
    pending: Vec<u8>,
    last_sent: u64,
    live: Option<broadcast::Receiver<Arc<WatchEvent>>>,
    deadline: tokio::time::Instant,
    bookmarks: Option<tokio::time::Interval>,
}

/// Most live events folded into one chunk when a watcher is behind: fewer writes under load.
const MAX_BATCH: usize = 64;

pub(crate) async fn serve(call: Call<'_>, name: Option<String>) -> Result<Response<Body>, ApiError> {
    call.query.validate_list_options()?;
    let from =
        match call.query.resource_version.as_deref() {
            None | Some("0") => None,
            Some(v) => Some(v.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("invalid resourceVersion {v:?}: must be a decimal number"))
            })?),
        };
    let mut fields = call.query.fields.clone();
    if let Some(n) = name {
        fields = FieldSelector::parse(&format!("metadata.name={n}")).map_err(ApiError::bad_request)?;
    }
    let timeout = call.query.timeout_seconds.map(Duration::from_secs).unwrap_or(DEFAULT_TIMEOUT);
    let send_initial = call.query.send_initial_events == Some(true);
    let mut w = Watcher {
        kind: call.kind.clone(),
        store: call.store.clone(),
        namespace: call.namespace.clone(),
        labels: call.query.labels.clone(),
        fields,
        format: call.format,
        include_object: call.query.include_object.clone(),
        pending: Vec::new(),
        last_sent: 0,
        live: None,
        deadline: tokio::time::Instant::now() + timeout,
        bookmarks: call.query.allow_bookmarks.then(|| {
            let mut tick = tokio::time::interval(BOOKMARK_EVERY);
            tick.reset();
            tick
        }),
    };
    match call.store.watch(from, send_initial) {
        Ok(start) => {
            w.last_sent = start.rv;
            for obj in &start.initial {
                if w.matches(obj) {
                    w.push(EventType::Added.as_str(), obj);
                }
            }
            // As kube-apiserver: the end of the initial events is marked only for a client that takes bookmarks.
            if send_initial && call.query.allow_bookmarks {
                w.push_bookmark(start.rv, true);
            }
            for ev in start.replay {
                w.push_event(&ev);
            }
            w.live = Some(start.live);
        }
        Err(StoreError::Expired { oldest }) => w.push_expired(from.unwrap_or(0), oldest),
        Err(_) => {}
    }
    let content_type =
        if call.format == Format::Table { "application/json;as=Table;v=v1;g=meta.k8s.io" } else { "application/json" };
    let stream = futures::stream::unfold(w, |mut w| async move { w.next().await.map(|b| (Ok(Frame::data(b)), w)) });
    let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(stream)));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    resp.headers_mut().insert(header::CACHE_CONTROL, http::HeaderValue::from_static("no-cache, private"));
    Ok(resp)
}

impl Watcher {
    fn matches(&self, obj: &StoredObject) -> bool {
        self.namespace.as_ref().is_none_or(|ns| *ns == obj.namespace)
            && (self.labels.is_empty() || self.labels.matches(&obj.labels))
            && self.fields.matches(&obj.namespace, &obj.name)
    }

    /// Encodes one event line.
    fn push(&mut self, type_: &str, obj: &StoredObject) {
        let line = &mut self.pending;
        line.extend_from_slice(b"{\"type\":\"");
        line.extend_from_slice(type_.as_bytes());
        line.extend_from_slice(b"\",\"object\":");
        match self.format {
            Format::Json | Format::Yaml => line.extend_from_slice(&obj.json),
            Format::Table => {
                let v = obj.value();
                let t = table::table(
                    &self.kind,
                    std::iter::once(&v),
                    json!({"resourceVersion": v["metadata"]["resourceVersion"]}),
                    &self.include_object,
                );
                line.extend_from_slice(&serde_json::to_vec(&t).expect("JSON values serialize"));
            }
            Format::PartialMetadata => {
                let v = super::objects::partial_metadata(&obj.value());
                line.extend_from_slice(&serde_json::to_vec(&v).expect("JSON values serialize"));
            }
        }
        line.extend_from_slice(b"}\n");
    }

    /// Encodes an event, translated by the selectors: an object moving out of them is DELETED for this
    /// watcher, one moving in is ADDED.
    fn push_event(&mut self, ev: &WatchEvent) {
        if ev.rv <= self.last_sent {
            return;
        }
        self.last_sent = ev.rv;
        let now = self.matches(&ev.object);
        let before = ev.previous.as_deref().is_some_and(|p| self.matches(p));
        let type_ = match (ev.kind, before, now) {
            (EventType::Deleted, true, _) => EventType::Deleted,
            (EventType::Deleted, false, _) => return,
            (EventType::Modified, true, true) => EventType::Modified,
            (_, false, true) => EventType::Added,
            (EventType::Modified, true, false) => EventType::Deleted,
            (_, _, false) => return,
            (EventType::Added, true, true) => EventType::Added,
        };
        self.push(type_.as_str(), &ev.object);
    }

    fn push_line(&mut self, value: serde_json::Value) {
        self.pending.extend_from_slice(&serde_json::to_vec(&value).expect("JSON values serialize"));
        self.pending.push(b'\n');
    }

    fn push_bookmark(&mut self, rv: u64, initial_end: bool) {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.kind.kind, "apiVersion": self.kind.api_version(), "metadata": meta});
        self.push_line(json!({"type": "BOOKMARK", "object": obj}));
    }

    /// Encodes the 410 ERROR event and ends the watch.
    fn push_expired(&mut self, asked: u64, oldest: u64) {
        let status = ApiError::expired(format!("too old resource version: {asked} ({oldest})")).to_status();
        self.push_line(json!({"type": "ERROR", "object": status}));
        self.live = None;
    }

    /// Handles one live-feed outcome; false when the watch must end.
    fn receive(&mut self, received: Result<Arc<WatchEvent>, broadcast::error::RecvError>) -> bool {
        match received {
            Ok(ev) => self.push_event(&ev),
            // Fell behind the feed: catch up from the history, or tell the client to relist.
            Err(broadcast::error::RecvError::Lagged(_)) => match self.store.events_after(self.last_sent) {
                Ok(events) => events.iter().for_each(|ev| self.push_event(ev)),
                Err(StoreError::Expired { oldest }) => self.push_expired(self.last_sent, oldest),
                Err(_) => return false,
            },
            Err(_) => return false,
        }
        true
    }

    /// The next chunk of lines, waiting for events; `None` ends the response.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if !self.pending.is_empty() {
                return Some(Bytes::from(std::mem::take(&mut self.pending)));
            }
            let live = self.live.as_mut()?;
            let tick = async {
                match self.bookmarks.as_mut() {
                    Some(t) => {
                        t.tick().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = live.recv() => {
                    if !self.receive(received) {
                        return None;
                    }
                    // Fold whatever else is already queued into the same chunk.
                    for _ in 1..MAX_BATCH {
                        let Some(live) = self.live.as_mut() else { break };
                        match live.try_recv() {
                            Ok(ev) => self.push_event(&ev),
                            Err(broadcast::error::TryRecvError::Lagged(n)) => {
                                if !self.receive(Err(broadcast::error::RecvError::Lagged(n))) {
                                    return None;
                                }
                            }
                            Err(_) => break,
                        }
                    }
                }
                _ = tokio::time::sleep_until(self.deadline) => return None,
                _ = tick => {
                    let (last_event, clock) = self.store.bookmark_point();
                    if last_event <= self.last_sent {
                        self.last_sent = clock.max(self.last_sent);
                        self.push_bookmark(self.last_sent, false);
                    }
                }
            }
        }
    }
}
