//! One open page's `/ws/view` stream: a complete view first, then at most one delta per
//! [`MIN_INTERVAL`] with the objects that changed and the log lines that arrived since.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use tilt_controllers::logs::{LogLine, LogStore};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::hub::Hub;
use crate::view;

/// The shortest gap between two messages to one page.
pub const MIN_INTERVAL: Duration = Duration::from_millis(200);

/// How long a socket waits for the first listing of every kind before sending what it has.
const LIST_WAIT: Duration = Duration::from_secs(5);

/// What a socket needs.
pub struct Feed {
    /// The shared objects.
    pub hub: Arc<Hub>,
    /// The logs.
    pub logs: Arc<LogStore>,
    /// `tiltStartTime`.
    pub tilt_start_time: String,
}

/// A page's first view carries the log backlog in messages of about this much text each, so that no single
/// message takes the page long to parse.
const BACKLOG_CHUNK: usize = 256 * 1024;

/// Everything now: the objects, the revision, every stored line and the checkpoint after them.
type Now = ([Vec<std::sync::Arc<serde_json::Value>>; 4], u64, Vec<LogLine>, u64);

impl Feed {
    async fn now(&self) -> Now {
        wait_listed(&self.hub).await;
        let (objects, rev) = self.hub.all();
        let lines = self.logs.lines(&[], 0);
        let to = lines.last().map(|l| l.seq).unwrap_or_else(|| self.logs.last_seq());
        (objects, rev, lines, to)
    }

    /// A complete view now (every stored line in it), with the revision and log checkpoint it covers.
    pub async fn complete(&self) -> (serde_json::Value, u64, u64) {
        let (objects, rev, lines, to) = self.now().await;
        let header = view::Header { tilt_start_time: &self.tilt_start_time };
        (view::complete(&header, objects, &lines, to), rev, to)
    }

    /// A complete view now as messages: the first complete (objects and the oldest lines), the rest log
    /// deltas with the following lines, in [`BACKLOG_CHUNK`]s; with the revision and checkpoint covered.
    async fn complete_messages(&self) -> (Vec<serde_json::Value>, u64, u64) {
        let (objects, rev, lines, to) = self.now().await;
        let header = view::Header { tilt_start_time: &self.tilt_start_time };
        let mut chunks: Vec<&[LogLine]> = Vec::new();
        let (mut start, mut bytes) = (0, 0);
        for (i, l) in lines.iter().enumerate() {
            bytes += l.text.len() + 64;
            if bytes >= BACKLOG_CHUNK {
                chunks.push(&lines[start..=i]);
                (start, bytes) = (i + 1, 0);
            }
        }
        if start < lines.len() || chunks.is_empty() {
            chunks.push(&lines[start..]);
        }
        let end = |c: &[LogLine], last: bool| if last { to } else { c.last().map(|l| l.seq).unwrap_or(to) };
        let n = chunks.len();
        let mut messages = vec![view::complete(&header, objects, chunks[0], end(chunks[0], n == 1))];
        let mut from = end(chunks[0], n == 1);
        for (i, chunk) in chunks.iter().enumerate().skip(1) {
            let upto = end(chunk, i == n - 1);
            messages.extend(view::delta(&header, crate::hub::Delta::default(), chunk, from, upto));
            from = upto;
        }
        (messages, rev, to)
    }
}

async fn wait_listed(hub: &Hub) {
    let mut changed = hub.subscribe();
    let _ = tokio::time::timeout(LIST_WAIT, async {
        while !hub.listed() {
            if changed.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
}

/// Streams views to `socket` until the page goes away.
pub async fn serve(mut socket: WebSocket, feed: Arc<Feed>) {
    // Subscribe before reading the backlog: a line appended in between arrives twice and is skipped by
    // its sequence number, never lost.
    let mut lines_feed = feed.logs.subscribe();
    let mut changed = feed.hub.subscribe();
    let (first, mut rev, mut checkpoint) = feed.complete_messages().await;
    for message in &first {
        if send(&mut socket, message).await.is_err() {
            return;
        }
    }
    drop(first);
    changed.mark_unchanged();
    let header = view::Header { tilt_start_time: &feed.tilt_start_time };
    let mut pending: Vec<LogLine> = Vec::new();
    let mut lagged = false;
    let mut last_sent = Instant::now();
    loop {
        // Wait for something to send, reading the page's frames meanwhile (pings, close).
        let mut due = !pending.is_empty() || lagged || changed.has_changed().unwrap_or(false);
        while !due {
            tokio::select! {
                r = changed.changed() => {
                    if r.is_err() { return; }
                    due = true;
                }
                line = lines_feed.recv() => match line {
                    Ok(l) => { if l.seq > checkpoint { pending.push(l); } due = true; }
                    Err(RecvError::Lagged(_)) => { lagged = true; due = true; }
                    Err(RecvError::Closed) => return,
                },
                frame = socket.recv() => match frame {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                },
            }
        }
        // Coalesce until the interval is up, still taking lines.
        let until = last_sent + MIN_INTERVAL;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                line = lines_feed.recv() => match line {
                    Ok(l) => if l.seq > checkpoint { pending.push(l) },
                    Err(RecvError::Lagged(_)) => lagged = true,
                    Err(RecvError::Closed) => return,
                },
                frame = socket.recv() => match frame {
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                },
            }
        }
        if lagged {
            // The live feed overflowed: read what was missed from the store instead.
            pending = feed.logs.lines(&[], checkpoint);
            lines_feed = lines_feed.resubscribe();
            lagged = false;
        }
        changed.mark_unchanged();
        let delta = feed.hub.since(rev);
        let message = if delta.resync {
            let (mut messages, r, c) = feed.complete_messages().await;
            (rev, checkpoint) = (r, c);
            pending.clear();
            let last = messages.pop();
            for m in &messages {
                if send(&mut socket, m).await.is_err() {
                    return;
                }
            }
            last
        } else {
            rev = delta.rev;
            let from = checkpoint;
            if let Some(last) = pending.last() {
                checkpoint = last.seq;
            }
            let message = view::delta(&header, delta, &pending, from, checkpoint);
            pending.clear();
            message
        };
        if let Some(message) = message {
            if send(&mut socket, &message).await.is_err() {
                return;
            }
            last_sent = Instant::now();
        }
    }
}

async fn send(socket: &mut WebSocket, view: &serde_json::Value) -> Result<(), axum::Error> {
    socket.send(Message::Text(view.to_string().into())).await
}
