//! `tilt apply -f`: like `kubectl apply`. By default it is kubectl's client-side apply: the applied
//! manifest is kept in the `kubectl.kubernetes.io/last-applied-configuration` annotation and later
//! applies send a three-way JSON merge patch (what the manifest changes, plus the fields removed from it
//! since the last apply), so fields other writers own (status, controller-set fields) are left alone.
//! `--server-side` sends a server-side apply instead.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Map, Value, json};

use super::cluster::{Cluster, to_value};
use super::output::{OutputArgs, Printer, emit};
use crate::client;

/// The annotation holding the last applied manifest (kubectl's name, so both tools agree).
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Flags of `tilt apply`.
#[derive(clap::Args)]
pub struct ApplyArgs {
    /// Files or directories holding the manifests (`-` for stdin).
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    /// Use server-side apply, owned by `--field-manager`.
    #[arg(long)]
    server_side: bool,
    /// With `--server-side`: take over fields other managers own.
    #[arg(long)]
    force_conflicts: bool,
    /// The field manager of server-side applies.
    #[arg(long, default_value = "tilt")]
    field_manager: String,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    target: client::Target,
}

/// Runs `tilt apply`.
pub async fn apply(args: ApplyArgs) -> Result<()> {
    let manifests = super::read_manifests(&args.files)?;
    if manifests.is_empty() {
        bail!("no objects passed to apply");
    }
    let cluster = Cluster::connect(&args.target).await?;
    let printer = args.output.output.is_some().then(|| Printer::new(&args.output));
    let mut applied = Vec::new();
    for manifest in manifests {
        let kind = cluster.kind_of(&manifest)?;
        let name = manifest["metadata"]["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .context("an object to apply has no metadata.name")?
            .to_string();
        let api = cluster.api(kind);
        let current = api.get_opt(&tilt_apis::path_name(&name)).await?.map(|o| to_value(kind, o)).transpose()?;
        let (object, verb) = if args.server_side {
            let params = PatchParams {
                field_manager: Some(args.field_manager.clone()),
                force: args.force_conflicts,
                ..Default::default()
            };
            let object = api.patch(&tilt_apis::path_name(&name), &params, &Patch::Apply(&manifest)).await?;
            (object, "serverside-applied")
        } else {
            let modified = with_last_applied(&manifest)?;
            match &current {
                None => (api.create(&PostParams::default(), &serde_json::from_value(modified)?).await?, "created"),
                Some(current) => {
                    let original = current["metadata"]["annotations"][LAST_APPLIED]
                        .as_str()
                        .and_then(|s| serde_json::from_str(s).ok())
                        .unwrap_or(json!({}));
                    let patch = merge_patch(&original, &modified, current);
                    if patch.is_empty() {
                        (serde_json::from_value(current.clone())?, "unchanged")
                    } else {
                        (
                            api.patch(
                                &tilt_apis::path_name(&name),
                                &PatchParams::default(),
                                &Patch::Merge(Value::Object(patch)),
                            )
                            .await?,
                            "configured",
                        )
                    }
                }
            }
        };
        let object = to_value(kind, object)?;
        match printer {
            Some(_) => applied.push(object),
            None => emit(&format!("{}/{name} {verb}\n", kind.kind_group())),
        }
    }
    if let Some(printer) = printer {
        emit(&printer.objects(&applied, applied.len() == 1)?);
    }
    Ok(())
}

/// The manifest with itself recorded in the last-applied annotation.
fn with_last_applied(manifest: &Value) -> Result<Value> {
    let mut recorded = manifest.clone();
    if let Some(meta) = recorded.get_mut("metadata").and_then(Value::as_object_mut)
        && let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            meta.remove("annotations");
        }
    }
    let mut modified = manifest.clone();
    modified["metadata"]["annotations"][LAST_APPLIED] = Value::String(serde_json::to_string(&recorded)?);
    Ok(modified)
}

/// kubectl's three-way JSON merge patch: the fields of `modified` that differ from `current`, and `null`
/// for the fields `original` had that `modified` no longer has. Fields only `current` has (set by the
/// server or by others) are kept. Lists are replaced whole, as merge patches do.
pub fn merge_patch(original: &Value, modified: &Value, current: &Value) -> Map<String, Value> {
    let mut patch = Map::new();
    let (Some(modified), current) = (modified.as_object(), current.as_object()) else {
        return patch;
    };
    let empty = Map::new();
    let current = current.unwrap_or(&empty);
    let original = original.as_object().unwrap_or(&empty);
    for (key, value) in modified {
        match (current.get(key), value) {
            (Some(cur), value) if cur == value => {}
            (Some(cur @ Value::Object(_)), Value::Object(_)) => {
                let nested = merge_patch(original.get(key).unwrap_or(&Value::Null), value, cur);
                if !nested.is_empty() {
                    patch.insert(key.clone(), Value::Object(nested));
                }
            }
            (None, Value::Null) => {}
            _ => {
                patch.insert(key.clone(), value.clone());
            }
        }
    }
    for key in original.keys() {
        if !modified.contains_key(key) && current.contains_key(key) {
            patch.insert(key.clone(), Value::Null);
        }
    }
    patch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_way_patches() {
        let original = json!({"spec": {"args": ["a"], "dir": "/x", "env": ["E=1"]}});
        let modified = json!({"spec": {"args": ["b"], "dir": "/x"}, "metadata": {"labels": {"l": "1"}}});
        let current = json!({"spec": {"args": ["a"], "dir": "/x", "env": ["E=1"], "server": 1}, "metadata": {"uid": "u"}, "status": {}});
        let patch = Value::Object(merge_patch(&original, &modified, &current));
        assert_eq!(patch, json!({"spec": {"args": ["b"], "env": null}, "metadata": {"labels": {"l": "1"}}}));
        assert!(
            merge_patch(
                &modified,
                &modified,
                &json!({"spec": {"args": ["b"], "dir": "/x", "y": 2}, "metadata": {"labels": {"l": "1"}}})
            )
            .is_empty()
        );
    }

    #[test]
    fn last_applied_excludes_itself() {
        let m = json!({"metadata": {"name": "a", "annotations": {LAST_APPLIED: "old"}}, "spec": {}});
        let out = with_last_applied(&m).unwrap();
        let recorded: Value =
            serde_json::from_str(out["metadata"]["annotations"][LAST_APPLIED].as_str().unwrap()).unwrap();
        assert_eq!(recorded, json!({"metadata": {"name": "a"}, "spec": {}}));
        let plain = json!({"metadata": {"name": "a"}});
        let recorded: Value = serde_json::from_str(
            with_last_applied(&plain).unwrap()["metadata"]["annotations"][LAST_APPLIED].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(recorded, plain, "no annotations: null is recorded");
    }
}
