//! The terminal side of `tilt up`: its modes (prompt, stream, full-screen view from `tilt-hud`), and in the
//! stream one compact, colourized line whenever a resource's status changes.

use std::collections::HashMap;
use std::io::IsTerminal;

use futures::StreamExt;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tilt_apis::{RuntimeStatus, UIResource, UpdateStatus};
use tilt_hud::Feed;
use tilt_hud::stream::LogFilter;
use tilt_hud::term::{self, Choice};
use tokio_util::sync::CancellationToken;

pub use tilt_hud::stream::say;

fn colour(code: &str, text: &str) -> String {
    if std::io::stdout().is_terminal() { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
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

/// How `tilt up` uses the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Go Tilt's prompt: the web UI's address and keys to open it or switch modes.
    Prompt,
    /// Log lines (and, with `status_lines`, a line per resource status change).
    Stream {
        /// Also print resource status changes.
        status_lines: bool,
    },
    /// The full-screen view.
    Legacy,
}

/// Runs the terminal side of `tilt up` in `mode` until `stop`; cancels `quit` when the user quits.
pub async fn terminal(mode: Mode, feed: Feed, filter: LogFilter, stop: CancellationToken, quit: CancellationToken) {
    let mut mode = mode;
    loop {
        match mode {
            Mode::Stream { status_lines } => {
                let statuses = status_lines.then(|| tokio::spawn(print_resources(feed.client.clone())));
                tokio::select! {
                    _ = tilt_hud::stream::print(feed.logs.clone(), filter.clone()) => {}
                    _ = stop.cancelled() => {}
                }
                if let Some(s) = statuses {
                    s.abort();
                }
                return;
            }
            Mode::Prompt => {
                say(&format!("tilt-rs v{}", env!("CARGO_PKG_VERSION")));
                tiltfile_output(&feed).await;
                match term::prompt(&feed.web_url, &stop).await {
                    Ok(Choice::Stream) => mode = Mode::Stream { status_lines: false },
                    Ok(Choice::Legacy) => mode = Mode::Legacy,
                    Ok(Choice::Quit) => {
                        quit.cancel();
                        return;
                    }
                    Err(e) => {
                        say(&format!("the prompt cannot read keys ({e}); streaming logs"));
                        mode = Mode::Stream { status_lines: false };
                    }
                }
            }
            Mode::Legacy => {
                match term::full_screen(feed.clone(), stop.clone()).await {
                    Ok(true) => quit.cancel(),
                    Ok(false) => {}
                    Err(e) => {
                        say(&format!("the terminal view failed: {e:#}"));
                        quit.cancel();
                    }
                }
                return;
            }
        }
    }
}

/// Prints what the Tiltfile's first load printed, waiting for it a few seconds.
async fn tiltfile_output(feed: &Feed) {
    let tiltfile = vec![crate::up::MAIN_TILTFILE.to_string()];
    let loaded = || {
        feed.hub.all().0[1].iter().any(|r| {
            r["metadata"]["name"] == crate::up::MAIN_TILTFILE
                && r["status"]["buildHistory"].as_array().is_some_and(|h| !h.is_empty())
        })
    };
    let mut changed = feed.hub.subscribe();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), async {
        while !loaded() {
            if changed.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    for line in feed.logs.lines(&tiltfile, 0) {
        say(&line.text);
    }
}
