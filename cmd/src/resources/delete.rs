//! `tilt delete`: like `kubectl delete` — by `TYPE NAME…`, `TYPE/NAME…`, `-l`, `--all` or `-f`, and by
//! default waits until the objects are gone (finalizers done), up to `--timeout`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use kube::api::DeleteParams;
use kube::runtime::wait::{await_condition, conditions};
use serde_json::Value;

use super::cluster::{Cluster, Filter, Kind, Selection};
use super::output::emit;
use crate::client;
use crate::up::parse_duration;

/// Flags of `tilt delete`.
#[derive(clap::Args)]
pub struct DeleteArgs {
    /// `TYPE NAME…` or `TYPE/NAME…` (or only `TYPE` with `-l` or `--all`).
    #[arg(value_name = "TYPE NAME | TYPE/NAME")]
    args: Vec<String>,
    /// Delete the objects in these files or directories (`-` for stdin).
    #[arg(short = 'f', long = "filename")]
    files: Vec<PathBuf>,
    /// Delete every object of the type.
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    filter: Filter,
    /// Treat objects that do not exist as deleted.
    #[arg(long)]
    ignore_not_found: bool,
    /// Wait until the objects are gone.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    wait: bool,
    /// How long to wait for the objects to be gone, e.g. `30s`.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    timeout: Duration,
    #[command(flatten)]
    target: client::Target,
}

/// Runs `tilt delete`.
pub async fn delete(args: DeleteArgs) -> Result<()> {
    let cluster = Cluster::connect(&args.target).await?;
    let mut targets: Vec<(&Kind, String)> = Vec::new();
    if !args.files.is_empty() {
        for manifest in super::read_manifests(&args.files)? {
            let name = manifest["metadata"]["name"].as_str().unwrap_or_default().to_string();
            targets.push((cluster.kind_of(&manifest)?, name));
        }
    } else {
        for selection in cluster.select(&args.args)? {
            if selection.names.is_empty() {
                if !args.all && !args.filter.is_set() {
                    bail!("resource(s) were provided, but no name was specified");
                }
                targets.extend(listed(&cluster, &selection, &args.filter).await?);
            } else {
                targets.extend(selection.names.iter().map(|n| (selection.kind, n.clone())));
            }
        }
    }
    if targets.is_empty() && !args.ignore_not_found {
        eprintln!("No resources found");
    }
    let deadline = tokio::time::Instant::now() + args.timeout;
    for (kind, name) in targets {
        let api = cluster.api(kind);
        let uid = match api.delete(&tilt_apis::path_name(&name), &DeleteParams::default()).await {
            Ok(either) => either.left().and_then(|o| o.metadata.uid),
            Err(kube::Error::Api(status)) if status.code == 404 && args.ignore_not_found => continue,
            Err(e) => return Err(e.into()),
        };
        emit(&format!("{} \"{name}\" deleted\n", kind.kind_group()));
        if args.wait
            && let Some(uid) = uid
        {
            let gone = await_condition(api, &name, conditions::is_deleted(&uid));
            if tokio::time::timeout_at(deadline, gone).await.is_err() {
                bail!("timed out waiting for {}/{name} to be deleted", kind.resource.plural);
            }
        }
    }
    Ok(())
}

/// The objects of a selection without names, as `(kind, name)`.
async fn listed<'c>(
    cluster: &'c Cluster,
    selection: &Selection<'c>,
    filter: &Filter,
) -> Result<Vec<(&'c Kind, String)>> {
    let objects = cluster.fetch(selection, filter).await?.objects;
    Ok(objects
        .iter()
        .map(|o: &Value| (selection.kind, o["metadata"]["name"].as_str().unwrap_or_default().to_string()))
        .collect())
}
