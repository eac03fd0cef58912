//! The full-screen view's state: the resources as rows, the selection, what is expanded, the log pane's
//! tab, size and scroll, the name filter, and what each key does.

use std::collections::{BTreeMap, HashSet};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use jiff::Timestamp;
use serde_json::Value;

/// The Tiltfile's own resource, always first.
pub const TILTFILE: &str = "(Tiltfile)";

/// A resource's combined status, by Go Tilt's rule: disabled, then the build, then the runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    /// Building, or waiting to build or start.
    Pending,
    /// Failed.
    Error,
    /// Up to date and running (or nothing to run).
    Ok,
    /// Turned off.
    Disabled,
}

/// One build of the history.
#[derive(Clone, Debug, PartialEq)]
pub struct Build {
    /// When it started.
    pub start: Option<Timestamp>,
    /// When it ended.
    pub finish: Option<Timestamp>,
    /// Why it failed; empty on success.
    pub error: String,
    /// What it warned about.
    pub warnings: Vec<String>,
}

/// What the view shows of one resource.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Its name.
    pub name: String,
    /// Its label groups (label keys, as in the web UI).
    pub groups: Vec<String>,
    /// Combined status.
    pub health: Health,
    /// `updateStatus` (`ok`, `error`, `in_progress`, `pending`, `not_applicable`, `none`).
    pub update: String,
    /// `runtimeStatus`.
    pub runtime: String,
    /// A build is running.
    pub building: bool,
    /// When the running build started.
    pub build_start: Option<Timestamp>,
    /// Finished builds, newest first.
    pub history: Vec<Build>,
    /// When it was last updated (deployed, or its last build finished).
    pub as_of: Option<Timestamp>,
    /// `local`, `k8s`, … or `Tiltfile`.
    pub kind: String,
    /// The server's pid.
    pub pid: i64,
    /// The pod, its status and restarts.
    pub pod: Option<(String, String, i32)>,
    /// Endpoint URLs.
    pub endpoints: Vec<String>,
    /// What it waits for.
    pub waiting: String,
    /// Why it is not ready (the Ready condition's message).
    pub message: String,
}

fn time(v: &Value) -> Option<Timestamp> {
    v.as_str()?.parse().ok()
}

impl Row {
    /// The row of a UIResource object.
    pub fn from_object(r: &Value) -> Row {
        let s = &r["status"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let update = text(&s["updateStatus"]);
        let runtime = text(&s["runtimeStatus"]);
        let disabled = s["disableStatus"]["state"] == "Disabled";
        let health = if disabled {
            Health::Disabled
        } else if update == "error" || runtime == "error" {
            Health::Error
        } else if matches!(update.as_str(), "in_progress" | "pending")
            || matches!(runtime.as_str(), "pending" | "unknown")
        {
            Health::Pending
        } else {
            Health::Ok
        };
        let history: Vec<Build> = s["buildHistory"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| Build {
                start: time(&b["startTime"]),
                finish: time(&b["finishTime"]),
                error: text(&b["error"]),
                warnings: b["warnings"].as_array().into_iter().flatten().map(text).collect(),
            })
            .collect();
        let mut groups: Vec<String> = r["metadata"]["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .filter(|k| !k.starts_with("tilt.dev/"))
            .collect();
        groups.sort();
        let name = text(&r["metadata"]["name"]);
        let kind = if name == TILTFILE {
            "Tiltfile".to_string()
        } else {
            s["specs"].as_array().and_then(|s| s.last()).map(|t| text(&t["type"])).unwrap_or_default()
        };
        let ready = s["conditions"].as_array().into_iter().flatten().find(|c| c["type"] == "Ready");
        let k8s = &s["k8sResourceInfo"];
        Row {
            groups,
            health,
            building: s["currentBuild"]["startTime"].is_string(),
            build_start: time(&s["currentBuild"]["startTime"]),
            as_of: time(&s["lastDeployTime"]).or_else(|| history.first().and_then(|b| b.finish)),
            history,
            kind,
            pid: s["localResourceInfo"]["pid"].as_i64().unwrap_or(0),
            pod: k8s["podName"]
                .as_str()
                .filter(|p| !p.is_empty())
                .map(|p| (p.to_string(), text(&k8s["podStatus"]), k8s["podRestarts"].as_i64().unwrap_or(0) as i32)),
            endpoints: s["endpointLinks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l["url"].as_str().map(String::from))
                .collect(),
            waiting: text(&s["waiting"]["reason"]),
            message: ready.map(|c| text(&c["message"])).unwrap_or_default(),
            update,
            runtime,
            name,
        }
    }

    /// The error to show: the last build's, or why it is not ready.
    pub fn error(&self) -> Option<String> {
        if self.health != Health::Error {
            return None;
        }
        let build = self.history.first().map(|b| b.error.clone()).filter(|e| !e.is_empty());
        Some(build.unwrap_or_else(|| self.message.clone()))
    }
}

/// Which lines the log pane shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogTab {
    /// Every resource's lines.
    All,
    /// The selected resource's build output.
    Build,
    /// The selected resource's runtime output.
    Runtime,
}

/// How tall the log pane is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogSize {
    /// A few lines.
    Short,
    /// Half the screen.
    Half,
    /// All of it but the status lines.
    Full,
}

/// What a key asks the view's owner to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing beyond redrawing.
    None,
    /// Quit `tilt up`.
    Quit,
    /// Trigger this resource.
    Trigger(String),
    /// Turn this resource on (`true`) or off (`false`).
    Enable(String, bool),
    /// Open this URL in the browser.
    Open(String),
    /// Redraw the whole screen.
    Redraw,
}

