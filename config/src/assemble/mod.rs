//! Turning what a Tiltfile recorded into API objects.
//!
//! Runs after evaluation, so settings that apply to earlier declarations (`trigger_mode()`, `k8s_resource()`,
//! `watch_settings()`, `config.set_enabled_resources()`) are all known. Resources are ordered as Go Tilt
//! orders manifests: Kubernetes resources, local resources, then `uncategorized`. `resource_deps` naming an
//! unknown resource are dropped with a warning; a resource depending on itself or a dependency cycle is an
//! error.
//!
//! Every object is labelled `tilt.dev/owner: tiltfile`; every per-resource object also carries
//! `tilt.dev/resource` (label and annotation) and the resource's user labels (`label: label`).

mod k8s;
mod local;

pub(crate) use k8s::is_workload;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};
use tilt_apis::{
    API_VERSION, ComponentType, ConfigMapStateSource, IgnoreDef, StateSource, ToggleButtonSpec, ToggleButtonStateSpec,
    UIButtonSpec, UIComponentLocation, UIResourceSpec,
};

use crate::builtins::k8s::parse_ignore_file;
use crate::state::{Recorded, TiltfileState, TriggerMode};
use crate::{LoadError, Loaded, OWNER_LABEL, OWNER_VALUE, RESOURCE_LABEL};

/// UIResource annotation on Kubernetes resources: resources that must be ready first, as a JSON list.
pub const RESOURCE_DEPS_ANNOTATION: &str = "tilt.dev/resource-deps";
pub use tilt_apis::{
    AUTO_FILE_WATCHES_ANNOTATION, LINKS_ANNOTATION, PORT_FORWARDS_ANNOTATION, TRIGGER_MODE_ANNOTATION,
    UIBUTTON_TYPE_ANNOTATION,
};
/// UIResource annotation on Kubernetes resources: `false` when it waits for a trigger instead of starting.
pub const AUTO_INIT_ANNOTATION: &str = "tilt.dev/auto-init";
/// UIResource annotation: `true` for a resource left out by `config.set_enabled_resources()`; its other
/// objects are not created.
pub const DISABLED_ANNOTATION: &str = "tilt.dev/disabled";
/// Name of the resource holding Kubernetes objects that belong to no workload.
pub const UNCATEGORIZED: &str = "uncategorized";

/// A resource being assembled, of any kind.
pub(crate) struct ResourceHead {
    /// Resource name.
    pub name: String,
    /// Resources that must be ready first (validated).
    pub resource_deps: Vec<String>,
}

/// Builds the objects from what the evaluation recorded.
pub(crate) fn assemble(state: &TiltfileState, mut rec: Recorded) -> Result<Loaded, LoadError> {
    match assemble_objects(state, &mut rec) {
        Ok((objects, resources)) => Ok(Loaded { objects, resources, files: rec.files, output: rec.output }),
        Err(e) => Err(LoadError { message: format!("{e:#}"), files: rec.files, output: rec.output }),
    }
}

fn assemble_objects(state: &TiltfileState, rec: &mut Recorded) -> anyhow::Result<(Vec<Value>, Vec<String>)> {
    let global_ignores = global_ignores(state, rec);
    let default_trigger = rec.trigger_mode.as_ref().map_or(TriggerMode::Auto, |(mode, _)| *mode);

    let local_names: HashSet<String> = rec.local_resources.iter().map(|r| r.name.clone()).collect();
    let k8s_plan = k8s::plan(&rec.k8s, &local_names)?;

    let mut heads: Vec<ResourceHead> = Vec::new();
    heads.extend(
        k8s_plan
            .resources
            .iter()
            .map(|r| ResourceHead { name: r.name.clone(), resource_deps: r.resource_deps.clone() }),
    );
    heads.extend(
        rec.local_resources
            .iter()
            .map(|r| ResourceHead { name: r.name.clone(), resource_deps: r.resource_deps.clone() }),
    );
    if let Some(u) = &k8s_plan.uncategorized {
        heads.push(ResourceHead { name: u.name.clone(), resource_deps: Vec::new() });
    }
    let deps = sanitize_dependencies(&heads, &mut rec.output)?;
    let enabled = enabled_set(rec.config.enabled_resources.as_deref(), &deps);

    let mut objects = Vec::new();
    let mut names = Vec::new();
    let env_changes = state.env().changes.clone();
    let ctx = Assembly {
        global_ignores: &global_ignores,
        default_trigger,
        deps: &deps,
        enabled: &enabled,
        env_changes: &env_changes,
    };
    for resource in &k8s_plan.resources {
        names.push(resource.name.clone());
        k8s::objects(&ctx, &k8s_plan, resource, &mut objects)?;
    }
    for resource in &rec.local_resources {
        names.push(resource.name.clone());
        local::objects(&ctx, resource, &mut objects)?;
    }
    if let Some(resource) = &k8s_plan.uncategorized {
        names.push(resource.name.clone());
        k8s::objects(&ctx, &k8s_plan, resource, &mut objects)?;
    }
    for warning in k8s_plan.warnings {
        rec.output.push(format!("WARNING: {warning}"));
    }
    Ok((objects, names))
}

