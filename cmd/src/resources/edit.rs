//! `tilt edit`: like `kubectl edit` — opens each object as YAML (or JSON with `-o json`) in
//! `$KUBE_EDITOR`, `$EDITOR` or `vi`, and sends what changed as a merge patch. Also the editor launcher
//! `tilt args` uses.

use std::io::Write as _;
use std::process::Command;

use anyhow::{Context, Result, bail};
use kube::api::{Patch, PatchParams};
use serde_json::Value;

use super::apply::merge_patch;
use super::cluster::{Cluster, Filter, to_value};
use super::output::{emit, parse_manifests, qualified_name, to_json, to_yaml};
use crate::client;

const HEADER: &str = "# Please edit the object below. Lines beginning with a '#' will be ignored,\n\
# and an empty file will abort the edit.\n#\n";

/// Flags of `tilt edit`.
#[derive(clap::Args)]
pub struct EditArgs {
    /// `TYPE NAME…` or `TYPE/NAME…`.
    #[arg(value_name = "TYPE NAME", required = true)]
    args: Vec<String>,
    /// The format to edit in: yaml or json.
    #[arg(short = 'o', long = "output", default_value = "yaml", value_parser = ["yaml", "json"])]
    output: String,
    #[command(flatten)]
    target: client::Target,
}

/// Runs `tilt edit`.
pub async fn edit(args: EditArgs) -> Result<()> {
    let cluster = Cluster::connect(&args.target).await?;
    for selection in cluster.select(&args.args)? {
        if selection.names.is_empty() {
            bail!("edit needs the names of the objects to edit (TYPE NAME or TYPE/NAME)");
        }
        for mut original in cluster.fetch(&selection, &Filter::default()).await?.objects {
            if let Some(meta) = original["metadata"].as_object_mut() {
                meta.remove("managedFields");
            }
            let (text, ext) = match args.output.as_str() {
                "json" => (format!("{}\n", to_json(&original)), "json"),
                _ => (format!("{HEADER}{}", to_yaml(&original)?), "yaml"),
            };
            let edited = launch_editor(&["KUBE_EDITOR", "EDITOR"], &text, ext)?;
            let edited = if ext == "json" {
                serde_json::from_str(&edited).ok()
            } else {
                parse_manifests(&edited)?.into_iter().next()
            };
            let Some(edited) = edited.filter(|e: &Value| *e != original) else {
                emit("Edit cancelled, no changes made.\n");
                continue;
            };
            let patch = merge_patch(&original, &edited, &original);
            let name = original["metadata"]["name"].as_str().unwrap_or_default();
            let object = cluster
                .api(selection.kind)
                .patch(&tilt_apis::path_name(name), &PatchParams::default(), &Patch::Merge(Value::Object(patch)))
                .await?;
            emit(&format!("{} edited\n", qualified_name(&to_value(selection.kind, object)?)));
        }
    }
    Ok(())
}

/// Writes `contents` to a temporary `.ext` file, runs the editor named by the first set variable of
/// `vars` (else `vi`) on it through `sh`, and returns what the file holds afterwards.
pub fn launch_editor(vars: &[&str], contents: &str, ext: &str) -> Result<String> {
    let editor =
        vars.iter().find_map(|v| std::env::var(v).ok().filter(|e| !e.trim().is_empty())).unwrap_or_else(|| "vi".into());
    let mut file = tempfile::Builder::new()
        .prefix("tilt-edit-")
        .suffix(&format!(".{ext}"))
        .tempfile()
        .context("creating a temporary file")?;
    file.write_all(contents.as_bytes())?;
    file.flush()?;
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(file.path())
        .status()
        .with_context(|| format!("running the editor {editor:?}"))?;
    if !status.success() {
        bail!("the editor {editor:?} exited with {status}");
    }
    std::fs::read_to_string(file.path()).context("reading the edited file")
}
