//! Running Starlark: the dialect, the global environment, `load()` of other files, and the [`load`] entry
//! point that evaluates the main Tiltfile and hands what it recorded to [`crate::assemble`].

use std::path::{Path, PathBuf};

use starlark::environment::{FrozenModule, Module};
use starlark::eval::{Evaluator, FileLoader};
use starlark::syntax::{AstModule, Dialect, DialectTypes};

use std::sync::{Arc, Mutex};

use crate::builtins::k8s::WORKLOAD_FUNCTION_VAR;
use crate::state::{HostEnv, SharedEnv, TiltfileState, abs_path_in};
use crate::values::K8sObjectId;
use crate::{LoadError, LoadOptions, Loaded, assemble, builtins};

/// Standard Starlark plus what Go Tilt's dialect allows (top-level `if`/`for`), f-strings and keyword-only
/// arguments.
pub(crate) fn dialect() -> Dialect {
    Dialect {
        enable_def: true,
        enable_lambda: true,
        enable_load: true,
        enable_keyword_only_arguments: true,
        enable_positional_only_arguments: false,
        enable_types: DialectTypes::Disable,
        enable_load_reexport: true,
        enable_top_level_stmt: true,
        enable_f_strings: true,
        ..Dialect::Standard
    }
}

/// Evaluates the Tiltfile `opts.path` and assembles the objects it declares.
pub(crate) fn load(opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let main_path = if opts.path.is_absolute() {
        opts.path.clone()
    } else {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        abs_path_in(&cwd, &opts.path.to_string_lossy())
    };
    let env: SharedEnv = Arc::new(Mutex::new(HostEnv::from_process()));
    let globals = builtins::globals(&main_path, &env);
    let state = TiltfileState::new(main_path.clone(), opts.args.clone(), globals, env);
    let result = eval_file(&state, &main_path);
    // Drop the frozen modules before assembling: nothing Starlark is needed any more.
    let recorded = state.take();
    if let Err(err) = result {
        return Err(LoadError { message: format_error(&err), files: recorded.files, output: recorded.output });
    }
    assemble::assemble(&state, recorded)
}

/// Renders a Starlark error (traceback with `file:line:col`, then the message) without terminal colors.
fn format_error(err: &starlark::Error) -> String {
    let text = format!("{err:#}");
    text.trim_end().to_owned()
}

/// Parses and runs one file with the shared `state` and `globals`, returning its frozen module (for `load()`).
fn eval_file(state: &TiltfileState, path: &Path) -> starlark::Result<FrozenModule> {
    // Watch it even when it is missing, so that creating it re-runs the evaluation.
    state.record_file(path);
    let source = std::fs::read_to_string(path)
        .map_err(|e| starlark::Error::new_other(anyhow::anyhow!("cannot read Tiltfile {}: {e}", path.display())))?;
    let ast = AstModule::parse(&path.to_string_lossy(), source, &dialect())?;
    let loader = Loader { state };

    state.rec().exec_stack.push(path.to_path_buf());
    let result = Module::with_temp_heap(|module| -> starlark::Result<FrozenModule> {
        module.set("__file__", module.heap().alloc(path.to_string_lossy().as_ref()));
        let is_main = state.rec().exec_stack.len() == 1;
        module.set("__name__", module.heap().alloc(if is_main { "__main__" } else { "" }));
        {
            let mut eval = Evaluator::new(&module);
            eval.extra = Some(state);
            eval.set_loader(&loader);
            eval.set_print_handler(state);
            eval.eval_module(ast, &state.globals)?;
            if is_main {
                name_workloads(state, &module, &mut eval)?;
            }
        }
        Ok(module.freeze()?)
    });
    state.rec().exec_stack.pop();
    result
}

/// Resolves `load('path', …)` relative to the loading file and evaluates each file once per Tiltfile run.
struct Loader<'a> {
    state: &'a TiltfileState,
}

