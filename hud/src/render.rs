//! Drawing the full-screen view: the resource list (with details of expanded rows), the log pane, the
//! status bar and the key legend.

use jiff::Timestamp;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use tilt_controllers::logs::{LogLine, LogStore, is_build_source};

use crate::app::{App, Health, LogSize, LogTab, Row};

/// Colours, or none (`NO_COLOR`).
#[derive(Clone, Copy)]
pub struct Palette {
    /// Whether to colour.
    pub color: bool,
}

impl Palette {
    /// Honours `NO_COLOR` (any non-empty value).
    pub fn from_env() -> Palette {
        Palette { color: std::env::var("NO_COLOR").map(|v| v.is_empty()).unwrap_or(true) }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color { Style::default().fg(c) } else { Style::default() }
    }

    fn health(&self, h: Health) -> Style {
        self.fg(match h {
            Health::Ok => Color::Green,
            Health::Error => Color::Red,
            Health::Pending => Color::Yellow,
            Health::Disabled => Color::DarkGray,
        })
    }
}

const SPINNER: [&str; 4] = ["◐", "◓", "◑", "◒"];

fn glyph(row: &Row, frame: u64) -> &'static str {
    match row.health {
        _ if row.building => SPINNER[(frame % 4) as usize],
        Health::Ok => "●",
        Health::Error => "✖",
        Health::Pending => "◌",
        Health::Disabled => "⊘",
    }
}

/// `3s`, `2m`, `1h` ago.
fn ago(t: Option<Timestamp>, now: Timestamp) -> String {
    let Some(t) = t else { return "—".into() };
    let secs = (now.as_second() - t.as_second()).max(0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        _ => format!("{}h", secs / 3600),
    }
}

fn seconds(start: Option<Timestamp>, end: Option<Timestamp>) -> String {
    match (start, end) {
        (Some(s), Some(e)) => format!("{:.1}s", (e.as_millisecond() - s.as_millisecond()).max(0) as f64 / 1000.0),
        _ => String::new(),
    }
}

/// The UPDATE STATUS cell.
fn update_cell(row: &Row, now: Timestamp) -> String {
    if row.building {
        return format!("In prog. {}", seconds(row.build_start, Some(now)));
    }
    let last = row.history.first();
    let took = last.map(|b| seconds(b.start, b.finish)).unwrap_or_default();
    match row.update.as_str() {
        "error" => format!("Error {took}"),
        "pending" => "Pending".into(),
        "ok" => format!("OK {took}"),
        _ if row.health == Health::Disabled => "Disabled".into(),
        _ => "N/A".into(),
    }
    .trim_end()
    .to_string()
}

fn runtime_cell(row: &Row) -> String {
    match row.runtime.as_str() {
        "ok" => "Ready".into(),
        "pending" => "Pending".into(),
        "error" => "Error".into(),
        "unknown" => "Unknown".into(),
        _ => "N/A".into(),
    }
}

const NAME_W: usize = 28;
const UPDATE_W: usize = 18;
const RUNTIME_W: usize = 10;

fn pad(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n >= w { s.chars().take(w.saturating_sub(1)).chain(std::iter::once(' ')).collect() } else { format!("{s:w$}") }
}

/// The resource list's lines, and the index of the selected row's line.
fn resource_lines(app: &App, p: Palette, frame: u64, now: Timestamp) -> (Vec<Line<'static>>, usize) {
    let mut lines = Vec::new();
    let mut selected_at = 0;
    let mut group: Option<Option<String>> = None;
    for row in app.visible() {
        let g = row.groups.first().cloned();
        if row.name != crate::app::TILTFILE && group.as_ref() != Some(&g) {
            let title = g.clone().unwrap_or_else(|| "unlabeled".into());
            lines.push(Line::from(Span::styled(format!("── {title} "), p.fg(Color::Cyan))));
            group = Some(g);
        }
        let selected = app.selected.as_deref() == Some(row.name.as_str());
        if selected {
            selected_at = lines.len();
        }
        let style = if selected { Style::default().add_modifier(Modifier::REVERSED) } else { Style::default() };
        lines.push(
            Line::from(vec![
                Span::styled(format!("{} ", glyph(row, frame)), p.health(row.health)),
                Span::raw(pad(&row.name, NAME_W)),
                Span::styled("│ ", p.fg(Color::DarkGray)),
                Span::styled(pad(&update_cell(row, now), UPDATE_W), p.health(row.health)),
                Span::styled("│ ", p.fg(Color::DarkGray)),
                Span::raw(pad(&runtime_cell(row), RUNTIME_W)),
                Span::styled("│ ", p.fg(Color::DarkGray)),
                Span::raw(ago(row.as_of, now)),
            ])
            .style(style),
        );
        if app.is_expanded(row) {
            lines.extend(details(row, p, now));
        }
    }
    (lines, selected_at)
}

