//! The interactive modes: the prompt and the full-screen view, their terminal handling (raw mode and the
//! alternate screen, always restored: on quit, on shutdown, on a panic), and what their keys do.

use std::io::Write;
use std::time::Duration;

use anyhow::{Result, bail};
use crossterm::event::{Event, EventStream, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::{cursor, execute, terminal};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, Patch, PatchParams};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use serde_json::json;
use tilt_apis::UIButton;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::Feed;
use crate::app::{Action, App};
use crate::render::{Palette, draw};

/// What the prompt's keys chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Stream the logs.
    Stream,
    /// Open the full-screen view.
    Legacy,
    /// Quit `tilt up`.
    Quit,
}

/// The shortest gap between two redraws (at most 30 per second).
const FRAME: Duration = Duration::from_millis(33);

/// Raw mode (and, for the full-screen view, the alternate screen) until dropped.
struct RawTerminal {
    alternate: bool,
}

fn restore(alternate: bool) {
    let mut out = std::io::stdout();
    if alternate {
        let _ = execute!(out, terminal::LeaveAlternateScreen, cursor::Show);
    }
    let _ = terminal::disable_raw_mode();
    let _ = out.flush();
}

impl RawTerminal {
    fn enter(alternate: bool) -> Result<RawTerminal> {
        install_panic_hook();
        terminal::enable_raw_mode()?;
        if alternate {
            execute!(std::io::stdout(), terminal::EnterAlternateScreen, cursor::Hide)?;
        }
        Ok(RawTerminal { alternate })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        restore(self.alternate);
    }
}

/// A panic restores the terminal before its message is printed.
fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore(true);
            previous(info);
        }));
    });
}

/// Prints in raw mode (where a newline does not return the carriage).
fn say_raw(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{line}\r\n").and_then(|()| out.flush());
}

/// Opens `url` with `$BROWSER` or `xdg-open`, in a process group of its own; says why not when neither is
/// there.
pub fn open_browser(url: &str) -> Result<String, String> {
    use std::os::unix::process::CommandExt;
    let browser = std::env::var("BROWSER").ok().filter(|b| !b.is_empty()).unwrap_or_else(|| "xdg-open".into());
    let mut parts = browser.split_whitespace();
    let program = parts.next().unwrap_or("xdg-open").to_string();
    let spawned = std::process::Command::new(&program)
        .args(parts)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn();
    match spawned {
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
            Ok(format!("Opened {url}"))
        }
        Err(_) => Err(format!("No browser found (set $BROWSER or install xdg-open); open {url} yourself")),
    }
}

/// The prompt: prints the keys, then waits for one that changes mode (or quits). Space opens the browser.
pub async fn prompt(web_url: &str, shutdown: &CancellationToken) -> Result<Choice> {
    say_raw("");
    say_raw("(space) to open the browser");
    say_raw("(s) to stream logs (--stream=true)");
    say_raw("(t) to open the terminal view (--legacy=true)");
    say_raw("(ctrl-c) to exit");
    let _raw = RawTerminal::enter(false)?;
    let mut events = EventStream::new();
    loop {
        let event = tokio::select! {
            e = events.next() => e,
            _ = shutdown.cancelled() => return Ok(Choice::Quit),
        };
        let Some(Ok(Event::Key(key))) = event else {
            if event.is_none() {
                return Ok(Choice::Quit);
            }
            continue;
        };
        if key.kind != KeyEventKind::Press {
            continue;
        }
        match key.code {
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => return Ok(Choice::Quit),
            KeyCode::Char(' ') => say_raw(&open_browser(web_url).unwrap_or_else(|e| e)),
            KeyCode::Char('s') => return Ok(Choice::Stream),
            KeyCode::Char('t') | KeyCode::Char('h') => return Ok(Choice::Legacy),
            _ => {}
        }
    }
}

/// Refuses terminals that cannot draw the full-screen view.
pub fn check_terminal() -> Result<()> {
    use std::io::IsTerminal;
    let term = std::env::var("TERM").unwrap_or_default();
    if term.is_empty() || term == "dumb" {
        bail!("this terminal (TERM={term:?}) cannot show the full-screen view; use --stream");
    }
    if !std::io::stdout().is_terminal() {
        bail!("the full-screen view needs a terminal on stdout; use --stream");
    }
    Ok(())
}

