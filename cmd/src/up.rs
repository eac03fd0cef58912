//! `tilt up`: start the API server, publish how to reach it, declare the Tiltfile, run the controllers.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tilt_apis::{Tiltfile, TiltfileSpec};
use tilt_apiserver::{ApiServer, Config, Registry};
use tokio_util::sync::CancellationToken;

use crate::kubeconfig;

/// The name Go Tilt gives the main Tiltfile object.
pub const MAIN_TILTFILE: &str = "(Tiltfile)";

/// Flags of `tilt up`.
#[derive(clap::Args)]
pub struct UpArgs {
    /// Port of the API server (0: pick a free one).
    #[arg(long, env = "TILT_API_PORT", default_value_t = 0)]
    api_port: u16,
    /// Path to the Tiltfile.
    #[arg(short = 'f', long = "file", default_value = "Tiltfile")]
    file: PathBuf,
    /// Stream logs instead of the live status view.
    #[arg(long)]
    stream: bool,
    /// Arguments for the Tiltfile (after `--`).
    #[arg(last = true)]
    args: Vec<String>,
}

async fn wait_for_signal() -> Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    })
}

/// Prints a line; a closed stdout (`tilt up | head -1`) must not stop tilt.
fn say(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// Runs `tilt up` until SIGINT or SIGTERM.
pub async fn up(args: UpArgs) -> Result<()> {
    let config = Config { addr: SocketAddr::from(([127, 0, 0, 1], args.api_port)), ..Config::default() };
    let server = ApiServer::start(Registry::tilt(), config).await?;
    let context = kubeconfig::context_name(&server.url(), server.addr().port())?;
    let tilt_config = server.kubeconfig(&context);
    let (own, user) = kubeconfig::install(&tilt_config)?;
    say(&format!(
        "tilt-rs API server on {} (kubectl --context {context}; kubeconfig {}, merged into {})",
        server.url(),
        own.display(),
        user.display()
    ));

    let kubeconfig: Kubeconfig = serde_json::from_value(tilt_config).context("building the client kubeconfig")?;
    let client_config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    let client = kube::Client::try_from(client_config)?;

    let path = std::path::absolute(&args.file).with_context(|| format!("resolving {}", args.file.display()))?;
    let tiltfile = Tiltfile::new(
        MAIN_TILTFILE,
        TiltfileSpec { path: path.to_string_lossy().into_owned(), args: args.args.clone(), ..Default::default() },
    );
    Api::<Tiltfile>::all(client.clone())
        .patch(MAIN_TILTFILE, &PatchParams::apply("tilt").force(), &Patch::Apply(&tiltfile))
        .await
        .context("declaring the Tiltfile")?;
    if !args.stream {
        say(&format!("Tiltfile: {}", path.display()));
    }

    let shutdown = CancellationToken::new();
    let controllers = tokio::spawn(tilt_controllers::run(client, shutdown.clone()));
    let signal = wait_for_signal().await?;
    say(&format!("tilt-rs: {signal} received, shutting down"));
    shutdown.cancel();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), controllers).await;
    server.shutdown().await;
    Ok(())
}
