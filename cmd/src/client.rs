//! Finding and connecting to a running `tilt up`: through tilt's own kubeconfig by default, or a named
//! context / API port of the user's kubeconfig.

use anyhow::{Context, Result, anyhow};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::kubeconfig;

/// Which `tilt up` to talk to.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Target {
    /// The API port of the `tilt up` to talk to.
    #[arg(long, global = true)]
    pub port: Option<u16>,
    /// The kubeconfig context of the `tilt up` to talk to (`tilt`, `tilt-<port>`).
    #[arg(long, global = true)]
    pub context: Option<String>,
    #[command(flatten)]
    pub shared: crate::shared::SharedArgs,
}

/// A client for the `tilt up` that `target` names, checked to be alive.
pub async fn connect(target: &Target) -> Result<kube::Client> {
    if let Some(context) = &target.shared.api_context {
        // A session on a shared apiserver: the one named, or the one `tilt up` derives for ./Tiltfile.
        let tiltfile = std::path::absolute("Tiltfile").context("resolving ./Tiltfile")?;
        let session = crate::shared::session_name(target.shared.session.as_deref(), &tiltfile)?;
        return crate::shared::client(context, &crate::shared::namespace(&session)).await;
    }
    let (kubeconfig, context, what) = match (&target.context, target.port) {
        (Some(ctx), _) => {
            let path = kubeconfig::user_kubeconfig_path();
            (
                Kubeconfig::read_from(&path).with_context(|| format!("reading {}", path.display()))?,
                Some(ctx.clone()),
                format!("context {ctx}"),
            )
        }
        (None, Some(port)) => {
            let user = kubeconfig::read_user_kubeconfig()?;
            let ctx = kubeconfig::context_for_port(&user, port).ok_or_else(|| {
                anyhow!("no tilt up found on port {port}: start one with `tilt up --api-port {port}`")
            })?;
            (serde_json::from_value(user).context("parsing the kubeconfig")?, Some(ctx), format!("port {port}"))
        }
        (None, None) => {
            let path = kubeconfig::tilt_config_path();
            let config = Kubeconfig::read_from(&path)
                .map_err(|_| anyhow!("no tilt up found (no {}): start one with `tilt up`", path.display()))?;
            (config, None, path.display().to_string())
        }
    };
    let options = KubeConfigOptions { context, ..Default::default() };
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.with_context(|| format!("loading {what}"))?;
    let server = config.cluster_url.to_string();
    let client = kube::Client::try_from(config)?;
    client
        .apiserver_version()
        .await
        .map_err(|_| anyhow!("no tilt up found at {server} ({what}): start one with `tilt up`"))?;
    Ok(client)
}