/// Clicks UIButton `name`, optionally with the hidden input `action`.
async fn click(client: &kube::Client, name: &str, action: Option<&str>) -> Result<(), kube::Error> {
    let mut status = json!({"lastClickedAt": MicroTime(jiff::Timestamp::now())});
    if let Some(a) = action {
        status["inputs"] = json!([{"name": "action", "hidden": {"value": a}}]);
    }
    Api::<UIButton>::all(client.clone())
        .patch_status(&tilt_apis::path_name(name), &PatchParams::default(), &Patch::Merge(&json!({"status": status})))
        .await
        .map(drop)
}

/// Carries out what a key asked for; returns what to tell the user.
async fn act(feed: &Feed, action: Action) -> Option<String> {
    Some(match action {
        Action::Trigger(name) => match click(&feed.client, &format!("{name}:trigger"), None).await {
            Ok(()) => format!("Triggered {name}"),
            Err(e) => format!("Could not trigger {name}: {e}"),
        },
        // The ToggleButton's `on` is "disabled": enabling turns it off.
        Action::Enable(name, enable) => {
            let verb = if enable { "Enabled" } else { "Disabled" };
            match click(&feed.client, &format!("{name}-disable"), Some(if enable { "off" } else { "on" })).await {
                Ok(()) => format!("{verb} {name}"),
                Err(e) => format!("Could not change {name}: {e}"),
            }
        }
        Action::Open(url) => open_browser(&url).unwrap_or_else(|e| e),
        Action::None | Action::Quit | Action::Redraw => return None,
    })
}

/// The full-screen view, until `q`/Ctrl-C (returns `true`) or `shutdown` (returns `false`).
pub async fn full_screen(feed: Feed, shutdown: CancellationToken) -> Result<bool> {
    check_terminal()?;
    let raw = RawTerminal::enter(true)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    let palette = Palette::from_env();
    let mut app = App::new(&feed.web_url);
    let mut events = EventStream::new();
    let mut changed = feed.hub.subscribe();
    let mut lines = feed.logs.subscribe();
    let mut dirty = true;
    let mut objects_changed = true;
    let mut frame: u64 = 0;
    let mut last_draw = Instant::now() - FRAME;
    let mut notice: Option<(String, Instant)> = None;
    let quit = loop {
        if objects_changed {
            let (objects, _) = feed.hub.all();
            app.set_resources(objects[1].iter().map(|o| &**o));
            objects_changed = false;
        }
        if dirty && last_draw.elapsed() >= FRAME {
            let now = jiff::Timestamp::now();
            app.notice =
                notice.as_ref().filter(|(_, at)| at.elapsed() < Duration::from_secs(5)).map(|(n, _)| n.clone());
            terminal.draw(|f| draw(f, &app, &feed.logs, palette, frame, now))?;
            dirty = false;
            last_draw = Instant::now();
        }
        // Clocks on screen ("as of", build durations, the spinner) move on their own: redraw for them only
        // while something builds (10 per second) and otherwise once a second.
        let tick = if app.building() { Duration::from_millis(100) } else { Duration::from_secs(1) };
        tokio::select! {
            _ = shutdown.cancelled() => break false,
            _ = tokio::time::sleep_until(last_draw + FRAME), if dirty => {}
            _ = tokio::time::sleep_until(last_draw + tick), if !dirty => { frame += 1; dirty = true; }
            r = changed.changed() => {
                if r.is_err() { break false; }
                objects_changed = true;
                dirty = true;
            }
            line = lines.recv() => match line {
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => dirty = true,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break false,
            },
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind == KeyEventKind::Press => {
                    match app.on_key(key) {
                        Action::Quit => break true,
                        Action::Redraw => { terminal.clear()?; }
                        action => if let Some(n) = act(&feed, action).await { notice = Some((n, Instant::now())); },
                    }
                    dirty = true;
                }
                Some(Ok(Event::Resize(_, _))) => dirty = true,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break false,
            },
        }
    };
    drop(terminal);
    drop(raw);
    Ok(quit)
}