fn details(row: &Row, p: Palette, now: Timestamp) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let dim = p.fg(Color::DarkGray);
    let mut push = |label: &str, text: String, style: Style| {
        out.push(Line::from(vec![Span::styled(format!("    {label:<10}"), dim), Span::styled(text, style)]));
    };
    if row.pid > 0 {
        push("PID", row.pid.to_string(), Style::default());
    }
    if let Some((pod, status, restarts)) = &row.pod {
        push("POD", format!("{pod} ({status}, {restarts} restarts)"), Style::default());
    }
    for url in &row.endpoints {
        push("URL", url.clone(), p.fg(Color::Blue));
    }
    if !row.waiting.is_empty() {
        push("WAITING", row.waiting.clone(), p.fg(Color::Yellow));
    }
    for b in row.history.iter().take(3) {
        let result = if b.error.is_empty() { "OK".to_string() } else { "Error".to_string() };
        push("HISTORY", format!("{result} {} ({} ago)", seconds(b.start, b.finish), ago(b.finish, now)), dim);
    }
    for w in row.history.first().map(|b| b.warnings.as_slice()).unwrap_or_default() {
        push("WARNING", w.clone(), p.fg(Color::Yellow));
    }
    if let Some(err) = row.error() {
        for (i, line) in err.lines().take(4).enumerate() {
            push(if i == 0 { "ERROR" } else { "" }, line.to_string(), p.fg(Color::Red));
        }
    }
    out
}

/// Which resources and lines the log pane shows.
fn log_selection(app: &App) -> (Vec<String>, LogTab) {
    match (app.tab, &app.selected) {
        (LogTab::All, _) | (_, None) => (Vec::new(), LogTab::All),
        (tab, Some(s)) => (vec![s.clone()], tab),
    }
}

fn keep(tab: LogTab) -> impl Fn(&LogLine) -> bool {
    move |l| match tab {
        LogTab::All => true,
        LogTab::Build => is_build_source(&l.source),
        LogTab::Runtime => !is_build_source(&l.source),
    }
}

fn log_pane(f: &mut Frame<'_>, area: Rect, app: &App, logs: &LogStore, p: Palette) {
    let (resources, tab) = log_selection(app);
    let height = area.height.saturating_sub(1) as usize;
    let lines = logs.tail(&resources, app.scroll, height, keep(tab));
    let tabs: Vec<Span<'static>> =
        [(LogTab::All, "1: ALL LOGS"), (LogTab::Build, "2: BUILD"), (LogTab::Runtime, "3: RUNTIME")]
            .into_iter()
            .flat_map(|(t, label)| {
                let style =
                    if t == app.tab { Style::default().add_modifier(Modifier::REVERSED) } else { Style::default() };
                [Span::styled(format!(" {label} "), style), Span::raw(" ")]
            })
            .collect();
    let mut title = tabs;
    if let (Some(s), true) = (&app.selected, app.tab != LogTab::All) {
        title.push(Span::styled(format!("({s})"), p.fg(Color::DarkGray)));
    }
    if app.scroll > 0 {
        title.push(Span::styled(format!(" ↑{} ", app.scroll), p.fg(Color::Yellow)));
    }
    let body: Vec<Line<'static>> = if lines.is_empty() {
        vec![Line::from(Span::styled("(no logs received)", p.fg(Color::DarkGray)))]
    } else {
        lines
            .iter()
            .map(|l| {
                let mut spans = Vec::new();
                if tab == LogTab::All {
                    spans.push(Span::styled(format!("{:>12} ┊ ", l.resource), p.fg(Color::DarkGray)));
                }
                let style = match l.level {
                    tilt_controllers::logs::LogLevel::Error => p.fg(Color::Red),
                    tilt_controllers::logs::LogLevel::Warn => p.fg(Color::Yellow),
                    tilt_controllers::logs::LogLevel::Info => Style::default(),
                };
                spans.push(Span::styled(strip_ansi(&l.text), style));
                Line::from(spans)
            })
            .collect()
    };
    let block = Block::default().borders(Borders::TOP).title(Line::from(title));
    f.render_widget(Paragraph::new(body).block(block), area);
}

/// Text without ANSI escape sequences (the terminal view draws its own colours).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        if c != '\r' {
            out.push(c);
        }
    }
    out
}

