//! `local_resource()`, `trigger_mode()` with `TRIGGER_MODE_AUTO`/`TRIGGER_MODE_MANUAL`, and `link()`.

use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::none::NoneType;
use starlark::values::{Value, ValueLike};

use super::{
    command_argv, env_list, labels_arg, path_arg, sequence_items, string_arg, string_list, string_map,
    validate_resource_name,
};
use crate::state::{CmdDecl, LocalResource, TiltfileState, TriggerMode};
use crate::values::{LinkValue, ProbeValue, TriggerModeValue, text_of};

/// Registers this module's built-ins.
pub(crate) fn register(builder: &mut GlobalsBuilder) {
    builder.set("TRIGGER_MODE_AUTO", TriggerModeValue(TriggerMode::Auto));
    builder.set("TRIGGER_MODE_MANUAL", TriggerModeValue(TriggerMode::Manual));
    local_resource_builtins(builder);
}

#[starlark_module]
fn local_resource_builtins(builder: &mut GlobalsBuilder) {
    /// A resource that runs `cmd` on the host (on start and when `deps` change) and/or keeps `serve_cmd`
    /// running.
    fn local_resource<'v>(
        name: Value<'v>,
        cmd: Option<Value<'v>>,
        deps: Option<Value<'v>>,
        trigger_mode: Option<Value<'v>>,
        resource_deps: Option<Value<'v>>,
        ignore: Option<Value<'v>>,
        #[starlark(default = true)] auto_init: bool,
        serve_cmd: Option<Value<'v>>,
        cmd_bat: Option<Value<'v>>,
        serve_cmd_bat: Option<Value<'v>>,
        #[starlark(default = false)] allow_parallel: bool,
        links: Option<Value<'v>>,
        labels: Option<Value<'v>>,
        env: Option<Value<'v>>,
        serve_env: Option<Value<'v>>,
        readiness_probe: Option<Value<'v>>,
        dir: Option<Value<'v>>,
        serve_dir: Option<Value<'v>>,
        tags: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        // Windows-only variants and scheduling hints that do not change the objects.
        let _ = (cmd_bat, serve_cmd_bat, allow_parallel, string_list(tags, "tags")?);
        let state = TiltfileState::from_eval(eval)?;
        let name = string_arg(name, "name")?;
        validate_resource_name(&name)?;

        let dir = dir.filter(|v| !v.is_none());
        let serve_dir = serve_dir.filter(|v| !v.is_none());
        let update = cmd_decl(state, cmd, dir, env, "cmd")?;
        let serve = cmd_decl(state, serve_cmd, serve_dir, serve_env, "serve_cmd")?;
        if dir.is_some() && update.is_empty() {
            if serve.is_empty() {
                anyhow::bail!("local_resource: 'dir' specified but 'cmd' is empty");
            }
            anyhow::bail!(
                "local_resource: 'dir' only affects 'cmd', not 'serve_cmd'. Did you mean to use 'serve_dir' instead?"
            );
        }
        if serve_dir.is_some() && serve.is_empty() {
            anyhow::bail!("local_resource: 'serve_dir' specified but 'serve_cmd' is empty");
        }
        if update.is_empty() && serve.is_empty() {
            anyhow::bail!("local_resource must have a cmd and/or a serve_cmd, but both were empty");
        }

        let deps =
            string_list(deps, "deps")?.iter().map(|d| state.abs_path(d).to_string_lossy().into_owned()).collect();
        let trigger_mode = trigger_mode_arg(trigger_mode)?;
        let readiness_probe = match readiness_probe.filter(|v| !v.is_none()) {
            None => None,
            Some(v) => Some(
                v.downcast_ref::<ProbeValue>()
                    .ok_or_else(|| anyhow::anyhow!("readiness_probe must be a probe(), got {}", v.get_type()))?
                    .0
                    .clone(),
            ),
        };
        let readiness_probe = if readiness_probe.is_some() && serve.is_empty() {
            state.warn(&format!("Ignoring readiness probe for local resource {name:?} (no serve_cmd was defined)"));
            None
        } else {
            readiness_probe
        };

        let resource = LocalResource {
            update,
            serve,
            base_dir: state.current_dir(),
            deps,
            ignores: string_list(ignore, "ignore")?,
            trigger_mode,
            auto_init,
            resource_deps: string_list(resource_deps, "resource_deps")?,
            links: links_arg(links)?,
            labels: labels_arg(labels)?,
            readiness_probe,
            name,
        };
        let mut rec = state.rec();
        if !rec.resource_names.insert(resource.name.clone()) {
            anyhow::bail!("Local resource {} has been defined multiple times", resource.name);
        }
        rec.local_resources.push(resource);
        Ok(NoneType)
    }

    /// Sets the default trigger mode of every resource that does not set its own.
    fn trigger_mode<'v>(trigger_mode: Value<'v>, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<NoneType> {
        let state = TiltfileState::from_eval(eval)?;
        let mode = trigger_mode_arg(Some(trigger_mode))?.unwrap_or(TriggerMode::Auto);
        let position = eval.call_stack_top_location().map(|l| l.to_string()).unwrap_or_default();
        let mut rec = state.rec();
        if let Some((_, previous)) = &rec.trigger_mode {
            anyhow::bail!("trigger_mode can only be called once. It was already called at {previous}");
        }
        rec.trigger_mode = Some((mode, position));
        Ok(NoneType)
    }

    /// A link shown with a resource in the UI.
    fn link(#[starlark(require = pos)] url: &str, #[starlark(default = "")] name: &str) -> anyhow::Result<LinkValue> {
        Ok(LinkValue { url: url.to_owned(), name: name.to_owned() })
    }
}

/// A `cmd`/`serve_cmd` argument with its `dir` and `env`.
fn cmd_decl(
    state: &TiltfileState,
    cmd: Option<Value<'_>>,
    dir: Option<Value<'_>>,
    env: Option<Value<'_>>,
    what: &str,
) -> anyhow::Result<CmdDecl> {
    let argv = command_argv(cmd, what)?;
    let dir = match dir {
        Some(d) => path_arg(state, d, "dir")?.into(),
        None => state.current_dir(),
    };
    let env = env_list(string_map(env, "env")?, "env")?;
    Ok(CmdDecl { argv, dir, env })
}

/// A `trigger_mode=` argument; `None` means unset.
pub(crate) fn trigger_mode_arg(value: Option<Value<'_>>) -> anyhow::Result<Option<TriggerMode>> {
    match value.filter(|v| !v.is_none()) {
        None => Ok(None),
        Some(v) => v.downcast_ref::<TriggerModeValue>().map(|m| Some(m.0)).ok_or_else(|| {
            anyhow::anyhow!("trigger_mode must be TRIGGER_MODE_AUTO or TRIGGER_MODE_MANUAL, got {} ({v})", v.get_type())
        }),
    }
}

/// A `links=` argument: a URL, a `link()`, or a list of them.
pub(crate) fn links_arg(value: Option<Value<'_>>) -> anyhow::Result<Vec<(String, String)>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    let items = sequence_items(value).unwrap_or_else(|| vec![value]);
    items
        .into_iter()
        .map(|item| {
            if let Some(url) = text_of(item) {
                Ok((url.to_owned(), String::new()))
            } else if let Some(link) = item.downcast_ref::<LinkValue>() {
                Ok((link.url.clone(), link.name.clone()))
            } else {
                anyhow::bail!("links must be URLs or link() values, got {} ({item})", item.get_type())
            }
        })
        .collect()
}
