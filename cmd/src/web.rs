//! The web UI's side of `tilt up`: its listener (`--host`, `--port`), the objects it needs that no Tiltfile
//! declares (the UISession, the Tiltfile's UIResource and trigger button), and `tilt snapshot view`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use tilt_apis::{UIBUTTON_TYPE_ANNOTATION, UIButton, UIResource, UISession};
use tilt_webview::{Source, WebServer};
use tokio::net::TcpListener;

use crate::up::{DEFAULT_WEB_PORT, MAIN_TILTFILE};
use crate::view;

/// The field manager of what `tilt up` declares for the UI.
const MANAGER: &str = "tilt";

/// The button that re-evaluates the Tiltfile (the web UI's trigger on the Tiltfile row).
pub fn tiltfile_trigger() -> String {
    format!("{MAIN_TILTFILE}:trigger")
}

/// Binds the web UI's listener: a busy port or a bad host is a one-line error naming the flag.
pub async fn bind(host: &str, port: u16) -> Result<TcpListener> {
    let ip: IpAddr = if host == "localhost" {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else if let Ok(ip) = host.parse() {
        ip
    } else {
        match tokio::net::lookup_host((host, port)).await.ok().and_then(|mut a| a.next()) {
            Some(addr) => addr.ip(),
            None => bail!("--host {host:?}: not an IP address or a name that resolves"),
        }
    };
    if !ip.is_loopback() {
        view::say(&format!(
            "Warning: the web UI listens on {ip}, so anyone who can reach this machine can see and control tilt"
        ));
    }
    match TcpListener::bind(SocketAddr::new(ip, port)).await {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => bail!(
            "the web UI's port {port} on {host} is already in use (another tilt up?): choose another with --port \
             or TILT_PORT"
        ),
        Err(e) => bail!("cannot listen on {host}:{port} for the web UI (--host/--port): {e}"),
    }
}

/// The address to print for the UI at `addr`, naming `localhost` when that is what was asked for.
pub fn url(host: &str, addr: SocketAddr) -> String {
    if host == "localhost" { format!("http://localhost:{}/", addr.port()) } else { format!("http://{addr}/") }
}

/// An object of kind `kind` with `metadata` and `spec`.
fn object(kind: &str, metadata: Value, spec: Value) -> Value {
    json!({"apiVersion": tilt_apis::API_VERSION, "kind": kind, "metadata": metadata, "spec": spec})
}

/// Declares the UISession (when this tilt started, its version, the Tiltfile's key), the Tiltfile's
/// UIResource and its trigger button.
pub async fn declare(client: &kube::Client, tiltfile: &Path, started: jiff::Timestamp) -> Result<()> {
    let apply = PatchParams::apply(MANAGER).force();
    let sessions: Api<UISession> = Api::all(client.clone());
    sessions
        .patch("Tiltfile", &apply, &Patch::Apply(object("UISession", json!({"name": "Tiltfile"}), json!({}))))
        .await
        .context("declaring the UISession")?;
    let status = json!({"status": {
        "runningTiltBuild": {"version": env!("CARGO_PKG_VERSION"), "dev": cfg!(debug_assertions)},
        "tiltStartTime": started.round(jiff::Unit::Second).unwrap_or(started).to_string(),
        "tiltfileKey": tiltfile.to_string_lossy(),
        "versionSettings": {"checkUpdates": false},
    }});
    sessions.patch_status("Tiltfile", &PatchParams::default(), &Patch::Merge(&status)).await?;
    let name = MAIN_TILTFILE;
    Api::<UIResource>::all(client.clone())
        .patch(
            &tilt_apis::path_name(name),
            &apply,
            &Patch::Apply(object("UIResource", json!({"name": name}), json!({}))),
        )
        .await
        .context("declaring the Tiltfile's UIResource")?;
    let button = object(
        "UIButton",
        json!({"name": tiltfile_trigger(), "annotations": {UIBUTTON_TYPE_ANNOTATION: "Trigger"}}),
        json!({"location": {"componentID": name, "componentType": "Resource"}, "text": "Reload Tiltfile"}),
    );
    Api::<UIButton>::all(client.clone())
        .patch(&tilt_apis::path_name(tiltfile_trigger()), &apply, &Patch::Apply(button))
        .await
        .context("declaring the Tiltfile's trigger button")?;
    Ok(())
}

/// Flags of `tilt snapshot view`.
#[derive(clap::Args)]
pub struct SnapshotViewArgs {
    /// The snapshot file (`{"view": …, "createdAt": …}`, as the web UI downloads it).
    file: PathBuf,
    /// Host to listen on.
    #[arg(long, env = "TILT_HOST", default_value = "localhost")]
    host: String,
    /// Port to listen on (0: pick a free one).
    #[arg(long, env = "TILT_PORT", default_value_t = DEFAULT_WEB_PORT)]
    port: u16,
}

/// `tilt snapshot`'s subcommands.
#[derive(clap::Subcommand)]
pub enum SnapshotCommand {
    /// Serve a saved snapshot in the web UI, read only, until interrupted.
    View(SnapshotViewArgs),
}

/// Runs `tilt snapshot view FILE`.
pub async fn snapshot(command: SnapshotCommand) -> Result<()> {
    let SnapshotCommand::View(args) = command;
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let snapshot: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a snapshot (JSON with a \"view\")", args.file.display()))?;
    if !snapshot["view"].is_object() {
        bail!("{} is not a snapshot: it has no \"view\" object", args.file.display());
    }
    let listener = bind(&args.host, args.port).await?;
    let server = WebServer::start(listener, Source::Snapshot(snapshot))?;
    view::say(&format!("Serving snapshot at {}snapshot/local", url(&args.host, server.addr())));
    crate::up::wait_for_signal().await?;
    server.shutdown().await;
    Ok(())
}