/// The view's state.
pub struct App {
    /// Every resource, in display order (the Tiltfile, then by group, then by name).
    pub rows: Vec<Row>,
    /// The selected resource.
    pub selected: Option<String>,
    /// Resources expanded by hand (→), and those collapsed by hand (←) although they have an error.
    pub expanded: HashSet<String>,
    /// Collapsed by hand.
    pub collapsed: HashSet<String>,
    /// The log pane's tab.
    pub tab: LogTab,
    /// The log pane's size.
    pub size: LogSize,
    /// Lines scrolled up from the newest (0: follow).
    pub scroll: usize,
    /// The name filter, and whether it is being typed.
    pub filter: String,
    /// Typing the filter.
    pub typing: bool,
    /// The web UI's URL, ending in `/`.
    pub web_url: String,
    /// A message about the last action (shown in the status bar for a while).
    pub notice: Option<String>,
}

impl App {
    /// An empty view pointing at the web UI at `web_url`.
    pub fn new(web_url: &str) -> App {
        App {
            rows: Vec::new(),
            selected: None,
            expanded: HashSet::new(),
            collapsed: HashSet::new(),
            tab: LogTab::All,
            size: LogSize::Half,
            scroll: 0,
            filter: String::new(),
            typing: false,
            web_url: web_url.to_string(),
            notice: None,
        }
    }