/// Settings shared by the per-resource object builders.
pub(crate) struct Assembly<'a> {
    /// `watch_settings()` and `.tiltignore` ignores, added to every FileWatch.
    pub global_ignores: &'a [IgnoreDef],
    /// The `trigger_mode()` default.
    pub default_trigger: TriggerMode,
    /// Validated `resource_deps` by resource name.
    pub deps: &'a HashMap<String, Vec<String>>,
    /// Resources enabled by `config.set_enabled_resources()`; `None` when it was not called (all are).
    pub enabled: &'a Option<HashSet<String>>,
    /// `os.putenv()`/`os.unsetenv()` changes (`None`: unset), applied to every Cmd.
    pub env_changes: &'a BTreeMap<String, Option<String>>,
}

impl Assembly<'_> {
    /// The validated dependencies of `name`.
    pub fn deps_of(&self, name: &str) -> Vec<String> {
        self.deps.get(name).cloned().unwrap_or_default()
    }

    /// Whether `name` runs (see `config.set_enabled_resources()`).
    pub fn is_enabled(&self, name: &str) -> bool {
        self.enabled.as_ref().is_none_or(|set| set.contains(name))
    }
}

/// Ignores that apply to every FileWatch: `watch_settings(ignore=…)` and the main directory's `.tiltignore`.
fn global_ignores(state: &TiltfileState, rec: &mut Recorded) -> Vec<IgnoreDef> {
    let mut by_base: Vec<(PathBuf, Vec<String>)> = Vec::new();
    let tiltignore = state.main_dir.join(".tiltignore");
    if let Ok(text) = std::fs::read_to_string(&tiltignore) {
        if !rec.files.contains(&tiltignore) {
            rec.files.push(tiltignore.clone());
        }
        by_base.push((state.main_dir.clone(), parse_ignore_file(&text)));
    }
    by_base.extend(rec.watch_ignores.iter().cloned());
    merge_ignores(by_base)
}

/// Merges pattern lists with the same base path, keeping first-seen order and dropping empty lists.
pub(crate) fn merge_ignores(lists: impl IntoIterator<Item = (PathBuf, Vec<String>)>) -> Vec<IgnoreDef> {
    let mut out: Vec<IgnoreDef> = Vec::new();
    for (base, patterns) in lists {
        if patterns.is_empty() {
            continue;
        }
        let base = base.to_string_lossy().into_owned();
        match out.iter_mut().find(|d| d.base_path == base) {
            Some(def) => def.patterns.extend(patterns),
            None => out.push(IgnoreDef { base_path: base, patterns }),
        }
    }
    out
}

/// Drops unknown dependencies (with a warning) and rejects self-dependencies and cycles.
fn sanitize_dependencies(
    heads: &[ResourceHead],
    output: &mut Vec<String>,
) -> anyhow::Result<HashMap<String, Vec<String>>> {
    let known: HashSet<&str> = heads.iter().map(|h| h.name.as_str()).collect();
    let mut deps: HashMap<String, Vec<String>> = HashMap::new();
    for head in heads {
        let mut kept = Vec::new();
        for dep in &head.resource_deps {
            if *dep == head.name {
                anyhow::bail!("resource {} specified a dependency on itself", head.name);
            }
            if !known.contains(dep.as_str()) {
                output.push(format!(
                    "WARNING: resource {} specified a dependency on unknown resource {dep} - dependency ignored",
                    head.name
                ));
                continue;
            }
            if !kept.contains(dep) {
                kept.push(dep.clone());
            }
        }
        deps.insert(head.name.clone(), kept);
    }
    // Depth-first search for a cycle, reporting it in declaration order.
    fn visit<'a>(
        name: &'a str,
        deps: &'a HashMap<String, Vec<String>>,
        done: &mut HashSet<&'a str>,
        path: &mut Vec<&'a str>,
    ) -> anyhow::Result<()> {
        if done.contains(name) {
            return Ok(());
        }
        if let Some(start) = path.iter().position(|n| *n == name) {
            let mut cycle: Vec<&str> = path[start..].to_vec();
            cycle.push(name);
            anyhow::bail!("cycle detected in resource dependency graph: {}", cycle.join(" -> "));
        }
        path.push(name);
        for dep in deps.get(name).into_iter().flatten() {
            visit(dep, deps, done, path)?;
        }
        path.pop();
        done.insert(name);
        Ok(())
    }
    let mut done = HashSet::new();
    for head in heads {
        visit(&head.name, &deps, &mut done, &mut Vec::new())?;
    }
    Ok(deps)
}

