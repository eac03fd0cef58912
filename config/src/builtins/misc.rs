//! Smaller Go Tilt built-ins: `warn()`, `local_git_repo()`, `filter_yaml()`, `docker_prune_settings()` and
//! `load_dynamic()`.

use std::fmt;
use std::path::PathBuf;

use allocative::Allocative;
use starlark::any::ProvidesStaticType;
use starlark::environment::{GlobalsBuilder, Methods, MethodsBuilder};
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::dict::AllocDict;
use starlark::values::none::NoneType;
use starlark::values::tuple::UnpackTuple;
use starlark::values::{NoSerialize, StarlarkValue, Value, ValueLike, starlark_value};

use super::k8s::{Entity, ObjectSelector, parse_entities};
use super::{is_blob, path_arg, sequence_items, string_arg, string_map};
use crate::state::TiltfileState;
use crate::values::{Blob, text_of};
use crate::yaml;

/// `docker_prune_settings()` as given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DockerPruneSettings {
    /// No pruning at all.
    pub disable: bool,
    /// Prune images older than this.
    pub max_age_mins: i32,
    /// Prune after this many builds (0: on the interval instead).
    pub num_builds: i32,
    /// Prune this often.
    pub interval_hrs: i32,
    /// Keep this many most recent builds of each image.
    pub keep_recent: i32,
}

/// Registers this module's built-ins.
pub(crate) fn register(builder: &mut GlobalsBuilder) {
    misc_builtins(builder);
}

#[starlark_module]
fn misc_builtins(builder: &mut GlobalsBuilder) {
    /// Prints a warning in the Tiltfile's log; evaluation continues.
    fn warn<'v>(msg: Value<'v>, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<NoneType> {
        let msg = string_arg(msg, "msg")?;
        TiltfileState::from_eval(eval)?.warn(&msg);
        Ok(NoneType)
    }

    /// A git repository on disk (a directory with `.git`), whose `.paths(path)` gives paths inside it.
    fn local_git_repo<'v>(path: Value<'v>, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<GitRepo> {
        let state = TiltfileState::from_eval(eval)?;
        let root = PathBuf::from(path_arg(state, path, "path")?);
        if !root.join(".git").exists() {
            anyhow::bail!("{} isn't a valid git repo: it doesn't have a .git/ directory", root.display());
        }
        Ok(GitRepo { root })
    }

    /// Splits Kubernetes YAML into the objects that match every given filter and the rest, as two blobs.
    /// `labels` must all be present with those values; `name`, `namespace`, `kind` and `api_version` are
    /// case-insensitive regular expressions that match anywhere in the field.
    fn filter_yaml<'v>(
        yaml: Value<'v>,
        labels: Option<Value<'v>>,
        #[starlark(default = "")] name: &str,
        #[starlark(default = "")] namespace: &str,
        #[starlark(default = "")] kind: &str,
        #[starlark(default = "")] api_version: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<(Blob, Blob)> {
        let state = TiltfileState::from_eval(eval)?;
        let labels = match labels.filter(|v| !v.is_none()) {
            None => Vec::new(),
            Some(v) => string_map(Some(v), "labels").map_err(|e| anyhow::anyhow!("kwarg `labels`: {e}"))?,
        };
        let selector = ObjectSelector::new(api_version, kind, name, namespace)?;
        let mut matching = Vec::new();
        let mut rest = Vec::new();
        for entity in yaml_entities(state, yaml)? {
            let labelled = labels.iter().all(|(k, v)| {
                entity.obj.pointer("/metadata/labels").and_then(|l| l.get(k)).and_then(|l| l.as_str()) == Some(v)
            });
            if labelled && selector.matches(&entity) { &mut matching } else { &mut rest }.push(entity.obj);
        }
        Ok((Blob { text: yaml::to_yaml_stream(&matching)? }, Blob { text: yaml::to_yaml_stream(&rest)? }))
    }

    /// Settings for pruning the images Tilt built. Recorded; tilt-rs does not prune images yet.
    fn docker_prune_settings<'v>(
        #[starlark(default = true)] disable: bool,
        #[starlark(default = 360)] max_age_mins: i32,
        #[starlark(default = 0)] num_builds: i32,
        #[starlark(default = 1)] interval_hrs: i32,
        #[starlark(default = 2)] keep_recent: i32,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        for (what, value) in [
            ("max_age_mins", max_age_mins),
            ("num_builds", num_builds),
            ("interval_hrs", interval_hrs),
            ("keep_recent", keep_recent),
        ] {
            if value < 0 {
                anyhow::bail!("docker_prune_settings: {what} must be >= 0, got {value}");
            }
        }
        if interval_hrs == 0 && num_builds == 0 && !disable {
            anyhow::bail!("docker_prune_settings: interval_hrs must be >= 1 when num_builds is 0");
        }
        let settings = DockerPruneSettings { disable, max_age_mins, num_builds, interval_hrs, keep_recent };
        TiltfileState::from_eval(eval)?.rec().docker_prune = Some(settings);
        Ok(NoneType)
    }

    /// Runs another Tiltfile (relative to this one, once per evaluation, watched like `load()`) and returns
    /// its exported symbols as a dict.
    fn load_dynamic<'v>(path: &str, eval: &mut Evaluator<'v, '_, '_>) -> starlark::Result<Value<'v>> {
        let state = TiltfileState::from_eval(eval)?;
        let module = crate::eval::include(state, path)?;
        eval.frozen_heap().add_reference(module.frozen_heap());
        let mut entries = Vec::new();
        for name in module.names() {
            let name = name.as_str();
            if name.starts_with('_') {
                continue;
            }
            let value = module.get(name).map_err(starlark::Error::new_other)?;
            // SAFETY: the running module's frozen heap now references the loaded module's heap, and it outlives
            // every value of this evaluation.
            let value = unsafe { value.owned_frozen_value(eval.frozen_heap()) };
            entries.push((name.to_owned(), value.to_value()));
        }
        Ok(eval.heap().alloc(AllocDict(entries)))
    }
}

