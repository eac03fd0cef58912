//! Logs over the API: the `/tilt/v1/logs` endpoint `tilt up` serves from its [`LogStore`], and the
//! `tilt logs` command that reads it.
//!
//! `GET /tilt/v1/logs?resource=a&resource=b&tail=N&since=RFC3339|5m&follow=true&after=SEQ` answers
//! newline-delimited JSON, one [`LogLine`] per line, oldest first; with `follow` it keeps streaming.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use futures::{AsyncBufReadExt, StreamExt};
use http::StatusCode;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use jiff::Timestamp;
use tilt_apiserver::error::ApiError;
use tilt_apiserver::{Endpoint, error_response};
use tilt_controllers::logs::{LogLine, LogStore};
use tilt_hud::stream::{LevelFilter, LogFilter, SourceFilter};
use tokio::sync::broadcast::error::RecvError;

use crate::client;
use crate::up::parse_duration;

/// The path of the logs endpoint.
pub const LOGS_PATH: &str = "/tilt/v1/logs";

/// What a logs request asks for.
#[derive(Debug, Default, PartialEq)]
struct Query {
    resources: Vec<String>,
    tail: Option<usize>,
    since: Option<Timestamp>,
    after: u64,
    follow: bool,
}

fn parse_query(query: Option<&str>) -> Result<Query, ApiError> {
    let mut q = Query::default();
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "resource" => q.resources.extend(v.split(',').filter(|s| !s.is_empty()).map(String::from)),
            "tail" => {
                q.tail = Some(v.parse().map_err(|_| ApiError::bad_request(format!("tail: not a number: {v:?}")))?)
            }
            "after" => q.after = v.parse().map_err(|_| ApiError::bad_request(format!("after: not a number: {v:?}")))?,
            "follow" => q.follow = matches!(v.as_ref(), "true" | "1"),
            "since" => {
                let t = match v.parse::<Timestamp>() {
                    Ok(t) => t,
                    Err(_) => {
                        let d = parse_duration(&v).map_err(ApiError::bad_request)?;
                        Timestamp::now()
                            - jiff::SignedDuration::try_from(d).map_err(|e| ApiError::bad_request(e.to_string()))?
                    }
                };
                q.since = Some(t);
            }
            _ => {}
        }
    }
    Ok(q)
}

fn encode(line: &LogLine) -> Bytes {
    let mut v = serde_json::to_vec(line).expect("log lines serialize");
    v.push(b'\n');
    Bytes::from(v)
}

/// The endpoint serving `store`.
pub fn endpoint(store: Arc<LogStore>) -> Endpoint {
    Arc::new(move |parts: http::request::Parts| {
        let store = store.clone();
        Box::pin(async move {
            let q = match parse_query(parts.uri.query()) {
                Ok(q) => q,
                Err(e) => return error_response(&e),
            };
            // Subscribe before reading the backlog so no line falls between the two.
            let mut feed = store.subscribe();
            let mut lines: Vec<LogLine> = store
                .lines(&q.resources, q.after)
                .into_iter()
                .filter(|l| q.since.is_none_or(|s| l.time >= s))
                .collect();
            if let Some(n) = q.tail {
                lines.drain(..lines.len().saturating_sub(n));
            }
            let last = lines.last().map(|l| l.seq).unwrap_or(q.after);
            let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(256);
            tokio::spawn(async move {
                for l in &lines {
                    if tx.send(encode(l)).await.is_err() {
                        return;
                    }
                }
                if !q.follow {
                    return;
                }
                let mut last = last;
                loop {
                    let line = tokio::select! {
                        l = feed.recv() => l,
                        _ = tx.closed() => return,
                    };
                    match line {
                        Ok(l) if l.seq > last && (q.resources.is_empty() || q.resources.contains(&l.resource)) => {
                            last = l.seq;
                            if tx.send(encode(&l)).await.is_err() {
                                return;
                            }
                        }
                        Ok(_) => {}
                        Err(RecvError::Lagged(_)) => feed = store.subscribe(),
                        Err(RecvError::Closed) => return,
                    }
                }
            });
            let stream = futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|b| (Ok::<_, std::convert::Infallible>(Frame::data(b)), rx))
            });
            let mut resp = http::Response::new(BodyExt::boxed_unsync(StreamBody::new(stream)));
            *resp.status_mut() = StatusCode::OK;
            resp.headers_mut()
                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/x-ndjson"));
            resp
        })
    })
}

/// Flags of `tilt logs`.
#[derive(clap::Args)]
pub struct LogsArgs {
    /// Only these resources' logs (all when none).
    resources: Vec<String>,
    /// Keep streaming new lines.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Only lines newer than this (`5m`, `1h`, or an RFC 3339 time).
    #[arg(long)]
    since: Option<String>,
    /// Only the last N lines.
    #[arg(long)]
    tail: Option<usize>,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// Only lines of this level or worse: `warn` or `error`.
    #[arg(long, alias = "log-level", value_enum, default_value_t = LevelFilter::Info)]
    level: LevelFilter,
    /// Only build output or only runtime output.
    #[arg(long, alias = "log-source", value_enum, default_value_t = SourceFilter::All)]
    source: SourceFilter,
    #[command(flatten)]
    target: client::Target,
}

/// Runs `tilt logs`.
pub async fn logs(args: LogsArgs) -> Result<()> {
    let client = client::connect(&args.target).await?;
    let mut query = form_urlencoded::Serializer::new(String::new());
    for r in &args.resources {
        query.append_pair("resource", r);
    }
    if let Some(s) = &args.since {
        query.append_pair("since", s);
    }
    if let Some(n) = args.tail {
        query.append_pair("tail", &n.to_string());
    }
    if args.follow {
        query.append_pair("follow", "true");
    }
    let req = http::Request::get(format!("{LOGS_PATH}?{}", query.finish())).body(Vec::new())?;
    let reader = client.request_stream(req).await.context("reading logs")?;
    let filter = LogFilter { level: args.level, source: args.source, resources: Vec::new() };
    let mut lines = reader.lines();
    while let Some(line) = lines.next().await {
        let line = line.context("reading logs")?;
        let l: LogLine = match serde_json::from_str(&line) {
            Ok(l) => l,
            Err(e) => bail!("unexpected log line from the server: {e}"),
        };
        if !filter.keeps(&l) {
            continue;
        }
        if args.json {
            crate::view::say(&line);
        } else {
            crate::view::say(&format!("{} │ {}", l.resource, l.text));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        let q = parse_query(Some("resource=a,b&resource=c&tail=5&follow=true&after=3")).unwrap();
        assert_eq!(q.resources, ["a", "b", "c"]);
        assert_eq!((q.tail, q.follow, q.after), (Some(5), true, 3));
        assert!(parse_query(Some("since=5m")).unwrap().since.is_some());
        assert!(parse_query(Some("since=2026-01-01T00:00:00Z")).unwrap().since.is_some());
        assert!(parse_query(Some("tail=x")).is_err());
        assert!(parse_query(Some("since=soon")).is_err());
    }
}
