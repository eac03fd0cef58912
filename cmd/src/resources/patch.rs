//! `tilt patch`: like `kubectl patch`, with a JSON merge patch (the default here) or a JSON patch
//! (`--type=json`). Strategic merge patches are a Kubernetes built-in-type feature that custom kinds
//! (and so tilt's) do not support, so `--type=strategic` is refused with that explanation.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use kube::api::{Patch, PatchParams};
use serde_json::Value;

use super::cluster::{Cluster, to_value};
use super::output::{OutputArgs, Printer, emit, qualified_name};
use crate::client;

/// Flags of `tilt patch`.
#[derive(clap::Args)]
pub struct PatchArgs {
    /// `TYPE NAME` or `TYPE/NAME`.
    #[arg(value_name = "TYPE NAME", required = true)]
    args: Vec<String>,
    /// The patch, as JSON or YAML.
    #[arg(short = 'p', long = "patch", required_unless_present = "patch_file")]
    patch: Option<String>,
    /// A file holding the patch.
    #[arg(long, conflicts_with = "patch")]
    patch_file: Option<PathBuf>,
    /// The patch type: merge (JSON merge patch) or json (JSON patch).
    #[arg(long = "type", default_value = "merge", value_parser = ["merge", "json", "strategic"])]
    patch_type: String,
    /// Patch this subresource (`status`) instead of the object.
    #[arg(long, value_parser = ["status"])]
    subresource: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    target: client::Target,
}

/// Runs `tilt patch`.
pub async fn patch(args: PatchArgs) -> Result<()> {
    let text = match (&args.patch, &args.patch_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?,
        (None, None) => bail!("must specify --patch or --patch-file containing the contents of the patch"),
    };
    let body: Value = if text.trim_start().starts_with(['{', '[']) {
        serde_json::from_str(&text).context("the patch is not valid JSON")?
    } else {
        serde_saphyr::from_str(&text).context("the patch is not valid YAML")?
    };
    let patch = match args.patch_type.as_str() {
        "merge" => Patch::Merge(body),
        "json" => Patch::Json(serde_json::from_value(body).context(
            "a JSON patch is a list of operations like {\"op\": \"replace\", \"path\": \"/spec/args\", \"value\": [...]}",
        )?),
        _ => {
            bail!("strategic merge patches are not supported by tilt.dev objects (custom kinds); use --type=merge or --type=json")
        }
    };
    let cluster = Cluster::connect(&args.target).await?;
    let selections = cluster.select(&args.args)?;
    let [selection] = selections.as_slice() else { bail!("patch takes one type and one name") };
    let [name] = selection.names.as_slice() else {
        bail!("patch takes exactly one object name (TYPE NAME or TYPE/NAME)")
    };
    let api = cluster.api(selection.kind);
    let before = api.get(&tilt_apis::path_name(name)).await?;
    let params = PatchParams::default();
    let after = match args.subresource.as_deref() {
        Some("status") => api.patch_status(&tilt_apis::path_name(name), &params, &patch).await?,
        _ => api.patch(&tilt_apis::path_name(name), &params, &patch).await?,
    };
    let unchanged = before.metadata.resource_version == after.metadata.resource_version;
    let after = to_value(selection.kind, after)?;
    if args.output.output.is_some() {
        emit(&Printer::new(&args.output).objects(&[after], true)?);
    } else {
        emit(&format!("{} patched{}\n", qualified_name(&after), if unchanged { " (no change)" } else { "" }));
    }
    Ok(())
}