impl FileLoader for Loader<'_> {
    fn load(&self, path: &str) -> starlark::Result<FrozenModule> {
        if path.starts_with("ext://") {
            return Err(other_error(format!(
                "cannot load {path:?}: Tilt extensions (ext://) are not supported yet; copy the extension's \
                 Tiltfile into your project and load it by relative path"
            )));
        }
        if path.contains("://") {
            return Err(other_error(format!("cannot load {path:?}: only local paths can be loaded")));
        }
        let abs = self.state.abs_path(path);
        if let Some(module) = self.state.rec().modules.get(&abs) {
            return Ok(module.clone());
        }
        if self.state.rec().exec_stack.contains(&abs) {
            return Err(other_error(format!("cycle in load(): {} loads itself", abs.display())));
        }
        if !abs.is_file() {
            // Watch it anyway (also in a directory that does not exist yet), so creating it re-runs the
            // Tiltfile.
            self.state.record_file(&abs);
            return Err(other_error(format!("cannot load {path:?}: {} does not exist", abs.display())));
        }
        // Re-raise as an error of the load statement, so the traceback also names the loading file.
        let module = eval_file(self.state, &abs)
            .map_err(|e| other_error(format!("error loading {path:?}:\n{}", format_error(&e))))?;
        self.state.rec().modules.insert(abs, module.clone());
        Ok(module)
    }
}

/// A Starlark error carrying just a message (the evaluator adds the call stack).
fn other_error(message: String) -> starlark::Error {
    starlark::Error::new_other(anyhow::anyhow!(message))
}

/// Runs another Tiltfile for its side effects (`include()`), as `load()` does but without importing names.
pub(crate) fn include(state: &TiltfileState, path: &str) -> starlark::Result<FrozenModule> {
    Loader { state }.load(path)
}

/// Calls the `workload_to_resource_function()` function (if the Tiltfile set one) for every workload, recording
/// the resource names it returns. Runs once the main Tiltfile has finished, when every `k8s_yaml()` and
/// `k8s_kind()` is known, as Go Tilt does when it assembles resources.
fn name_workloads<'v>(
    state: &TiltfileState,
    module: &Module<'v>,
    eval: &mut Evaluator<'v, '_, '_>,
) -> starlark::Result<()> {
    let Some((file, position)) = state.rec().k8s.workload_function.clone() else {
        return Ok(());
    };
    let func = if file == state.main_path {
        module.get(WORKLOAD_FUNCTION_VAR)
    } else {
        let owned = state.rec().modules.get(&file).and_then(|m| m.get(WORKLOAD_FUNCTION_VAR).ok());
        // SAFETY: the main module's frozen heap keeps the loaded module's heap alive for this evaluation.
        owned.map(|f| unsafe { f.owned_frozen_value(eval.frozen_heap()) }.to_value())
    };
    let Some(func) = func else {
        return Ok(());
    };
    let workloads: Vec<(usize, K8sObjectId)> = {
        let rec = state.rec();
        rec.k8s
            .entities
            .iter()
            .enumerate()
            .filter(|(_, e)| assemble::is_workload(e, &rec.k8s.kinds))
            .map(|(i, e)| {
                let id = K8sObjectId {
                    name: e.name().to_owned(),
                    kind: e.kind().to_owned(),
                    namespace: e.namespace().to_owned(),
                    group: e.group().to_owned(),
                };
                (i, id)
            })
            .collect()
    };
    let mut names = std::collections::HashMap::new();
    for (index, id) in workloads {
        let arg = eval.heap().alloc(id);
        let result = eval
            .eval_function(func, &[arg], &[])
            .map_err(|e| other_error(format!("{position}: workload_to_resource_function: {}", format_error(&e))))?;
        let name = result.unpack_str().ok_or_else(|| {
            other_error(format!(
                "{position}: workload_to_resource_function: invalid return value. wanted: string. got: {}",
                result.get_type()
            ))
        })?;
        builtins::validate_resource_name(name)
            .map_err(|e| other_error(format!("{position}: workload_to_resource_function: {e}")))?;
        names.insert(index, name.to_owned());
    }
    state.rec().k8s.workload_names = names;
    Ok(())
}
