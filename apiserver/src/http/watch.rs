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
use tokio::sync::{broadcast, mpsc};

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
    labels: LabelSelector,
    fields: FieldSelector,
    format: Format,
    include_object: String,
    bookmarks: bool,
    tx: mpsc::Sender<Bytes>,
    last_sent: u64,
}

pub(crate) async fn serve(call: Call<'_>, name: Option<String>) -> Result<Response<Body>, ApiError> {
    let from = match call.query.resource_version.as_deref() {
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
    let send_initial = call.query.send_initial_events;
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut w = Watcher {
        kind: call.kind.clone(),
        store: call.store.clone(),
        labels: call.query.labels.clone(),
        fields,
        format: call.format,
        include_object: call.query.include_object.clone(),
        bookmarks: call.query.allow_bookmarks,
        tx,
        last_sent: 0,
    };
    let start = call.store.watch(from, send_initial);
    tokio::spawn(async move {
        let _ = tokio::time::timeout(timeout, async {
            match start {
                Ok(start) => {
                    w.last_sent = start.rv;
                    for obj in &start.initial {
                        if w.matches(obj) && !w.send(EventType::Added.as_str(), obj).await {
                            return;
                        }
                    }
                    if send_initial && !w.bookmark(start.rv, true).await {
                        return;
                    }
                    for ev in start.replay {
                        if !w.event(&ev).await {
                            return;
                        }
                    }
                    w.follow(start.live).await;
                }
                Err(StoreError::Expired { oldest }) => w.expired(from.unwrap_or(0), oldest).await,
                Err(_) => {}
            }
        })
        .await;
    });
    let content_type = if call.format == Format::Table { "application/json;as=Table;v=v1;g=meta.k8s.io" } else { "application/json" };
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (Ok(Frame::data(b)), rx)) });
    let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(stream)));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    resp.headers_mut().insert(header::CACHE_CONTROL, http::HeaderValue::from_static("no-cache, private"));
    Ok(resp)
}

impl Watcher {
    fn matches(&self, obj: &StoredObject) -> bool {
        (self.labels.is_empty() || self.labels.matches(&obj.labels)) && self.fields.matches(&obj.name)
    }

    async fn write(&self, line: Vec<u8>) -> bool {
        self.tx.send(Bytes::from(line)).await.is_ok()
    }

    /// Sends one event; false once the client is gone.
    async fn send(&self, type_: &str, obj: &StoredObject) -> bool {
        let mut line = Vec::with_capacity(obj.json.len() + 40);
        line.extend_from_slice(b"{\"type\":\"");
        line.extend_from_slice(type_.as_bytes());
        line.extend_from_slice(b"\",\"object\":");
        match self.format {
            Format::Json | Format::Yaml => line.extend_from_slice(&obj.json),
            Format::Table => {
                let v = obj.value();
                let t = table::table(&self.kind, std::iter::once(&v), json!({"resourceVersion": v["metadata"]["resourceVersion"]}), &self.include_object);
                line.extend_from_slice(&serde_json::to_vec(&t).expect("JSON values serialize"));
            }
            Format::PartialMetadata => {
                let v = super::objects::partial_metadata(&obj.value());
                line.extend_from_slice(&serde_json::to_vec(&v).expect("JSON values serialize"));
            }
        }
        line.extend_from_slice(b"}\n");
        self.write(line).await
    }

    /// Sends an event, translated by the selectors: an object moving out of them is DELETED for this watcher.
    async fn event(&mut self, ev: &WatchEvent) -> bool {
        if ev.rv <= self.last_sent {
            return true;
        }
        self.last_sent = ev.rv;
        let now = self.matches(&ev.object);
        let before = ev.previous.as_deref().is_some_and(|p| self.matches(p));
        let type_ = match (ev.kind, before, now) {
            (EventType::Deleted, true, _) => EventType::Deleted,
            (EventType::Deleted, false, _) => return true,
            (EventType::Modified, true, true) => EventType::Modified,
            (_, false, true) => EventType::Added,
            (EventType::Modified, true, false) => EventType::Deleted,
            (_, _, false) => return true,
            (EventType::Added, true, true) => EventType::Added,
        };
        self.send(type_.as_str(), &ev.object).await
    }

    async fn bookmark(&self, rv: u64, initial_end: bool) -> bool {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let obj = json!({"kind": self.kind.kind, "apiVersion": self.kind.api_version(), "metadata": meta});
        let line = json!({"type": "BOOKMARK", "object": obj});
        let mut bytes = serde_json::to_vec(&line).expect("JSON values serialize");
        bytes.push(b'\n');
        self.write(bytes).await
    }

    async fn expired(&self, asked: u64, oldest: u64) {
        let status = ApiError::expired(format!("too old resource version: {asked} ({oldest})")).to_status();
        let mut bytes = serde_json::to_vec(&json!({"type": "ERROR", "object": status})).expect("JSON values serialize");
        bytes.push(b'\n');
        self.write(bytes).await;
    }

    async fn follow(&mut self, mut live: broadcast::Receiver<Arc<WatchEvent>>) {
        let mut tick = tokio::time::interval(BOOKMARK_EVERY);
        tick.reset();
        loop {
            tokio::select! {
                received = live.recv() => match received {
                    Ok(ev) => if !self.event(&ev).await { return },
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        match self.store.events_after(self.last_sent) {
                            Ok(events) => for ev in events {
                                if !self.event(&ev).await { return }
                            },
                            Err(StoreError::Expired { oldest }) => return self.expired(self.last_sent, oldest).await,
                            Err(_) => return,
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick(), if self.bookmarks => {
                    let (last_event, clock) = self.store.bookmark_point();
                    if last_event <= self.last_sent {
                        self.last_sent = clock.max(self.last_sent);
                        if !self.bookmark(self.last_sent, false).await { return }
                    }
                }
                _ = self.tx.closed() => return,
            }
        }
    }
}
