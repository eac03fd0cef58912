//! The `os` and `sys` modules: `os.getenv()`, `os.environ`, `os.getcwd()`, `os.name`, `os.path.*`,
//! `sys.argv`, `sys.executable`. Relative paths resolve against the running Tiltfile's directory.

use std::path::{Component, Path, PathBuf};

use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::tuple::UnpackTuple;

use super::string_arg;
use crate::state::{TiltfileState, clean_path};
use crate::values::text_of;

/// Registers the `os` and `sys` namespaces.
pub(crate) fn register(builder: &mut GlobalsBuilder) {
    let environ: serde_json::Map<String, serde_json::Value> =
        std::env::vars().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
    builder.namespace("os", |b| {
        os_members(b);
        b.set("environ", environ);
        b.set("name", "posix");
        b.namespace("path", os_path_members);
    });
    let argv: Vec<String> = std::env::args().collect();
    let executable = std::env::current_exe().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
    builder.namespace("sys", |b| {
        b.set("argv", argv);
        b.set("executable", executable.as_str());
    });
}

#[starlark_module]
fn os_members(builder: &mut GlobalsBuilder) {
    /// The environment variable `key`, or `default` when it is unset.
    fn getenv<'v>(
        key: Value<'v>,
        default: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let key = string_arg(key, "key")?;
        Ok(match std::env::var(&key) {
            Ok(v) => eval.heap().alloc(v),
            Err(_) => default.unwrap_or_else(Value::new_none),
        })
    }

    /// The directory of the running Tiltfile.
    fn getcwd<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<String> {
        Ok(TiltfileState::from_eval(eval)?.current_dir().to_string_lossy().into_owned())
    }
}

#[starlark_module]
fn os_path_members(builder: &mut GlobalsBuilder) {
    /// `path` made absolute against the Tiltfile's directory.
    fn abspath<'v>(path: &str, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<String> {
        Ok(TiltfileState::from_eval(eval)?.abs_path(path).to_string_lossy().into_owned())
    }

    /// `targpath` relative to `basepath` (default: the Tiltfile's directory), lexically.
    fn relpath<'v>(targpath: &str, basepath: Option<&str>, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<String> {
        let base = match basepath {
            Some(b) => b.to_owned(),
            None => TiltfileState::from_eval(eval)?.current_dir().to_string_lossy().into_owned(),
        };
        relative_path(&base, targpath)
    }

    /// The last element of `path`.
    fn basename(path: &str) -> anyhow::Result<String> {
        Ok(go_base(path))
    }

    /// All but the last element of `path`.
    fn dirname(path: &str) -> anyhow::Result<String> {
        Ok(go_dir(path))
    }

    /// Whether `path` (relative to the Tiltfile) exists.
    fn exists<'v>(path: &str, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<bool> {
        Ok(TiltfileState::from_eval(eval)?.abs_path(path).exists())
    }

    /// The elements joined with `/`, cleaned; an absolute element restarts the path only if it is first.
    fn join(#[starlark(args)] parts: UnpackTuple<Value<'_>>) -> anyhow::Result<String> {
        let mut strings = Vec::with_capacity(parts.items.len());
        for (i, part) in parts.items.iter().enumerate() {
            let s = text_of(*part).ok_or_else(|| {
                anyhow::anyhow!("os.path.join() only accepts strings. Argument #{i}: {}", part.get_type())
            })?;
            strings.push(s.to_owned());
        }
        Ok(go_join(&strings))
    }

    /// `path` (relative to the Tiltfile) with every symlink resolved.
    fn realpath<'v>(path: &str, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<String> {
        let abs = TiltfileState::from_eval(eval)?.abs_path(path);
        let real = std::fs::canonicalize(&abs).map_err(|e| anyhow::anyhow!("realpath {}: {e}", abs.display()))?;
        Ok(real.to_string_lossy().into_owned())
    }
}

/// Go's `filepath.Join`: non-empty elements joined with `/` and cleaned.
fn go_join(parts: &[String]) -> String {
    let joined = parts.iter().filter(|p| !p.is_empty()).cloned().collect::<Vec<_>>().join("/");
    if joined.is_empty() { String::new() } else { clean_path(Path::new(&joined)).to_string_lossy().into_owned() }
}

/// Go's `filepath.Base`.
fn go_base(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_owned();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_owned()
}

/// Go's `filepath.Dir`.
fn go_dir(path: &str) -> String {
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "",
    };
    if dir.is_empty() {
        return ".".to_owned();
    }
    clean_path(Path::new(dir)).to_string_lossy().into_owned()
}

/// Go's `filepath.Rel`: `target` relative to `base`, lexically.
fn relative_path(base: &str, target: &str) -> anyhow::Result<String> {
    let base_path = clean_path(Path::new(base));
    let target_path = clean_path(Path::new(target));
    if base_path.is_absolute() != target_path.is_absolute() {
        anyhow::bail!("Rel: can't make {target} relative to {base}");
    }
    let normal = |p: &PathBuf| -> Vec<String> {
        p.components()
            .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect()
    };
    let (b, t) = (normal(&base_path), normal(&target_path));
    let common = b.iter().zip(&t).take_while(|(x, y)| x == y).count();
    if b[common..].iter().any(|c| c == "..") {
        anyhow::bail!("Rel: can't make {target} relative to {base}");
    }
    let mut parts: Vec<String> = vec!["..".to_owned(); b.len() - common];
    parts.extend(t[common..].iter().cloned());
    Ok(if parts.is_empty() { ".".to_owned() } else { parts.join("/") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_path_functions() {
        assert_eq!(go_join(&["a".into(), "b/../c".into(), "".into(), "d".into()]), "a/c/d");
        assert_eq!(go_join(&["/x".into(), "y".into()]), "/x/y");
        assert_eq!(go_base("/a/b/"), "b");
        assert_eq!(go_base(""), ".");
        assert_eq!(go_base("/"), "/");
        assert_eq!(go_dir("/a/b"), "/a");
        assert_eq!(go_dir("b"), ".");
        assert_eq!(go_dir("/a"), "/");
        assert_eq!(relative_path("/a/b", "/a/c/d").unwrap(), "../c/d");
        assert_eq!(relative_path("/a", "/a").unwrap(), ".");
        assert!(relative_path("/a", "b").is_err());
    }
}
