//! The terminal view of `tilt up`: one compact, colourized line whenever a resource's status changes,
//! and every log line prefixed by its resource.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use futures::StreamExt;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tilt_apis::{RuntimeStatus, UIResource, UpdateStatus};
use tilt_controllers::logs::LogStore;

/// Prints a line; a closed stdout (`tilt up | head -1`) must not stop tilt.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

fn colour(code: &str, text: &str) -> String {
    if std::io::stdout().is_terminal() { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
}

/// Prints every log line as `resource │ text`.
pub async fn print_logs(logs: Arc<LogStore>) {
    let mut feed = logs.subscribe();
    loop {
        match feed.recv().await {
            Ok(line) => say(&format!("{} │ {}", colour("2", &format!("{:>12}", line.resource)), line.text)),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => say(&format!("… {n} log lines skipped")),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

fn update_word(s: Option<UpdateStatus>) -> Option<String> {
    Some(match s? {
        UpdateStatus::Ok => colour("32", "ok"),
        UpdateStatus::Error => colour("31", "error"),
        UpdateStatus::InProgress => colour("33", "building"),
        UpdateStatus::Pending => colour("33", "pending"),
        UpdateStatus::None | UpdateStatus::NotApplicable => return None,
    })
}

fn runtime_word(s: Option<RuntimeStatus>) -> Option<String> {
    Some(match s? {
        RuntimeStatus::Ok => colour("32", "ready"),
        RuntimeStatus::Error => colour("31", "error"),
        RuntimeStatus::Pending => colour("33", "starting"),
        RuntimeStatus::Unknown => colour("33", "unknown"),
        RuntimeStatus::None | RuntimeStatus::NotApplicable => return None,
    })
}

/// One line summarizing a resource, e.g. `▶ api  build ok · server ready`.
pub fn summary(r: &UIResource) -> String {
    let status = r.status.clone().unwrap_or_default();
    let mut parts = Vec::new();
    if let Some(w) = update_word(status.update_status) {
        parts.push(format!("build {w}"));
    }
    if let Some(w) = runtime_word(status.runtime_status) {
        parts.push(format!("server {w}"));
    }
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
    let mut line = format!("▶ {}  {}", colour("1", &r.name_any()), parts.join(" · "));
    if let Some(w) = &status.waiting {
        line.push_str(&format!("  ({})", w.reason));
    } else if let Some(c) = ready.filter(|c| c.status != "True" && !c.message.is_empty()) {
        line.push_str(&format!("  ({})", c.message));
    }
    line
}

/// Prints a status line whenever a resource's summary changes.
pub async fn print_resources(client: Client) {
    let mut last: HashMap<String, String> = HashMap::new();
    let mut events =
        watcher(Api::<UIResource>::all(client), watcher::Config::default()).default_backoff().applied_objects().boxed();
    while let Some(event) = events.next().await {
        if let Ok(r) = event {
            let line = summary(&r);
            // Nothing to say until a controller has summarized it.
            if r.status.as_ref().is_none_or(|s| s.update_status.is_none() && s.runtime_status.is_none()) {
                continue;
            }
            if last.get(&r.name_any()) != Some(&line) {
                say(&line);
                last.insert(r.name_any(), line);
            }
        }
    }
}

/// The resources that are not ready, with why, for a `tilt ci` timeout message.
pub async fn pending_resources(client: &Client) -> String {
    let Ok(list) = Api::<UIResource>::all(client.clone()).list(&ListParams::default()).await else {
        return "(could not list resources)".into();
    };
    let pending: Vec<String> = list
        .items
        .iter()
        .filter_map(|r| {
            let status = r.status.clone().unwrap_or_default();
            let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
            if ready.is_some_and(|c| c.status == "True") {
                return None;
            }
            let why = status
                .waiting
                .map(|w| w.reason)
                .or(ready.map(|c| c.message.clone()).filter(|m| !m.is_empty()))
                .unwrap_or_else(|| "not ready".into());
            Some(format!("{} ({why})", r.name_any()))
        })
        .collect();
    if pending.is_empty() { "the Tiltfile had not finished loading".into() } else { pending.join(", ") }
}
