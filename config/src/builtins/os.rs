//! The `os` and `sys` modules: `os.getenv()`, `os.putenv()`, `os.unsetenv()`, `os.environ`, `os.getcwd()`,
//! `os.name`, `os.path.*`, `sys.argv`, `sys.executable`. Relative paths resolve against the running Tiltfile's
//! directory. The environment is the evaluation's [`HostEnv`]: tilt's own, changed by `os.putenv()`.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use allocative::Allocative;
use starlark::any::ProvidesStaticType;
use starlark::environment::{GlobalsBuilder, Methods, MethodsBuilder};
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::none::NoneType;
use starlark::values::tuple::UnpackTuple;
use starlark::values::{Heap, NoSerialize, StarlarkValue, Value, ValueLike, starlark_value};

use super::string_arg;
use crate::state::{HostEnv, SharedEnv, TiltfileState, clean_path, lock_env};
use crate::values::text_of;

/// Registers the `os` and `sys` namespaces.
pub(crate) fn register(builder: &mut GlobalsBuilder, env: &SharedEnv) {
    let environ = Environ { env: env.clone() };
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
        let value = TiltfileState::from_eval(eval)?.env().vars.get(&key).cloned();
        Ok(match value {
            Some(v) => eval.heap().alloc(v),
            None => default.unwrap_or_else(Value::new_none),
        })
    }

    /// Sets the environment variable `key` for the rest of the Tiltfile, its `local()` commands and the
    /// commands of its resources.
    fn putenv<'v>(key: Value<'v>, value: Value<'v>, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<NoneType> {
        let key = env_key(key, "putenv")?;
        let value = text_of(value)
            .ok_or_else(|| anyhow::anyhow!("putenv() value must be a string, not {}", value.get_type()))?;
        TiltfileState::from_eval(eval)?.env().set(&key, value);
        Ok(NoneType)
    }

    /// Unsets the environment variable `key` for the rest of the Tiltfile, its `local()` commands and the
    /// commands of its resources.
    fn unsetenv<'v>(key: Value<'v>, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<NoneType> {
        let key = env_key(key, "unsetenv")?;
        TiltfileState::from_eval(eval)?.env().unset(&key);
        Ok(NoneType)
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

/// A variable name for `putenv()`/`unsetenv()`: a non-empty string without `=` or NUL.
fn env_key(key: Value<'_>, function: &str) -> anyhow::Result<String> {
    let key =
        text_of(key).ok_or_else(|| anyhow::anyhow!("{function}() key must be a string, not {}", key.get_type()))?;
    if key.is_empty() || key.contains(['=', '\0']) {
        anyhow::bail!("{function}() key {key:?} is not a valid environment variable name");
    }
    Ok(key.to_owned())
}

/// `os.environ`: a live, dict-like view of the evaluation's environment. `os.environ[k] = v` is `putenv`.
#[derive(ProvidesStaticType, NoSerialize, Allocative)]
struct Environ {
    #[allocative(skip)]
    env: SharedEnv,
}
starlark_simple_value!(Environ);

impl fmt::Debug for Environ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("environ")
    }
}

impl fmt::Display for Environ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env = lock_env(&self.env);
        let items: Vec<String> = env.vars.iter().map(|(k, v)| format!("{k:?}: {v:?}")).collect();
        write!(f, "{{{}}}", items.join(", "))
    }
}

impl Environ {
    fn lock(&self) -> std::sync::MutexGuard<'_, HostEnv> {
        lock_env(&self.env)
    }
}

starlark::methods_static!(ENVIRON_METHODS = environ_methods);

#[starlark_value(type = "environ")]
impl<'v> StarlarkValue<'v> for Environ {
    fn get_methods() -> Option<&'static Methods> {
        Some(ENVIRON_METHODS.methods())
    }

    fn to_bool(&self) -> bool {
        !self.lock().vars.is_empty()
    }

    fn length(&self) -> starlark::Result<i32> {
        Ok(self.lock().vars.len() as i32)
    }

    fn is_in(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(text_of(other).is_some_and(|k| self.lock().vars.contains_key(k)))
    }

    fn at(&self, index: Value<'v>, heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        let value = text_of(index).and_then(|k| self.lock().vars.get(k).cloned());
        match value {
            Some(v) => Ok(heap.alloc(v)),
            None => Err(starlark::Error::new_other(anyhow::anyhow!("key {index} not found in os.environ"))),
        }
    }

    fn set_at(&self, index: Value<'v>, new_value: Value<'v>) -> starlark::Result<()> {
        let key = env_key(index, "putenv").map_err(starlark::Error::new_other)?;
        let value = text_of(new_value).ok_or_else(|| {
            starlark::Error::new_other(anyhow::anyhow!("putenv() value must be a string, not {}", new_value.get_type()))
        })?;
        self.lock().set(&key, value);
        Ok(())
    }

    fn iterate_collect(&self, heap: Heap<'v>) -> starlark::Result<Vec<Value<'v>>> {
        Ok(self.lock().vars.keys().map(|k| heap.alloc(k.as_str())).collect())
    }
}

#[starlark_module]
fn environ_methods(builder: &mut MethodsBuilder) {
    /// The variable `key`, or `default` when it is unset.
    fn get<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] key: Value<'v>,
        #[starlark(require = pos)] default: Option<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let value = environ_of(this)?.lock().vars.get(text_of(key).unwrap_or_default()).cloned();
        Ok(match value {
            Some(v) => heap.alloc(v),
            None => default.unwrap_or_else(Value::new_none),
        })
    }

    /// The variable names, sorted.
    fn keys<'v>(this: Value<'v>) -> anyhow::Result<Vec<String>> {
        Ok(environ_of(this)?.lock().vars.keys().cloned().collect())
    }

    /// The values, in key order.
    fn values<'v>(this: Value<'v>) -> anyhow::Result<Vec<String>> {
        Ok(environ_of(this)?.lock().vars.values().cloned().collect())
    }

    /// `(name, value)` pairs, sorted by name.
    fn items<'v>(this: Value<'v>) -> anyhow::Result<Vec<(String, String)>> {
        Ok(environ_of(this)?.lock().vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    /// Unsets `key` and returns its value (or `default`; an error without one when it is unset).
    fn pop<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] key: Value<'v>,
        #[starlark(require = pos)] default: Option<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let key = env_key(key, "unsetenv")?;
        let old = environ_of(this)?.lock().unset(&key);
        match (old, default) {
            (Some(v), _) => Ok(heap.alloc(v)),
            (None, Some(d)) => Ok(d),
            (None, None) => anyhow::bail!("key {key:?} not found in os.environ"),
        }
    }
}

fn environ_of(value: Value<'_>) -> anyhow::Result<&Environ> {
    value.downcast_ref::<Environ>().ok_or_else(|| anyhow::anyhow!("expected os.environ, got {}", value.get_type()))
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