/// The resources `config.set_enabled_resources()` enabled, with everything they depend on.
fn enabled_set(enabled: Option<&[String]>, deps: &HashMap<String, Vec<String>>) -> Option<HashSet<String>> {
    let enabled = enabled?;
    let mut set: HashSet<String> = HashSet::new();
    let mut queue: Vec<String> = enabled.to_vec();
    while let Some(name) = queue.pop() {
        if set.insert(name.clone()) {
            queue.extend(deps.get(&name).cloned().unwrap_or_default());
        }
    }
    Some(set)
}

/// Labels and annotations of one object.
#[derive(Clone, Debug, Default)]
pub(crate) struct Meta {
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
}

impl Meta {
    /// This metadata with one more annotation.
    pub fn with_annotation(&self, key: &str, value: String) -> Meta {
        let mut meta = self.clone();
        meta.annotations.insert(key.to_owned(), value);
        meta
    }

    /// This metadata, marking an object that restarts on `file_watches` in auto trigger mode (so the web UI
    /// can switch it between auto and manual); unchanged when there are none.
    pub fn with_auto_file_watches(&self, file_watches: &[String]) -> Meta {
        if file_watches.is_empty() {
            return self.clone();
        }
        self.with_annotation(AUTO_FILE_WATCHES_ANNOTATION, serde_json::json!(file_watches).to_string())
    }

    /// The metadata shared by every object of resource `name` with user `labels`.
    pub fn for_resource(name: &str, labels: &[String]) -> Meta {
        let mut meta = Meta::default();
        meta.labels.insert(OWNER_LABEL.to_owned(), OWNER_VALUE.to_owned());
        for label in labels {
            meta.labels.insert(label.clone(), label.clone());
        }
        meta.labels.insert(RESOURCE_LABEL.to_owned(), sanitize_label(name));
        meta.annotations.insert(RESOURCE_LABEL.to_owned(), name.to_owned());
        meta
    }
}

/// A complete API object.
pub(crate) fn object(kind: &str, name: &str, meta: &Meta, spec: impl Serialize) -> anyhow::Result<Value> {
    Ok(json!({
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {
            "name": name,
            "labels": meta.labels,
            "annotations": meta.annotations,
        },
        "spec": serde_json::to_value(spec)?,
    }))
}

/// The UIResource (annotated with its links, and as disabled when it is) and the `NAME:trigger` UIButton
/// every resource has. Returns whether the resource is enabled, i.e. whether its other objects follow.
pub(crate) fn resource_head_objects(
    ctx: &Assembly<'_>,
    name: &str,
    links: &[(String, String)],
    meta: &Meta,
    mut ui_meta: Meta,
    out: &mut Vec<Value>,
) -> anyhow::Result<bool> {
    if !links.is_empty() {
        let links: Vec<Value> = links.iter().map(|(url, n)| serde_json::json!({"url": url, "name": n})).collect();
        ui_meta.annotations.insert(LINKS_ANNOTATION.to_owned(), Value::Array(links).to_string());
    }
    let enabled = ctx.is_enabled(name);
    if !enabled {
        ui_meta.annotations.insert(DISABLED_ANNOTATION.to_owned(), "true".to_owned());
    }
    out.push(object("UIResource", name, &ui_meta, UIResourceSpec {})?);
    out.push(object("ToggleButton", &disable_button_name(name), meta, disable_toggle(name))?);
    let button = UIButtonSpec {
        location: UIComponentLocation { component_id: name.to_owned(), component_type: ComponentType::Resource },
        text: "Trigger Update".to_owned(),
        icon_name: String::new(),
        icon_svg: String::new(),
        disabled: false,
        requires_confirmation: false,
        inputs: Vec::new(),
    };
    let button_meta = meta.with_annotation(UIBUTTON_TYPE_ANNOTATION, "Trigger".to_owned());
    out.push(object("UIButton", &trigger_button_name(name), &button_meta, button)?);
    Ok(enabled)
}