    /// Replaces the rows with those of `resources` (UIResource objects).
    pub fn set_resources<'a>(&mut self, resources: impl IntoIterator<Item = &'a Value>) {
        let mut rows: Vec<Row> = resources.into_iter().map(Row::from_object).collect();
        rows.sort_by(|a, b| {
            let key = |r: &Row| (r.name != TILTFILE, r.groups.is_empty(), r.groups.first().cloned(), r.name.clone());
            key(a).cmp(&key(b))
        });
        self.rows = rows;
        self.keep_selection_visible();
    }

    /// The rows the name filter lets through.
    pub fn visible(&self) -> impl Iterator<Item = &Row> {
        let needle = self.filter.to_lowercase();
        self.rows.iter().filter(move |r| needle.is_empty() || r.name.to_lowercase().contains(&needle))
    }

    /// The selected row.
    pub fn selected_row(&self) -> Option<&Row> {
        let name = self.selected.as_ref()?;
        self.rows.iter().find(|r| &r.name == name)
    }

    /// Whether `row` shows its details: expanded by hand, or failing and not collapsed by hand.
    pub fn is_expanded(&self, row: &Row) -> bool {
        self.expanded.contains(&row.name) || (row.health == Health::Error && !self.collapsed.contains(&row.name))
    }

    /// Counts per combined status.
    pub fn counts(&self) -> BTreeMap<Health, usize> {
        let mut counts = BTreeMap::new();
        for r in &self.rows {
            *counts.entry(r.health).or_default() += 1;
        }
        counts
    }

    /// Whether something is building (the spinner turns).
    pub fn building(&self) -> bool {
        self.rows.iter().any(|r| r.building)
    }

    /// Selects the first visible row when the selected one is filtered out (or gone).
    fn keep_selection_visible(&mut self) {
        let shown = self.selected.as_ref().is_some_and(|s| self.visible().any(|r| &r.name == s));
        if !shown {
            let first = self.visible().next().map(|r| r.name.clone());
            self.selected = first;
        }
    }

    fn move_selection(&mut self, by: isize) {
        let names: Vec<String> = self.visible().map(|r| r.name.clone()).collect();
        if names.is_empty() {
            return;
        }
        let at = self.selected.as_ref().and_then(|s| names.iter().position(|n| n == s)).unwrap_or(0) as isize;
        let to = (at + by).clamp(0, names.len() as isize - 1) as usize;
        self.selected = Some(names[to].clone());
    }

    /// Applies a key.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if self.typing {
            match key.code {
                KeyCode::Esc => {
                    self.filter.clear();
                    self.typing = false;
                }
                KeyCode::Enter => self.typing = false,
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) => self.filter.push(c),
                _ => {}
            }
            self.keep_selection_visible();
            return Action::None;
        }
        let selected = self.selected.clone();
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::PageUp => self.move_selection(-20),
            KeyCode::PageDown => self.move_selection(20),
            KeyCode::Home => self.move_selection(isize::MIN / 2),
            KeyCode::End => self.move_selection(isize::MAX / 2),
            KeyCode::Right => {
                if let Some(s) = selected {
                    self.collapsed.remove(&s);
                    self.expanded.insert(s);
                }
            }
            KeyCode::Left => {
                if let Some(s) = selected {
                    self.expanded.remove(&s);
                    self.collapsed.insert(s);
                }
            }
            KeyCode::Enter => {
                if let Some(s) = selected {
                    return Action::Open(format!("{}r/{}/overview", self.web_url, s));
                }
            }
            KeyCode::Char('b') => {
                if let Some(url) = self.selected_row().and_then(|r| r.endpoints.first().cloned()) {
                    return Action::Open(url);
                }
            }
            KeyCode::Char('l') => return Action::Open(self.web_url.clone()),
            KeyCode::Char('t') => {
                if let Some(s) = selected {
                    return Action::Trigger(s);
                }
            }
            KeyCode::Char('d') => {
                if let Some(r) = self.selected_row().filter(|r| r.name != TILTFILE) {
                    return Action::Enable(r.name.clone(), r.health == Health::Disabled);
                }
            }
            KeyCode::Char('1') => (self.tab, self.scroll) = (LogTab::All, 0),
            KeyCode::Char('2') => (self.tab, self.scroll) = (LogTab::Build, 0),
            KeyCode::Char('3') => (self.tab, self.scroll) = (LogTab::Runtime, 0),
            KeyCode::Char('x') => {
                self.size = match self.size {
                    LogSize::Short => LogSize::Half,
                    LogSize::Half => LogSize::Full,
                    LogSize::Full => LogSize::Short,
                }
            }
            KeyCode::Char('/') => self.typing = true,
            KeyCode::Char('R') => return Action::Redraw,
            KeyCode::Char('[') => self.scroll = self.scroll.saturating_add(5),
            KeyCode::Char(']') => self.scroll = self.scroll.saturating_sub(5),
            _ => {}
        }
        Action::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(name: &str, update: &str, runtime: &str, labels: &[&str]) -> Value {
        let labels: serde_json::Map<String, Value> = labels.iter().map(|l| (l.to_string(), json!(l))).collect();
        json!({"metadata": {"name": name, "labels": labels},
               "status": {"updateStatus": update, "runtimeStatus": runtime}})
    }

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn rows_are_ordered_and_keys_move_trigger_and_filter() {
        let mut app = App::new("http://localhost:10350/");
        app.set_resources(&[
            res("web", "not_applicable", "ok", &["frontend"]),
            res("api", "error", "ok", &["backend"]),
            res("(Tiltfile)", "ok", "not_applicable", &[]),
            res("misc", "in_progress", "pending", &[]),
        ]);
        let names: Vec<&str> = app.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["(Tiltfile)", "api", "web", "misc"], "the Tiltfile, grouped ones, then the rest");
        assert_eq!(app.rows[1].health, Health::Error);
        assert!(app.is_expanded(&app.rows[1]), "an error expands itself");
        assert_eq!(app.selected.as_deref(), Some("(Tiltfile)"));
        app.on_key(key(KeyCode::Char('j')));
        assert_eq!(app.on_key(key(KeyCode::Char('t'))), Action::Trigger("api".into()));
        assert_eq!(app.on_key(key(KeyCode::Char('d'))), Action::Enable("api".into(), false));
        app.on_key(key(KeyCode::Left));
        assert!(!app.is_expanded(&app.rows[1]));
        assert_eq!(app.on_key(key(KeyCode::Enter)), Action::Open("http://localhost:10350/r/api/overview".into()));
        app.on_key(key(KeyCode::End));
        assert_eq!(app.selected.as_deref(), Some("misc"));
        app.on_key(key(KeyCode::Char('/')));
        for c in "we".chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.visible().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["web"]);
        assert_eq!(app.selected.as_deref(), Some("web"));
        assert_eq!(app.on_key(key(KeyCode::Char('q'))), Action::Quit);
        assert_eq!(app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)), Action::Quit);
    }
}
