//! `tilt down`: delete what the running `tilt up`'s Tiltfile declared, through its API.

use anyhow::Result;
use kube::api::{Api, DeleteParams};
use tilt_apis::Session;
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
    if args.stop {
        Api::<Session>::all(client).delete(SESSION_NAME, &DeleteParams::default()).await?;
        view::say("tilt down: asked tilt up to stop");
    }
    Ok(())
}
