//! What one Tiltfile evaluation has recorded so far: files read, printed output, and the declarations the
//! built-ins collected (resources, YAML, images, settings), as plain Rust data.
//!
//! Built-ins reach the state through the evaluator's `extra` slot ([`TiltfileState::from_eval`]). It lives in
//! a `RefCell`; borrows are kept short and never held across a nested evaluation (`load()`).

use std::cell::{RefCell, RefMut};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use starlark::any::ProvidesStaticType;
use starlark::environment::{FrozenModule, Globals};
use starlark::eval::Evaluator;
use tilt_apis::Probe;

use crate::builtins::config::ConfigState;
use crate::builtins::k8s::K8sState;

/// Per-evaluation state shared by every built-in and by `load()`.
#[derive(ProvidesStaticType)]
pub(crate) struct TiltfileState {
    /// The main Tiltfile.
    pub main_path: PathBuf,
    /// Its directory.
    pub main_dir: PathBuf,
    /// `tilt up -- ARGS`.
    pub args: Vec<String>,
    /// The built-ins every file of this evaluation sees.
    pub globals: Globals,
    /// The environment as `os.putenv()`/`os.unsetenv()` left it (shared with `os.environ`).
    pub env: SharedEnv,
    inner: RefCell<Recorded>,
}

/// The host environment a Tiltfile sees and changes. Go Tilt's `os.putenv()` changes its own process
/// environment; tilt-rs is multi-threaded and must not, so the changes live here and are applied to `local()`
/// and to the Cmds the Tiltfile declares.
#[derive(Debug, Default)]
pub(crate) struct HostEnv {
    /// The variables, starting from tilt's environment.
    pub vars: BTreeMap<String, String>,
    /// What the Tiltfile changed: `Some(value)` set, `None` unset.
    pub changes: BTreeMap<String, Option<String>>,
}

impl HostEnv {
    /// Tilt's own environment, unchanged.
    pub fn from_process() -> HostEnv {
        HostEnv { vars: std::env::vars().collect(), changes: BTreeMap::new() }
    }

    /// Sets `key` (`os.putenv`).
    pub fn set(&mut self, key: &str, value: &str) {
        self.vars.insert(key.to_owned(), value.to_owned());
        self.changes.insert(key.to_owned(), Some(value.to_owned()));
    }

    /// Unsets `key` (`os.unsetenv`), returning its old value.
    pub fn unset(&mut self, key: &str) -> Option<String> {
        self.changes.insert(key.to_owned(), None);
        self.vars.remove(key)
    }
}

/// A [`HostEnv`] shared by the evaluation state and the `os.environ` value.
pub(crate) type SharedEnv = Arc<Mutex<HostEnv>>;

/// Locks a [`SharedEnv`], ignoring poisoning (the data is plain maps).
pub(crate) fn lock_env(env: &SharedEnv) -> MutexGuard<'_, HostEnv> {
    env.lock().unwrap_or_else(|e| e.into_inner())
}

/// Everything recorded while the Tiltfile runs.
#[derive(Default)]
pub(crate) struct Recorded {
    /// Files read, in first-read order.
    pub files: Vec<PathBuf>,
    files_seen: HashSet<PathBuf>,
    /// Printed lines.
    pub output: Vec<String>,
    /// Files whose top level is running, innermost last; relative paths resolve against the innermost.
    pub exec_stack: Vec<PathBuf>,
    /// Modules already evaluated by `load()`, by absolute path.
    pub modules: HashMap<PathBuf, FrozenModule>,
    /// Every resource name taken so far (local resources and manually grouped k8s resources).
    pub resource_names: HashSet<String>,
    /// `local_resource()` calls, in order.
    pub local_resources: Vec<LocalResource>,
    /// The `trigger_mode()` default and where it was set.
    pub trigger_mode: Option<(TriggerMode, String)>,
    /// `watch_settings(ignore=…)` patterns with the directory they are relative to.
    pub watch_ignores: Vec<(PathBuf, Vec<String>)>,
    /// `config.*` definitions and results.
    pub config: ConfigState,
    /// `k8s_yaml`, `k8s_resource` and `docker_build` declarations.
    pub k8s: K8sState,
    /// `docker_prune_settings()`, if called.
    pub docker_prune: Option<crate::builtins::misc::DockerPruneSettings>,
}

/// A resource's trigger mode: whether file changes start an update by themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TriggerMode {
    /// File changes trigger an update.
    Auto,
    /// Only a click (or `tilt trigger`) does.
    Manual,
}

/// A command as declared: the argv to run (a string becomes `sh -c STRING`), where, and with what extra
/// environment.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct CmdDecl {
    /// The argv; empty when no command was given.
    pub argv: Vec<String>,
    /// Absolute working directory.
    pub dir: PathBuf,
    /// `KEY=VALUE`, sorted by key.
    pub env: Vec<String>,
}

impl CmdDecl {
    /// Whether no command was given.
    pub fn is_empty(&self) -> bool {
        self.argv.is_empty()
    }
}

