//! The kubectl twins: `tilt get|describe|delete|apply|edit|patch|wait|api-resources|explain` on the
//! objects of the running `tilt up`, behaving like `kubectl --context tilt …` without kubectl.
//!
//! Every command connects through [`cluster::Cluster`], which reads the server's discovery and
//! resolves the types users type (`fw`, `cmds`, `Cmd`, `cmds.tilt.dev`) in one place; objects are read
//! and written with kube's `Api<DynamicObject>`. Everything printed goes through [`output`]: the server's
//! own tables (as kubectl asks for them) or `-o json|yaml|name|jsonpath=…|custom-columns=…`. Errors are
//! reported the way kubectl reports them: `Error from server (NotFound): …` for API errors, `error: …`
//! otherwise, with exit code 1.

pub mod apply;
pub mod cluster;
pub mod delete;
pub mod describe;
pub mod edit;
pub mod explain;
pub mod get;
pub mod jsonpath;
pub mod output;
pub mod patch;
pub mod wait;

use std::future::Future;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::Value;

/// The kubectl-twin subcommands (flattened into `tilt`'s own).
#[derive(clap::Subcommand)]
pub enum Command {
    /// Display one or many objects, like `kubectl get`.
    Get(get::GetArgs),
    /// Show the details of objects, like `kubectl describe`.
    Describe(describe::DescribeArgs),
    /// Delete objects by type and name, label selector or file, like `kubectl delete`.
    Delete(delete::DeleteArgs),
    /// Create or update objects from files or stdin, like `kubectl apply`.
    Apply(apply::ApplyArgs),
    /// Edit an object in $KUBE_EDITOR or $EDITOR, like `kubectl edit`.
    Edit(edit::EditArgs),
    /// Update fields of an object with a merge or JSON patch, like `kubectl patch`.
    Patch(patch::PatchArgs),
    /// Wait for a condition, a JSONPath value or deletion, like `kubectl wait`.
    Wait(wait::WaitArgs),
    /// List the resource types the running `tilt up` serves, like `kubectl api-resources`.
    ApiResources(explain::ApiResourcesArgs),
    /// Document a type's fields from the server's OpenAPI schema, like `kubectl explain`.
    Explain(explain::ExplainArgs),
}

/// Runs one kubectl-twin command and returns the process exit code.
pub fn run(command: Command) -> ExitCode {
    exit(async move {
        match command {
            Command::Get(args) => get::get(args).await,
            Command::Describe(args) => describe::describe(args).await,
            Command::Delete(args) => delete::delete(args).await,
            Command::Apply(args) => apply::apply(args).await,
            Command::Edit(args) => edit::edit(args).await,
            Command::Patch(args) => patch::patch(args).await,
            Command::Wait(args) => wait::wait(args).await,
            Command::ApiResources(args) => explain::api_resources(args).await,
            Command::Explain(args) => explain::explain(args).await,
        }
    })
}

/// Runs `command` to completion on a new runtime; prints its error on one line of stderr, kubectl-style,
/// and exits 1 when it fails.
pub fn exit(command: impl Future<Output = Result<()>>) -> ExitCode {
    let result = tokio::runtime::Runtime::new().map_err(anyhow::Error::from).and_then(|rt| rt.block_on(command));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{}", error_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// kubectl's wording: `Error from server (Reason): message` for API errors, else `error: message`.
fn error_line(err: &anyhow::Error) -> String {
    for cause in err.chain() {
        if let Some(kube::Error::Api(status)) = cause.downcast_ref::<kube::Error>() {
            let reason = if status.reason.is_empty() { "Unknown" } else { status.reason.as_str() };
            return format!("Error from server ({reason}): {}", status.message);
        }
    }
    format!("error: {err:#}").replace('\n', " ")
}

/// Reads the manifests in `files` (`-` for stdin; a directory for its `.yaml`, `.yml` and `.json` files).
pub fn read_manifests(files: &[PathBuf]) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for path in files {
        let text = if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("reading stdin")?;
            text
        } else if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml" || e == "json"))
                .collect();
            entries.sort();
            out.extend(read_manifests(&entries)?);
            continue;
        } else {
            std::fs::read_to_string(path).with_context(|| format!("the path \"{}\" does not exist", path.display()))?
        };
        out.extend(output::parse_manifests(&text).with_context(|| format!("error parsing {}", path.display()))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_read_like_kubectl() {
        let status = kube::core::Status::failure("cmds.tilt.dev \"x\" not found", "NotFound").with_code(404);
        let err = anyhow::Error::from(kube::Error::Api(status.boxed())).context("getting x");
        assert_eq!(error_line(&err), "Error from server (NotFound): cmds.tilt.dev \"x\" not found");
        assert_eq!(
            error_line(&anyhow::anyhow!("the server doesn't have a resource type \"x\"")),
            "error: the server doesn't have a resource type \"x\""
        );
    }
}
