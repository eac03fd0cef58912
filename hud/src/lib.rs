//! The terminal subscriber of tilt: what `tilt up` shows in the terminal, as one more client of the API
//! (the same objects the web UI shows, from [`tilt_webview::hub::Hub`], and the log store; triggers and
//! enable/disable are written through the API as button clicks).
//!
//! Three modes, as Go Tilt's: the prompt (default on a terminal: the web UI's address and the keys that
//! switch modes), the stream (`--stream`, or stdout not a terminal: `name ┊ line` per log line, filtered)
//! and the full-screen view (`--legacy`, or `t` at the prompt: resources, details, logs; ratatui).

pub mod app;
pub mod render;
pub mod stream;
pub mod term;

use std::sync::Arc;

use tilt_controllers::logs::LogStore;
use tilt_webview::hub::Hub;

/// What the terminal views read and write.
#[derive(Clone)]
pub struct Feed {
    /// The objects (UIResources, UIButtons, …).
    pub hub: Arc<Hub>,
    /// The logs.
    pub logs: Arc<LogStore>,
    /// The API client, for triggers and enable/disable.
    pub client: kube::Client,
    /// The web UI's URL, ending in `/`.
    pub web_url: String,
}