/// The objects of a `k8s_yaml`-style argument: a path, a blob, or a list of those.
pub(crate) fn yaml_entities(state: &TiltfileState, yaml: Value<'_>) -> anyhow::Result<Vec<Entity>> {
    let items = if yaml.is_none() { Vec::new() } else { sequence_items(yaml).unwrap_or_else(|| vec![yaml]) };
    let mut entities = Vec::new();
    for item in items {
        let (text, source) = if is_blob(item) {
            (string_arg(item, "yaml")?, "blob".to_owned())
        } else {
            let path = PathBuf::from(path_arg(state, item, "yaml")?);
            let text = state
                .read_file(&path)
                .map_err(|e| anyhow::anyhow!("error reading yaml file {}: {e}", path.display()))?;
            (text, path.display().to_string())
        };
        entities.extend(parse_entities(&text).map_err(|e| anyhow::anyhow!("{source} is not valid YAML: {e}"))?);
    }
    Ok(entities)
}

/// What `local_git_repo()` returns.
#[derive(Debug, Clone, PartialEq, Eq, ProvidesStaticType, NoSerialize, Allocative)]
pub(crate) struct GitRepo {
    #[allocative(skip)]
    root: PathBuf,
}
starlark_simple_value!(GitRepo);

impl fmt::Display for GitRepo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "local_git_repo({:?})", self.root.display().to_string())
    }
}

starlark::methods_static!(GIT_REPO_METHODS = git_repo_methods);

#[starlark_value(type = "git_repo")]
impl<'v> StarlarkValue<'v> for GitRepo {
    fn get_methods() -> Option<&'static Methods> {
        Some(GIT_REPO_METHODS.methods())
    }
}

#[starlark_module]
fn git_repo_methods(builder: &mut MethodsBuilder) {
    /// The absolute path of `path` inside the repository; with several paths, a list of them.
    fn paths<'v>(
        this: Value<'v>,
        #[starlark(args)] paths: UnpackTuple<Value<'v>>,
        heap: starlark::values::Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let repo = this.downcast_ref::<GitRepo>().ok_or_else(|| anyhow::anyhow!("not a git repo"))?;
        let joined = paths
            .items
            .iter()
            .map(|p| {
                let rel =
                    text_of(*p).ok_or_else(|| anyhow::anyhow!("paths: expected strings, got {}", p.get_type()))?;
                Ok(crate::state::abs_path_in(&repo.root, rel).to_string_lossy().into_owned())
            })
            .collect::<anyhow::Result<Vec<String>>>()?;
        Ok(match joined.as_slice() {
            [] => anyhow::bail!("paths: missing argument for path"),
            [one] => heap.alloc(one.as_str()),
            _ => heap.alloc(joined),
        })
    }
}