/// Go Tilt's number for a trigger mode: 0 auto, 1 manual with auto init, 2 manual, 3 auto with manual init.
pub(crate) fn trigger_mode_number(auto: bool, auto_init: bool) -> i32 {
    match (auto, auto_init) {
        (true, true) => 0,
        (false, true) => 1,
        (false, false) => 2,
        (true, false) => 3,
    }
}

/// Name of the ToggleButton (and of its UIButton) that enables and disables resource `name`.
pub(crate) fn disable_button_name(name: &str) -> String {
    format!("{name}-disable")
}

/// The enable/disable switch of resource `name`, stored where `tilt enable/disable` write.
fn disable_toggle(name: &str) -> ToggleButtonSpec {
    let source = local::disable_source(name).config_map.unwrap_or_default();
    ToggleButtonSpec {
        location: UIComponentLocation { component_id: name.to_owned(), component_type: ComponentType::Resource },
        on: ToggleButtonStateSpec {
            text: "Enable Resource".into(),
            icon_name: "play_arrow".into(),
            ..Default::default()
        },
        off: ToggleButtonStateSpec {
            text: "Disable Resource".into(),
            icon_name: "stop".into(),
            requires_confirmation: true,
            ..Default::default()
        },
        default_on: false,
        state_source: StateSource {
            config_map: Some(ConfigMapStateSource {
                name: source.name,
                key: source.key,
                on_value: "true".into(),
                off_value: "false".into(),
            }),
        },
        button_type: "DisableToggle".into(),
    }
}

/// Name of the UIButton that triggers resource `name` (`tilt trigger`, manual trigger mode).
pub(crate) fn trigger_button_name(name: &str) -> String {
    format!("{name}:trigger")
}

/// Go Tilt's `apis.SanitizeName`: `/` and `%` become `_`, `.`/`..` become `_`/`__`, and names longer than
/// 253 characters are cut with a hash suffix.
pub(crate) fn sanitize_name(name: &str) -> String {
    if name == "." || name == ".." {
        return name.replace('.', "_");
    }
    let sanitized = name.replace(['/', '%'], "_");
    shorten(&sanitized, name, 253)
}

/// Go Tilt's `apis.SanitizeLabel`: characters outside `[-A-Za-z0-9_.]` become `_`, at most 63 characters.
pub(crate) fn sanitize_label(name: &str) -> String {
    let sanitized: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' }).collect();
    shorten(&sanitized, name, 63)
}

/// Cuts `s` to `max` bytes, ending with `-` and the FNV-32a hash of `original`.
fn shorten(s: &str, original: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut hash: u32 = 0x811c_9dc5;
    for b in original.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    let mut cut = max - 9;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{hash:08x}", &s[..cut])
}

/// `path` as a string.
pub(crate) fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizing() {
        assert_eq!(sanitize_name("gcr.io/foo"), "gcr.io_foo");
        assert_eq!(sanitize_name(".."), "__");
        assert_eq!(sanitize_label("foo:deployment"), "foo_deployment");
        let long = "a".repeat(300);
        assert_eq!(sanitize_name(&long).len(), 253);
        assert_eq!(sanitize_label(&long).len(), 63);
    }

    #[test]
    fn dependency_cycles_and_unknowns() {
        let head = |n: &str, d: &[&str]| ResourceHead {
            name: n.to_owned(),
            resource_deps: d.iter().map(|s| (*s).to_owned()).collect(),
        };
        let mut out = Vec::new();
        let deps = sanitize_dependencies(&[head("a", &["b", "zzz"]), head("b", &[])], &mut out).unwrap();
        assert_eq!(deps["a"], vec!["b"]);
        assert!(out[0].contains("zzz"));
        let err = sanitize_dependencies(&[head("a", &["b"]), head("b", &["a"])], &mut out).unwrap_err();
        assert!(err.to_string().contains("a -> b -> a"), "{err}");
        assert!(sanitize_dependencies(&[head("a", &["a"])], &mut out).is_err());
    }
}
