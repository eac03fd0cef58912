//! `tilt down`: delete what the running `tilt up`'s Tiltfile declared, through its API.

use std::time::Duration;

use anyhow::{Result, bail};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams};
use tilt_apis::{KubernetesApply, Session};
use tilt_controllers::session::SESSION_NAME;

use crate::{client, view};

/// Flags of `tilt down`.
#[derive(clap::Args)]
pub struct DownArgs {
    /// Also stop the running `tilt up`.
    #[arg(long)]
    stop: bool,
    #[command(flatten)]
    target: client::Target,
}

/// Runs `tilt down`.
pub async fn down(args: DownArgs) -> Result<()> {
    let client = client::connect(&args.target).await?;
    let n = tilt_controllers::tiltfile::delete_declared(&client).await?;
    view::say(&format!("tilt down: deleted {n} objects"));
    wait_for_cluster_deletes(&client).await?;
    if args.stop {
        Api::<Session>::all(client).delete(SESSION_NAME, &DeleteParams::default()).await?;
        view::say("tilt down: asked tilt up to stop");
    }
    Ok(())
}

/// How long `tilt down` waits for the cluster to delete what was deployed.
const CLUSTER_DELETE_TIMEOUT: Duration = Duration::from_secs(60);

/// Waits until every KubernetesApply is gone: their finalizers delete the deployed objects first.
async fn wait_for_cluster_deletes(client: &kube::Client) -> Result<()> {
    let api: Api<KubernetesApply> = Api::all(client.clone());
    let deadline = tokio::time::Instant::now() + CLUSTER_DELETE_TIMEOUT;
    let mut announced = false;
    loop {
        let left = api.list(&ListParams::default()).await?.items;
        if left.is_empty() {
            return Ok(());
        }
        if !announced {
            view::say(&format!("tilt down: deleting the Kubernetes objects of {} resources", left.len()));
            announced = true;
        }
        if tokio::time::Instant::now() >= deadline {
            let names: Vec<String> = left.iter().map(|k| k.name_any()).collect();
            let errors: Vec<String> = left
                .iter()
                .filter_map(|k| k.status.as_ref())
                .map(|s| s.error.clone())
                .filter(|e| !e.is_empty())
                .collect();
            bail!("timed out deleting the Kubernetes objects of {} ({})", names.join(", "), errors.join("; "));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