/// Draws the whole view.
pub fn draw(f: &mut Frame<'_>, app: &App, logs: &LogStore, p: Palette, frame: u64, now: Timestamp) {
    let area = f.area();
    let log_height = match app.size {
        LogSize::Short => 8.min(area.height / 3),
        LogSize::Half => area.height / 2,
        LogSize::Full => area.height.saturating_sub(4),
    };
    let [header, list, logs_area, status, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(log_height),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);

    let head = format!(
        "  {}│ {}│ {}│ AS OF",
        pad("RESOURCE NAME", NAME_W),
        pad("UPDATE STATUS", UPDATE_W),
        pad("RUNTIME", RUNTIME_W)
    );
    f.render_widget(Paragraph::new(Line::from(Span::styled(head, p.fg(Color::DarkGray)))), header);

    let (lines, selected_at) = resource_lines(app, p, frame, now);
    let height = list.height as usize;
    // Keep the selection in view, a few lines below the top when it can.
    let top =
        selected_at.saturating_sub(height.saturating_sub(1).min(height / 3)).min(lines.len().saturating_sub(height));
    let shown: Vec<Line<'static>> = lines.into_iter().skip(top).take(height).collect();
    f.render_widget(Paragraph::new(shown), list);

    log_pane(f, logs_area, app, logs, p);

    let counts = app.counts();
    let n = |h| counts.get(&h).copied().unwrap_or(0);
    let mut bar = vec![
        Span::styled(format!(" ✓ {} ok ", n(Health::Ok)), p.health(Health::Ok)),
        Span::styled(
            format!(" ✖ {} error{} ", n(Health::Error), if n(Health::Error) == 1 { "" } else { "s" }),
            p.health(Health::Error),
        ),
        Span::styled(format!(" ◌ {} pending ", n(Health::Pending)), p.health(Health::Pending)),
        Span::styled(format!(" ⊘ {} disabled ", n(Health::Disabled)), p.health(Health::Disabled)),
        Span::raw(" │ To explore, open web view (enter) • terminal is limited"),
    ];
    if let Some(n) = &app.notice {
        bar.push(Span::styled(format!("  {n}"), p.fg(Color::Cyan)));
    }
    if app.typing || !app.filter.is_empty() {
        bar.push(Span::styled(
            format!("  filter: {}{}", app.filter, if app.typing { "▏" } else { "" }),
            p.fg(Color::Cyan),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(bar)), status);
    let legend = "Browse (↓ ↑), Expand (→) ┊ (enter) web ┊ (t) trigger ┊ (d) disable ┊ (/) filter ┊ (1 2 3) logs ┊ (x) log size ┊ (q) quit";
    f.render_widget(Paragraph::new(Line::from(Span::styled(legend, p.fg(Color::DarkGray)))), footer);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use serde_json::json;

    fn screen(app: &App, logs: &LogStore, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        let now: Timestamp = "2026-12-04T10:01:00Z".parse().unwrap();
        t.draw(|f| draw(f, app, logs, Palette { color: false }, 0, now)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..h)
            .map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>().trim_end().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_view_shows_rows_details_logs_and_counts() {
        let mut app = App::new("http://localhost:10350/");
        app.set_resources(&[
            json!({"metadata": {"name": "(Tiltfile)"}, "status": {"updateStatus": "ok", "runtimeStatus": "not_applicable",
                   "buildHistory": [{"startTime": "2026-12-04T10:00:00Z", "finishTime": "2026-12-04T10:00:00.5Z"}]}}),
            json!({"metadata": {"name": "api", "labels": {"backend": "backend"}},
                   "status": {"updateStatus": "error", "runtimeStatus": "not_applicable",
                              "buildHistory": [{"startTime": "2026-12-04T10:00:10Z", "finishTime": "2026-12-04T10:00:12Z",
                                                "error": "exit status 2"}]}}),
            json!({"metadata": {"name": "web", "labels": {"frontend": "frontend"}},
                   "status": {"updateStatus": "not_applicable", "runtimeStatus": "ok",
                              "localResourceInfo": {"pid": 4242}, "lastDeployTime": "2026-12-04T10:00:30Z",
                              "endpointLinks": [{"url": "http://localhost:8000"}]}}),
        ]);
        app.expanded.insert("web".into());
        let logs = LogStore::default();
        logs.append("web", "cmd/web:serve", "\u{1b}[32mlistening\u{1b}[0m on 8000");
        let s = screen(&app, &logs, 120, 24);
        assert!(s.starts_with("  RESOURCE NAME"), "{s}");
        let line = |needle: &str| s.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle}:\n{s}"));
        assert!(line("(Tiltfile)").contains("OK 0.5s"), "{s}");
        assert!(line(" api").contains("Error 2.0s"), "{s}");
        assert!(line("ERROR").contains("exit status 2"), "an error expands: {s}");
        assert!(line("PID").contains("4242") && line("URL").contains("http://localhost:8000"), "{s}");
        assert!(line(" web ").contains("Ready") && line(" web ").contains("30s"), "{s}");
        assert!(s.contains("── backend") && s.contains("── frontend"), "{s}");
        assert!(line("1: ALL LOGS").contains("2: BUILD"), "{s}");
        assert!(line("listening").contains("web ┊ listening on 8000"), "ANSI stripped: {s}");
        assert!(line("ok").contains("✓ 2 ok") && line("ok").contains("✖ 1 error "), "{s}");
        assert!(s.lines().last().unwrap().contains("(q) quit"), "{s}");

        // The build tab of a resource without build output.
        app.tab = LogTab::Build;
        app.selected = Some("web".into());
        assert!(screen(&app, &logs, 120, 24).contains("(no logs received)"));
    }
}
