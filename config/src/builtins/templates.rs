//! YAML generators run on the host: `kustomize()` (`kustomize build`, else `kubectl kustomize`) and `helm()`
//! (`helm template`). Both return a blob for `k8s_yaml()` and watch their inputs.

use std::path::{Path, PathBuf};

use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;

use super::files::{LocalEcho, exec_local, one_path};
use super::k8s::parse_entities;
use super::{path_arg, string_list};
use crate::state::TiltfileState;
use crate::values::Blob;
use crate::yaml;

/// Registers this module's built-ins.
pub(crate) fn register(builder: &mut GlobalsBuilder) {
    template_builtins(builder);
}

#[starlark_module]
fn template_builtins(builder: &mut GlobalsBuilder) {
    /// Runs `kustomize build DIR` (or `kubectl kustomize DIR` without kustomize) and returns the YAML.
    fn kustomize<'v>(
        paths: Option<Value<'v>>,
        kustomize_bin: Option<Value<'v>>,
        flags: Option<Value<'v>>,
        #[starlark(require = named)] path: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Blob> {
        let state = TiltfileState::from_eval(eval)?;
        let dir = one_path(state, paths, path)?;
        let mut argv = match kustomize_bin.filter(|v| !v.is_none()) {
            Some(bin) => vec![path_arg(state, bin, "kustomize_bin")?, "build".to_owned()],
            None if on_path("kustomize") => vec!["kustomize".to_owned(), "build".to_owned()],
            None => vec!["kubectl".to_owned(), "kustomize".to_owned()],
        };
        argv.extend(string_list(flags, "flags")?);
        argv.push(dir.to_string_lossy().into_owned());
        let echo = LocalEcho { command: true, output: false };
        let text = exec_local(state, &argv, &state.current_dir(), &[], None, echo)?;
        state.record_file(&dir);
        Ok(Blob { text })
    }

    /// Runs `helm template` on a local chart directory and returns the YAML (without test hooks).
    fn helm<'v>(
        paths: Option<Value<'v>>,
        #[starlark(default = "")] name: &str,
        #[starlark(default = "")] namespace: &str,
        values: Option<Value<'v>>,
        set: Option<Value<'v>>,
        #[starlark(default = "")] kube_version: &str,
        #[starlark(default = false)] skip_crds: bool,
        #[starlark(require = named)] path: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Blob> {
        let state = TiltfileState::from_eval(eval)?;
        let chart = one_path(state, paths, path)?;
        if !chart.is_dir() {
            anyhow::bail!("Could not read Helm chart directory {:?}: does not exist or is not a directory", chart);
        }
        state.record_file(&chart);
        let release = if name.is_empty() { "chart" } else { name };
        let mut argv: Vec<String> =
            vec!["helm".into(), "template".into(), release.into(), chart.to_string_lossy().into_owned()];
        if !namespace.is_empty() {
            argv.extend(["--namespace".to_owned(), namespace.to_owned()]);
        }
        if !kube_version.is_empty() {
            argv.extend(["--kube-version".to_owned(), kube_version.to_owned()]);
        }
        if !skip_crds {
            argv.push("--include-crds".to_owned());
        }
        for file in string_list(values, "values")? {
            let abs: PathBuf = state.abs_path(&file);
            state.record_file(&abs);
            argv.extend(["--values".to_owned(), abs.to_string_lossy().into_owned()]);
        }
        for arg in string_list(set, "set")? {
            argv.extend(["--set".to_owned(), arg]);
        }
        let echo = LocalEcho { command: true, output: false };
        let text = exec_local(state, &argv, &state.current_dir(), &[], None, echo)?;
        Ok(Blob { text: without_test_hooks(&text, namespace)? })
    }
}

/// Whether `program` is an executable on `$PATH`.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| is_executable(&dir.join(program))))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Drops Helm test hooks and gives namespaced objects `namespace` when they have none (`helm template
/// --namespace` does not).
fn without_test_hooks(text: &str, namespace: &str) -> anyhow::Result<String> {
    let mut docs = Vec::new();
    for e in parse_entities(text)? {
        let hook = e.obj.pointer("/metadata/annotations/helm.sh~1hook").and_then(|h| h.as_str()).unwrap_or("");
        if hook.split(',').any(|h| h.trim().starts_with("test")) {
            continue;
        }
        let mut obj = e.obj;
        if !namespace.is_empty()
            && obj.pointer("/metadata/namespace").is_none()
            && let Some(meta) = obj.get_mut("metadata").and_then(|m| m.as_object_mut())
        {
            meta.insert("namespace".to_owned(), namespace.into());
        }
        docs.push(obj);
    }
    yaml::to_yaml_stream(&docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_output_filtering() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: t\n  annotations: {helm.sh/hook: test}\n---\n\
                    apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";
        let out = yaml::parse_stream(&without_test_hooks(text, "ns").unwrap()).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["metadata"]["namespace"], "ns");
    }
}
