//! Objects of a `local_resource`: UIResource `NAME`, UIButton `NAME:trigger`, FileWatch `local:NAME` (when it
//! has deps), Cmd `NAME:update` (with `cmd`) and Cmd `NAME:serve` (with `serve_cmd`).
//!
//! The update Cmd restarts on the FileWatch (in auto trigger mode) and on the button; it waits for the
//! `resource_deps` UIResources and, with `auto_init=False`, for a click. The serve Cmd restarts whenever the
//! update Cmd succeeds again (or, without one, on the FileWatch and the button) and starts after it.

use serde_json::Value;
use tilt_apis::{CmdSpec, ConfigMapDisableSource, DisableSource, FileWatchSpec, RestartOnSpec, StartOnSpec};

use super::{Assembly, Meta, merge_ignores, object, path_string};
use super::{TRIGGER_MODE_ANNOTATION, resource_head_objects, trigger_button_name, trigger_mode_number};
use crate::state::{LocalResource, TriggerMode};

/// Name of the FileWatch of local resource `name`.
pub(crate) fn file_watch_name(name: &str) -> String {
    format!("local:{name}")
}

/// Name of the update Cmd of local resource `name`.
pub(crate) fn update_cmd_name(name: &str) -> String {
    format!("{name}:update")
}

/// Name of the serve Cmd of local resource `name`.
/// The ConfigMap `tilt enable/disable` writes for a resource (Go Tilt's name and key).
pub(crate) fn disable_source(name: &str) -> DisableSource {
    DisableSource {
        config_map: Some(ConfigMapDisableSource { name: format!("{name}-disable"), key: "isDisabled".into() }),
        ..DisableSource::default()
    }
}

pub(crate) fn serve_cmd_name(name: &str) -> String {
    format!("{name}:serve")
}

/// Appends the objects of `r` to `out`.
pub(crate) fn objects(ctx: &Assembly<'_>, r: &LocalResource, out: &mut Vec<Value>) -> anyhow::Result<()> {
    let name = r.name.as_str();
    let meta = Meta::for_resource(name, &r.labels);
    let auto = r.trigger_mode.unwrap_or(ctx.default_trigger) == TriggerMode::Auto;
    let ui_meta = meta.with_annotation(TRIGGER_MODE_ANNOTATION, trigger_mode_number(auto, r.auto_init).to_string());
    if !resource_head_objects(ctx, name, &r.links, &meta, ui_meta, out)? {
        return Ok(());
    }

    let button = trigger_button_name(name);
    let resource_deps = ctx.deps_of(name);
    let has_watch = !r.deps.is_empty();
    if has_watch {
        let ignores = merge_ignores(
            std::iter::once((r.base_dir.clone(), r.ignores.clone()))
                .chain(ctx.global_ignores.iter().map(|d| (d.base_path.clone().into(), d.patterns.clone()))),
        );
        let spec = FileWatchSpec { watched_paths: r.deps.clone(), ignores, disable_source: None };
        out.push(object("FileWatch", &file_watch_name(name), &meta, spec)?);
    }
    let watch_restarts = has_watch && auto;
    let watches = if has_watch { vec![file_watch_name(name)] } else { Vec::new() };
    let manual_start = if r.auto_init { Vec::new() } else { vec![button.clone()] };

    if !r.update.is_empty() {
        let spec = CmdSpec {
            args: r.update.argv.clone(),
            dir: path_string(&r.update.dir),
            env: cmd_env(ctx, &r.update.env),
            restart_on: Some(RestartOnSpec {
                file_watches: if watch_restarts { vec![file_watch_name(name)] } else { Vec::new() },
                ui_buttons: vec![button.clone()],
                cmds: Vec::new(),
            }),
            start_on: start_on(Vec::new(), resource_deps.clone(), manual_start.clone()),
            disable_source: Some(disable_source(name)),
            ..CmdSpec::default()
        };
        out.push(object("Cmd", &update_cmd_name(name), &meta.with_auto_file_watches(&watches), spec)?);
    }
    if !r.serve.is_empty() {
        let has_update = !r.update.is_empty();
        let update_cmds = if has_update { vec![update_cmd_name(name)] } else { Vec::new() };
        let spec = CmdSpec {
            args: r.serve.argv.clone(),
            dir: path_string(&r.serve.dir),
            env: cmd_env(ctx, &r.serve.env),
            readiness_probe: r.readiness_probe.clone(),
            restart_on: Some(RestartOnSpec {
                file_watches: if watch_restarts && !has_update { vec![file_watch_name(name)] } else { Vec::new() },
                ui_buttons: vec![button.clone()],
                cmds: update_cmds.clone(),
            }),
            start_on: start_on(update_cmds, resource_deps, manual_start),
            disable_source: Some(disable_source(name)),
            ..CmdSpec::default()
        };
        let serve_watches = if has_update { &[][..] } else { &watches[..] };
        out.push(object("Cmd", &serve_cmd_name(name), &meta.with_auto_file_watches(serve_watches), spec)?);
    }
    Ok(())
}

/// A `startOn`, or `None` when there is nothing to wait for.
fn start_on(cmds: Vec<String>, ui_resources: Vec<String>, ui_buttons: Vec<String>) -> Option<StartOnSpec> {
    if cmds.is_empty() && ui_resources.is_empty() && ui_buttons.is_empty() {
        return None;
    }
    Some(StartOnSpec { start_after: None, ui_buttons, cmds, ui_resources })
}

/// A Cmd's environment: what `os.putenv()`/`os.unsetenv()` changed (Go Tilt changes its own environment, which
/// its processes inherit; an unset variable becomes empty here, since a Cmd can only add variables), then the
/// resource's own `env`, which wins. `KEY=VALUE`, sorted by key.
fn cmd_env(ctx: &Assembly<'_>, own: &[String]) -> Vec<String> {
    let own_keys: Vec<&str> = own.iter().map(|kv| kv.split_once('=').map_or(kv.as_str(), |(k, _)| k)).collect();
    let mut env: Vec<String> = ctx
        .env_changes
        .iter()
        .filter(|(k, _)| !own_keys.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or_default()))
        .chain(own.iter().cloned())
        .collect();
    env.sort_by(|a, b| a.split_once('=').map(|p| p.0).cmp(&b.split_once('=').map(|p| p.0)));
    env
}
