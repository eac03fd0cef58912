//! `tilt crds`: the CustomResourceDefinitions of every tilt.dev kind, generated from `tilt-apis`, for
//! installing the kinds into a Kubernetes apiserver: `tilt crds | kubectl apply -f -`.

use std::io::Write;

use anyhow::Result;
use serde_json::Value;

use crate::resources::output::{to_json, to_yaml};

/// Flags of `tilt crds`.
#[derive(clap::Args)]
pub struct CrdsArgs {
    /// Output format: `yaml` (a stream of documents) or `json` (a `v1` List).
    #[arg(short, long, default_value = "yaml", value_parser = ["yaml", "json"])]
    output: String,
    /// The namespaced CRDs a shared apiserver needs for `tilt up --api-context` (a namespace per session),
    /// annotated with the schema they come from.
    #[arg(long)]
    namespaced: bool,
    /// Instead of CRDs, the RBAC objects of sessions on a shared apiserver: the ClusterRole `tilt-session` (bind
    /// it in a session's namespace) and the ClusterRole `tilt-user` every user needs.
    #[arg(long, conflicts_with = "namespaced")]
    rbac: bool,
}

/// Runs `tilt crds`.
pub fn crds(args: CrdsArgs) -> Result<()> {
    let crds: Vec<Value> = if args.rbac {
        crate::shared::rbac()
    } else {
        let crds = if args.namespaced { crate::shared::namespaced_crds() } else { tilt_apis::crds() };
        crds.iter().map(serde_json::to_value).collect::<Result<_, _>>()?
    };
    let out = if args.output == "json" {
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": crds});
        to_json(&list) + "\n"
    } else {
        let mut out = String::new();
        for crd in &crds {
            out.push_str("---\n");
            out.push_str(&to_yaml(crd)?);
        }
        out
    };
    // A reader that stops early (`tilt crds | head`) is not an error.
    match std::io::stdout().lock().write_all(out.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
