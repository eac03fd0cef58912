//! `tilt up` and `tilt ci`: start the API server, publish how to reach it, declare the Tiltfile and the
//! Session, and run the controllers — until interrupted (`up`) or until the Session says the run is done
//! (`ci`).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use tilt_apis::{ExitCondition, RestartOnSpec, Session, SessionSpec, Tiltfile, TiltfileSpec};
use tilt_apiserver::{ApiServer, Config, Registry};
use tilt_controllers::Services;
use tilt_controllers::cluster::{ClusterConfig, ClusterConnection};
use tilt_controllers::cmd::CmdConfig;
use tilt_controllers::dockerimage::DockerConfig;
use tilt_controllers::filewatch::FileWatchConfig;
use tilt_controllers::logs::LogStore;
use tilt_controllers::process::reaper::Reaper;
use tilt_controllers::session::SESSION_NAME;
use tilt_hud::stream::{LevelFilter, LogFilter, SourceFilter};
use tilt_webview::{Source, WebServer};
use tokio_util::sync::CancellationToken;

use crate::kubeconfig;
use crate::loader::StarlarkLoader;
use crate::{view, web};

/// The name Go Tilt gives the main Tiltfile object.
pub const MAIN_TILTFILE: &str = "(Tiltfile)";
/// Go Tilt's web UI port.
pub const DEFAULT_WEB_PORT: u16 = 10350;

/// Flags shared by `tilt up` and `tilt ci`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Port of the API server (0: pick a free one).
    #[arg(long, env = "TILT_API_PORT", default_value_t = 0)]
    api_port: u16,
    /// Path to the Tiltfile.
    #[arg(short = 'f', long = "file", default_value = "Tiltfile")]
    file: PathBuf,
    /// Host the web UI listens on; anything but a loopback address exposes it to the network.
    #[arg(long, env = "TILT_HOST", default_value = "localhost")]
    host: String,
    /// Port of the web UI (0: pick a free one).
    #[arg(long, env = "TILT_PORT", default_value_t = DEFAULT_WEB_PORT)]
    port: u16,
    /// Quiet period after a burst of file changes before it counts as one change, in milliseconds.
    #[arg(long, env = "TILT_FILE_DEBOUNCE_MS", default_value_t = 20)]
    debounce_ms: u64,
    /// Arguments for the Tiltfile (after `--`).
    #[arg(last = true)]
    args: Vec<String>,
    #[command(flatten)]
    shared: crate::shared::SharedArgs,
}

/// Flags of `tilt up`.
#[derive(clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Stream logs only (`name ┊ line`), without the prompt or resource status lines.
    #[arg(long, conflicts_with = "legacy")]
    stream: bool,
    /// The full-screen terminal view of resources and logs.
    #[arg(long)]
    legacy: bool,
    /// In the log stream, only lines of this level or worse: `warn` or `error`.
    #[arg(long, value_enum, default_value_t = LevelFilter::Info)]
    log_level: LevelFilter,
    /// In the log stream, only build output or only runtime output.
    #[arg(long, value_enum, default_value_t = SourceFilter::All)]
    log_source: SourceFilter,
    /// In the log stream, only these resources' lines (repeat or comma-separate).
    #[arg(long, value_delimiter = ',')]
    log_resource: Vec<String>,
}

/// Flags of `tilt ci`.
#[derive(clap::Args)]
pub struct CiArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Give up (exit 1) after this long, e.g. `30s`, `10m`.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    timeout: Duration,
}

/// Parses `90s`, `10m`, `1h`, `1h30m` (Go durations) or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let span: jiff::Span = s.parse().map_err(|e| format!("invalid duration {s:?}: {e}"))?;
    let signed = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(|e| format!("invalid duration {s:?}: {e}"))?;
    Duration::try_from(signed).map_err(|_| format!("invalid duration {s:?}: must be positive"))
}

pub(crate) async fn wait_for_signal() -> Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    })
}

/// How a run ended.
enum Outcome {
    /// SIGINT or SIGTERM.
    Signal(&'static str),
    /// The Session was deleted (`tilt down --stop`).
    Stopped,
    /// `tilt ci`: every resource is ready.
    Succeeded,
    /// `tilt ci`: something failed; the Session's error.
    Failed(String),
    /// `tilt ci`: `--timeout` passed; what was still pending.
    TimedOut(String),
    /// A controller panicked; what it said.
    Crashed(String),
    /// The user quit the terminal view (`q`, Ctrl-C).
    Quit,
}

/// Runs `tilt up` until SIGINT or SIGTERM (or `tilt down --stop`, or `q` in the terminal view).
pub async fn up(args: UpArgs) -> Result<()> {
    let mode = if args.legacy {
        tilt_hud::term::check_terminal()?;
        view::Mode::Legacy
    } else if args.stream {
        view::Mode::Stream { status_lines: false }
    } else if std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
        view::Mode::Prompt
    } else {
        view::Mode::Stream { status_lines: true }
    };
    let filter = LogFilter { level: args.log_level, source: args.log_source, resources: args.log_resource };
    match run(args.run, ExitCondition::Manual, None, mode, filter).await? {
        Outcome::Crashed(why) => anyhow::bail!("{why}"),
        _ => Ok(()),
    }
}

