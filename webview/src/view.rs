//! The `View` JSON of Go Tilt's web protocol: a complete view (first message of a socket, `/api/view`)
//! and deltas (changed objects, deletion stubs, new log segments).
//!
//! Log checkpoints are positions in the log store: checkpoint `n` is "after the line with sequence number
//! `n`", so a `logList` with `fromCheckpoint: a, toCheckpoint: b` carries the retained lines with
//! `a < seq <= b`.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tilt_controllers::logs::LogLine;

use crate::hub::{Delta, ViewKind};

/// The resource Go Tilt shows first.
const TILTFILE: &str = "(Tiltfile)";

/// The span a line belongs to.
fn span_id(line: &LogLine) -> String {
    tilt_controllers::logs::span_id(&line.resource, &line.source)
}

/// A `logList` of `lines`, covering checkpoints `from..to`.
pub fn log_list(lines: &[LogLine], from: u64, to: u64) -> Value {
    let mut spans = Map::new();
    let segments: Vec<Value> = lines
        .iter()
        .map(|l| {
            let id = span_id(l);
            if !spans.contains_key(&id) {
                let manifest = if l.resource == TILTFILE { "" } else { l.resource.as_str() };
                spans.insert(id.clone(), json!({"manifestName": manifest}));
            }
            json!({
                "spanId": id,
                "time": l.time.to_string(),
                "text": format!("{}\n", l.text),
                "level": l.level.as_str(),
            })
        })
        .collect();
    json!({"spans": spans, "segments": segments, "fromCheckpoint": from, "toCheckpoint": to})
}

/// Orders resources as Go Tilt does: the Tiltfile first, then by `status.order`, then by name.
fn sort_resources(resources: &mut [Arc<Value>]) {
    resources.sort_by_cached_key(|r| {
        let name = r["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let order = r["status"]["order"].as_i64().unwrap_or(0);
        (name != TILTFILE, order, name)
    });
}

/// Fields every message carries.
pub struct Header<'a> {
    /// When this tilt started (RFC 3339); a change makes pages reload.
    pub tilt_start_time: &'a str,
}

fn put_objects(view: &mut Map<String, Value>, mut objects: [Vec<Arc<Value>>; 4], complete: bool) {
    for (i, kind) in ViewKind::ALL.iter().enumerate() {
        let list = std::mem::take(&mut objects[i]);
        if list.is_empty() && !complete {
            continue;
        }
        match kind {
            ViewKind::UISession => {
                if let Some(s) = list.into_iter().find(|s| s["metadata"]["name"] == "Tiltfile") {
                    view.insert("uiSession".into(), (*s).clone());
                }
            }
            ViewKind::UIResource => {
                let mut list = list;
                sort_resources(&mut list);
                view.insert("uiResources".into(), Value::Array(list.iter().map(|o| (**o).clone()).collect()));
            }
            ViewKind::UIButton => {
                view.insert("uiButtons".into(), Value::Array(list.iter().map(|o| (**o).clone()).collect()));
            }
            ViewKind::Cluster => {
                view.insert("clusters".into(), Value::Array(list.iter().map(|o| (**o).clone()).collect()));
            }
        }
    }
}

/// A complete view: every object and the given log lines (checkpoints `0..to`).
pub fn complete(header: &Header<'_>, objects: [Vec<Arc<Value>>; 4], lines: &[LogLine], to: u64) -> Value {
    let mut view = Map::new();
    put_objects(&mut view, objects, true);
    view.insert("logList".into(), log_list(lines, 0, to));
    view.insert("tiltStartTime".into(), json!(header.tilt_start_time));
    view.insert("isComplete".into(), json!(true));
    Value::Object(view)
}

/// A delta, or `None` when nothing changed.
pub fn delta(header: &Header<'_>, delta: Delta, lines: &[LogLine], from: u64, to: u64) -> Option<Value> {
    let mut view = Map::new();
    put_objects(&mut view, delta.objects, false);
    if !lines.is_empty() {
        view.insert("logList".into(), log_list(lines, from, to));
    }
    if view.is_empty() {
        return None;
    }
    view.insert("tiltStartTime".into(), json!(header.tilt_start_time));
    Some(Value::Object(view))
}

/// `{view, createdAt}`: a snapshot of a complete view, as `tilt snapshot view` reads it.
pub fn snapshot(view: Value) -> Value {
    json!({"view": view, "createdAt": jiff::Timestamp::now().to_string()})
}

#[cfg(test)]
mod tests {
    use super::*;
    use tilt_controllers::logs::LogLevel;

    fn line(seq: u64, resource: &str, source: &str, text: &str) -> LogLine {
        LogLine {
            seq,
            time: "2026-12-04T10:00:00Z".parse().unwrap(),
            resource: resource.into(),
            source: source.into(),
            text: text.into(),
            level: LogLevel::Info,
        }
    }

    #[test]
    fn build_and_runtime_spans() {
        let lines = [
            line(3, "api", "cmd/api:update", "compiling"),
            line(4, "api", "cmd/api:serve", "listening"),
            line(5, "(Tiltfile)", "tiltfile", "loaded"),
            line(6, "app", "dockerimage/app-image", "step 1"),
            line(7, "app", "pod/default/app-1/app", "hello"),
        ];
        let list = log_list(&lines, 2, 7);
        let segs = list["segments"].as_array().unwrap();
        let ids: Vec<&str> = segs.iter().map(|s| s["spanId"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            [
                "build:api:cmd/api:update",
                "api:cmd/api:serve",
                "build:(Tiltfile):tiltfile",
                "build:app:dockerimage/app-image",
                "app:pod/default/app-1/app"
            ]
        );
        assert_eq!(list["spans"]["api:cmd/api:serve"]["manifestName"], "api");
        assert_eq!(list["spans"]["build:(Tiltfile):tiltfile"]["manifestName"], "");
        assert_eq!(segs[0]["text"], "compiling\n");
        assert_eq!(segs[0]["level"], "INFO");
        assert_eq!((list["fromCheckpoint"].as_u64(), list["toCheckpoint"].as_u64()), (Some(2), Some(7)));
    }

    #[test]
    fn the_tiltfile_comes_first_and_empty_deltas_are_none() {
        let r = |n: &str| Arc::new(json!({"metadata": {"name": n}}));
        let objects = [vec![], vec![r("b"), r("(Tiltfile)"), r("a")], vec![], vec![]];
        let header = Header { tilt_start_time: "2026-12-04T10:00:00Z" };
        let v = complete(&header, objects, &[], 0);
        let names: Vec<&str> =
            v["uiResources"].as_array().unwrap().iter().map(|r| r["metadata"]["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["(Tiltfile)", "a", "b"]);
        assert_eq!(v["isComplete"], true);
        assert_eq!(v["uiButtons"], json!([]));
        assert!(delta(&header, Delta::default(), &[], 0, 0).is_none());
        let d = delta(&header, Delta::default(), &[line(1, "a", "cmd/a:serve", "x")], 0, 1).unwrap();
        assert!(d.get("uiResources").is_none() && d.get("isComplete").is_none());
        assert_eq!(d["logList"]["segments"].as_array().unwrap().len(), 1);
    }
}