/// One `local_resource()` call.
#[derive(Clone, Debug)]
pub(crate) struct LocalResource {
    /// Resource name.
    pub name: String,
    /// The update command (`cmd`), run on start and on changes.
    pub update: CmdDecl,
    /// The server command (`serve_cmd`), kept running.
    pub serve: CmdDecl,
    /// Directory of the file that declared it; relative `ignore` patterns are rooted here.
    pub base_dir: PathBuf,
    /// Absolute paths watched for changes.
    pub deps: Vec<String>,
    /// `ignore` patterns.
    pub ignores: Vec<String>,
    /// Explicit trigger mode; the `trigger_mode()` default when unset.
    pub trigger_mode: Option<TriggerMode>,
    /// Whether it starts with `tilt up` (otherwise it waits for a trigger).
    pub auto_init: bool,
    /// Resources that must be ready before it starts.
    pub resource_deps: Vec<String>,
    /// Links shown with the resource: (url, name).
    pub links: Vec<(String, String)>,
    /// User labels.
    pub labels: Vec<String>,
    /// Readiness probe of the serve command.
    pub readiness_probe: Option<Probe>,
}

impl TiltfileState {
    /// Creates the state for evaluating the Tiltfile at `main_path` (absolute) with `args`.
    pub fn new(main_path: PathBuf, args: Vec<String>, globals: Globals, env: SharedEnv) -> Self {
        let main_dir = main_path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
        TiltfileState { main_path, main_dir, args, globals, env, inner: RefCell::new(Recorded::default()) }
    }

    /// The environment as the Tiltfile has changed it so far.
    pub fn env(&self) -> MutexGuard<'_, HostEnv> {
        lock_env(&self.env)
    }

    /// The state of the evaluation `eval` belongs to.
    pub fn from_eval<'a>(eval: &Evaluator<'_, 'a, '_>) -> anyhow::Result<&'a TiltfileState> {
        eval.extra
            .and_then(|extra| extra.downcast_ref::<TiltfileState>())
            .ok_or_else(|| anyhow::anyhow!("internal error: Tiltfile state missing from the evaluator"))
    }

    /// Mutable access to what has been recorded. Do not hold it across a call back into Starlark.
    pub fn rec(&self) -> RefMut<'_, Recorded> {
        self.inner.borrow_mut()
    }

    /// Takes everything recorded, leaving the state empty.
    pub fn take(&self) -> Recorded {
        std::mem::take(&mut *self.inner.borrow_mut())
    }

    /// Records that `path` was read (or should be watched), once.
    pub fn record_file(&self, path: &Path) {
        let mut rec = self.rec();
        if rec.files_seen.insert(path.to_path_buf()) {
            rec.files.push(path.to_path_buf());
        }
    }

    /// Appends a line to the output.
    pub fn print(&self, line: impl Into<String>) {
        self.rec().output.push(line.into());
    }

    /// Records a warning in the output.
    pub fn warn(&self, message: &str) {
        self.print(format!("WARNING: {message}"));
    }

    /// The file whose top level is running (the main Tiltfile unless a `load()` is in progress).
    pub fn current_file(&self) -> PathBuf {
        self.inner.borrow().exec_stack.last().cloned().unwrap_or_else(|| self.main_path.clone())
    }

    /// The directory relative paths resolve against: that of [`current_file`](Self::current_file).
    pub fn current_dir(&self) -> PathBuf {
        let file = self.current_file();
        file.parent().map(Path::to_path_buf).unwrap_or_else(|| self.main_dir.clone())
    }

    /// `path` made absolute against [`current_dir`](Self::current_dir) and cleaned of `.` and `..`.
    pub fn abs_path(&self, path: &str) -> PathBuf {
        abs_path_in(&self.current_dir(), path)
    }

    /// Reads a file for the Tiltfile, recording it also when it does not exist, even in a directory that
    /// does not exist either: the FileWatch watches a missing path through its nearest existing ancestor,
    /// so creating it re-runs the Tiltfile.
    pub fn read_file(&self, path: &Path) -> std::io::Result<String> {
        let result = std::fs::read_to_string(path);
        let absent =
            |e: &std::io::Error| matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory);
        if result.as_ref().map_or_else(absent, |_| true) {
            self.record_file(path);
        }
        result
    }
}

impl starlark::PrintHandler for TiltfileState {
    fn println(&self, text: &str) -> starlark::Result<()> {
        self.print(text);
        Ok(())
    }
}

/// `path` made absolute against `base` and cleaned of `.` and `..` components (lexically, like Go's
/// `filepath.Join`).
pub(crate) fn abs_path_in(base: &Path, path: &str) -> PathBuf {
    let joined = if Path::new(path).is_absolute() { PathBuf::from(path) } else { base.join(path) };
    clean_path(&joined)
}

/// Lexically removes `.` and `..` components.
pub(crate) fn clean_path(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abs_path_cleans_dots() {
        let base = Path::new("/a/b");
        assert_eq!(abs_path_in(base, "c"), PathBuf::from("/a/b/c"));
        assert_eq!(abs_path_in(base, "./c/../d"), PathBuf::from("/a/b/d"));
        assert_eq!(abs_path_in(base, "../x"), PathBuf::from("/a/x"));
        assert_eq!(abs_path_in(base, "/abs/./y"), PathBuf::from("/abs/y"));
        assert_eq!(abs_path_in(base, "."), PathBuf::from("/a/b"));
    }
}