/// Runs `tilt ci`: exits 0 once every resource is ready, 1 when one fails or the timeout passes.
pub async fn ci(args: CiArgs) -> Result<std::process::ExitCode> {
    let mode = view::Mode::Stream { status_lines: true };
    match run(args.run, ExitCondition::Ci, Some(args.timeout), mode, LogFilter::default()).await? {
        Outcome::Succeeded => {
            view::say("tilt ci: SUCCESS. All resources are ready.");
            Ok(std::process::ExitCode::SUCCESS)
        }
        Outcome::Failed(e) => {
            view::say(&format!("tilt ci: FAILED. {e}"));
            Ok(std::process::ExitCode::FAILURE)
        }
        Outcome::TimedOut(pending) => {
            view::say(&format!("tilt ci: TIMED OUT after {}. Still waiting: {pending}", humantime(args.timeout)));
            Ok(std::process::ExitCode::FAILURE)
        }
        Outcome::Crashed(why) => {
            view::say(&format!("tilt ci: FAILED. {why}"));
            Ok(std::process::ExitCode::FAILURE)
        }
        Outcome::Signal(_) | Outcome::Stopped | Outcome::Quit => Ok(std::process::ExitCode::FAILURE),
    }
}

/// What a controller task's end says: a panic's message, or that it ended when it should not have.
fn crashed(ended: Result<(), tokio::task::JoinError>) -> Outcome {
    let why = match ended {
        Err(e) if e.is_panic() => {
            let panic = e.into_panic();
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            format!("a controller crashed: {text}")
        }
        Err(e) => format!("the controllers were cancelled: {e}"),
        Ok(()) => "the controllers stopped unexpectedly".into(),
    };
    Outcome::Crashed(why)
}

fn humantime(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

async fn run(
    args: RunArgs,
    exit: ExitCondition,
    timeout: Option<Duration>,
    mode: view::Mode,
    filter: LogFilter,
) -> Result<Outcome> {
    let path = std::path::absolute(&args.file).with_context(|| format!("resolving {}", args.file.display()))?;
    let logs = Arc::new(LogStore::default());
    let (client, server, hold) = match &args.shared.api_context {
        None => {
            let (client, server) = embedded_apiserver(args.api_port, &logs).await?;
            (client, Some(server), None)
        }
        Some(context) => {
            let (client, hold, session) =
                crate::shared::connect_session(context, args.shared.session.as_deref(), &path).await?;
            let ns = crate::shared::namespace(&session);
            view::say(&format!(
                "tilt-rs session {session} in kubeconfig context {context} (kubectl --context {context} -n {ns} get \
                 uiresources; tilt get --api-context {context} --session {session} uiresources)"
            ));
            (client, None, Some(hold))
        }
    };
    let web_listener = web::bind(&args.host, args.port).await?;
    let started = jiff::Timestamp::now();
    web::declare(&client, &path, started).await?;
    let tiltfile = Tiltfile::new(
        MAIN_TILTFILE,
        TiltfileSpec {
            path: path.to_string_lossy().into_owned(),
            args: args.args.clone(),
            restart_on: Some(RestartOnSpec { ui_buttons: vec![web::tiltfile_trigger()], ..Default::default() }),
            ..Default::default()
        },
    );
    Api::<Tiltfile>::all(client.clone())
        .patch(MAIN_TILTFILE, &PatchParams::apply("tilt").force(), &Patch::Apply(&tiltfile))
        .await
        .context("declaring the Tiltfile")?;
    let session = Session::new(
        SESSION_NAME,
        SessionSpec { tiltfile_path: path.to_string_lossy().into_owned(), exit_condition: exit, ci: None },
    );
    Api::<Session>::all(client.clone())
        .patch(SESSION_NAME, &PatchParams::apply("tilt").force(), &Patch::Apply(&session))
        .await
        .context("declaring the Session")?;
    // A Session kept by a shared apiserver from an earlier run has that run's outcome: not this one's.
    Api::<Session>::all(client.clone())
        .patch_status(SESSION_NAME, &PatchParams::default(), &Patch::Merge(serde_json::json!({"status": null})))
        .await
        .context("resetting the Session's status")?;

    let web = WebServer::start(
        web_listener,
        Source::Live { client: client.clone(), logs: logs.clone(), tilt_start_time: started.to_string() },
    )?;
    let web_url = web::url(&args.host, web.addr());
    view::say(&format!("Tilt started on {web_url}"));

    let exe = std::env::current_exe().context("locating the tilt binary")?;
    let reaper = Arc::new(Reaper::spawn(&exe, &["__reaper"]).context("starting the orphan reaper")?);
    let feed = tilt_hud::Feed {
        hub: web.hub().context("the web server has no live view")?,
        logs: logs.clone(),
        client: client.clone(),
        web_url: web_url.clone(),
    };
    let (terminal_stop, user_quit) = (CancellationToken::new(), CancellationToken::new());
    let mut terminal = tokio::spawn(view::terminal(mode, feed, filter, terminal_stop.clone(), user_quit.clone()));
    let default_dir = path.parent().map(|p| p.to_path_buf()).unwrap_or_else(|| PathBuf::from("/"));
    let services = Services {
        logs,
        reaper: reaper.clone(),
        cmd: CmdConfig { default_dir, ..CmdConfig::default() },
        filewatch: FileWatchConfig { debounce: Duration::from_millis(args.debounce_ms), ..FileWatchConfig::default() },
        loader: Arc::new(StarlarkLoader),
        cluster: Arc::new(ClusterConnection::new(ClusterConfig::default())),
        docker: DockerConfig::from_env(),
    };

    let shutdown = CancellationToken::new();
    let mut controllers = tokio::spawn(tilt_controllers::run(client.clone(), shutdown.clone(), services));
    let mut outcome = tokio::select! {
        ended = &mut controllers => crashed(ended),
        signal = wait_for_signal() => Outcome::Signal(signal?),
        _ = user_quit.cancelled() => Outcome::Quit,
        outcome = watch_session(client.clone()) => outcome,
        _ = tokio::time::sleep(timeout.unwrap_or(Duration::MAX)), if timeout.is_some() => {
            Outcome::TimedOut(view::pending_resources(&client).await)
        }
    };
    // The terminal is restored before anything more is printed.
    terminal_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(2), &mut terminal).await;
    match &outcome {
        Outcome::Signal(s) => view::say(&format!("tilt-rs: {s} received, shutting down")),
        Outcome::Quit => view::say("tilt-rs: quitting, shutting down"),
        Outcome::Stopped => view::say("tilt-rs: the session was deleted (tilt down --stop), shutting down"),
        Outcome::Crashed(why) => view::say(&format!("tilt-rs: {why}; shutting down")),
        _ => {}
    }
    shutdown.cancel();
    // Controllers stop their processes (SIGTERM, then SIGKILL after a short grace) before returning.
    if !controllers.is_finished() || !matches!(outcome, Outcome::Crashed(_)) {
        match tokio::time::timeout(Duration::from_millis(900), controllers).await {
            Ok(Err(e)) if e.is_panic() => {
                outcome = crashed(Err(e));
                if let Outcome::Crashed(why) = &outcome {
                    view::say(&format!("tilt-rs: {why}"));
                }
            }
            _ => {}
        }
    }
    reaper.close().await;
    web.shutdown().await;
    terminal.abort();
    if let Some(server) = server {
        server.shutdown().await;
    }
    if let Some(hold) = hold {
        hold.release().await;
    }
    Ok(outcome)
}

