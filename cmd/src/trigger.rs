//! `tilt trigger NAME`: clicks the resource's trigger button, which (re)runs its update and server.

use anyhow::{Result, bail};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tilt_apis::{UIButton, UIResource};

use crate::{client, view};

/// Flags of `tilt trigger`.
#[derive(clap::Args)]
pub struct TriggerArgs {
    /// The resource to trigger.
    resource: String,
    #[command(flatten)]
    target: client::Target,
}

/// Runs `tilt trigger`.
pub async fn trigger(args: TriggerArgs) -> Result<()> {
    let client = client::connect(&args.target).await?;
    if Api::<UIResource>::all(client.clone()).get_opt(&tilt_apis::path_name(&args.resource)).await?.is_none() {
        bail!("no resource named {:?} (see `tilt get uiresources`)", args.resource);
    }
    let button = format!("{}:trigger", args.resource);
    let buttons: Api<UIButton> = Api::all(client);
    if buttons.get_opt(&tilt_apis::path_name(&button)).await?.is_none() {
        bail!("resource {:?} has no trigger button ({button})", args.resource);
    }
    let click = json!({"status": {"lastClickedAt": MicroTime(jiff::Timestamp::now())}});
    buttons.patch_status(&tilt_apis::path_name(&button), &PatchParams::default(), &Patch::Merge(&click)).await?;
    view::say(&format!("Triggered {}", args.resource));
    Ok(())
}
