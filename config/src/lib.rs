//! Tiltfile (Starlark) evaluation into tilt.dev API objects.
//!
//! [`load`] evaluates a Tiltfile with the [`starlark`] interpreter and returns every `tilt.dev/v1alpha1` object
//! it declares, as full JSON objects (`apiVersion`, `kind`, `metadata`, `spec`) ready to be applied to the API
//! server, together with the resource names, the files the evaluation read (so the caller can watch them) and
//! what the Tiltfile printed.
//!
//! Evaluation runs in two phases. First the Starlark program runs: each built-in (`local_resource`,
//! `k8s_yaml`, `docker_build`, `config.parse`, …; module `builtins`) checks its arguments and records plain
//! Rust data in a per-load state (module `state`). Nothing Starlark outlives that phase. Then module
//! `assemble` turns the recorded data into API objects: one UIResource per resource, a UIButton to trigger
//! it, FileWatches for its dependencies, Cmds for local commands, KubernetesApply/ImageMap/DockerImage
//! objects for Kubernetes resources. Assembling after evaluation is what lets `trigger_mode()` or
//! `k8s_resource()` apply to resources declared before them.
//!
//! Built-ins follow Go Tilt's names, parameters and defaults so that existing Tiltfiles keep working; the
//! dialect is standard Starlark plus top-level `if`/`for`, f-strings and keyword-only arguments. Starlark
//! types stay inside this crate: the public API is plain Rust and `serde_json` values.

mod assemble;
// Built-ins take Go Tilt's parameter lists, one Rust argument per Starlark parameter.
#[allow(clippy::too_many_arguments)]
mod builtins;
mod eval;
mod state;
mod values;
mod yaml;

use std::fmt;
use std::path::PathBuf;

/// Label (value `"tiltfile"`) on every object a Tiltfile evaluation creates, so that re-evaluation and
/// `tilt down` can find and delete exactly what is no longer declared.
pub const OWNER_LABEL: &str = "tilt.dev/owner";

/// Label and annotation naming the resource (manifest) an object belongs to. The annotation holds the exact
/// name; the label holds it made label-safe (identical for ordinary names).
pub const RESOURCE_LABEL: &str = "tilt.dev/resource";

/// Value of [`OWNER_LABEL`].
pub const OWNER_VALUE: &str = "tiltfile";

pub use assemble::{
    AUTO_INIT_ANNOTATION, DISABLED_ANNOTATION, LINKS_ANNOTATION, PORT_FORWARDS_ANNOTATION, RESOURCE_DEPS_ANNOTATION,
    TRIGGER_MODE_ANNOTATION, UNCATEGORIZED,
};

/// What to evaluate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Absolute path of the Tiltfile.
    pub path: PathBuf,
    /// Tiltfile arguments (`tilt up -- ARGS`), read by `config.parse()`.
    pub args: Vec<String>,
}

/// The result of a successful evaluation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// Every declared object: `apiVersion`, `kind`, `metadata` (`name`, `labels`, `annotations`) and `spec`.
    pub objects: Vec<serde_json::Value>,
    /// Resource (manifest) names: Kubernetes resources, then local resources, then `uncategorized`, each group
    /// in declaration order (Go Tilt's order).
    pub resources: Vec<String>,
    /// Every file read or loaded (the Tiltfile, `load()`ed files, `read_file`, `read_json`, `read_yaml`,
    /// `watch_file`, `k8s_yaml` files, Dockerfiles, …), absolute, without duplicates, in first-read order.
    pub files: Vec<PathBuf>,
    /// Lines printed by `print()`, by `local()` (its command and output) and warnings, in order.
    pub output: Vec<String>,
}

/// A failed evaluation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadError {
    /// What went wrong; for Starlark errors, the traceback with `file:line:col` of every frame.
    pub message: String,
    /// Files read before the error, so the caller can watch them and retry when one changes.
    pub files: Vec<PathBuf>,
    /// What was printed before the error.
    pub output: Vec<String>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LoadError {}

/// Evaluates the Tiltfile at `opts.path` and returns the objects it declares.
///
/// Synchronous: `local()` commands run to completion on the calling thread, so call it from a blocking
/// context (e.g. `tokio::task::spawn_blocking`).
pub fn load(opts: &LoadOptions) -> Result<Loaded, LoadError> {
    eval::load(opts)
}