/// Starts the embedded apiserver (with the log store's endpoint) and writes its kubeconfig context.
async fn embedded_apiserver(api_port: u16, logs: &Arc<LogStore>) -> Result<(kube::Client, ApiServer)> {
    let config = Config { addr: SocketAddr::from(([127, 0, 0, 1], api_port)), ..Config::default() };
    let endpoints = vec![(crate::logs::LOGS_PATH.to_string(), crate::logs::endpoint(logs.clone()))];
    let server = ApiServer::start_with(Registry::tilt(), config, endpoints).await?;
    let context = kubeconfig::context_name(&server.url(), server.addr().port())?;
    let tilt_config = server.kubeconfig(&context);
    // Writing the kubeconfigs waits (up to 5 s) for another writer's lock: not on the async threads.
    let (own, user) = {
        let tilt_config = tilt_config.clone();
        tokio::task::spawn_blocking(move || kubeconfig::install(&tilt_config))
            .await
            .context("writing the kubeconfig")??
    };
    view::say(&format!(
        "tilt-rs API server on {} (kubectl --context {context}; kubeconfig {}, merged into {})",
        server.url(),
        own.display(),
        user.display()
    ));

    let kubeconfig: Kubeconfig = serde_json::from_value(tilt_config).context("building the client kubeconfig")?;
    let client_config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let client = kube::Client::try_from(client_config)?;

    Ok((client, server))
}

/// Follows the Session until it is done (ci) or deleted.
async fn watch_session(client: kube::Client) -> Outcome {
    let api: Api<Session> = Api::all(client);
    let config = watcher::Config::default().fields(&format!("metadata.name={SESSION_NAME}"));
    let mut events = watcher(api, config).default_backoff().boxed();
    let mut seen = false;
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => {
                seen = true;
                if let Some(status) = s.status.filter(|st| st.done) {
                    return if status.error.is_empty() { Outcome::Succeeded } else { Outcome::Failed(status.error) };
                }
            }
            Ok(watcher::Event::Delete(_)) if seen => return Outcome::Stopped,
            _ => {}
        }
    }
    std::future::pending().await
}
