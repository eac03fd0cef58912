//! Tilt's built-in functions, one module per group, and the argument conversions they share.
//!
//! Every built-in has Go Tilt's name, parameters and defaults. Parameters are typed through
//! `#[starlark_module]`, so a misspelled or unknown keyword argument is an error at the call site. Built-ins
//! convert their arguments to plain Rust data at once and record it in the [`TiltfileState`].

pub(crate) mod config;
pub(crate) mod encoding;
pub(crate) mod files;
pub(crate) mod k8s;
pub(crate) mod local_resource;
pub(crate) mod misc;
pub(crate) mod os;
pub(crate) mod probe;
pub(crate) mod settings;
pub(crate) mod shlex;
pub(crate) mod templates;

use std::path::Path;

use starlark::environment::{Globals, GlobalsBuilder, LibraryExtension};
use starlark::values::dict::DictRef;
use starlark::values::list::ListRef;
use starlark::values::tuple::TupleRef;
use starlark::values::{Value, ValueLike};

use crate::state::{SharedEnv, TiltfileState};
use crate::values::{Blob, text_of};

/// The global environment of a Tiltfile whose main file is `main_path`.
pub(crate) fn globals(main_path: &Path, env: &SharedEnv) -> Globals {
    let main_path = main_path.to_path_buf();
    let mut builder = GlobalsBuilder::extended_by(&[
        LibraryExtension::StructType,
        LibraryExtension::Print,
        LibraryExtension::Json,
        LibraryExtension::SetType,
    ]);
    local_resource::register(&mut builder);
    probe::register(&mut builder);
    files::register(&mut builder);
    encoding::register(&mut builder);
    k8s::register(&mut builder);
    settings::register(&mut builder);
    templates::register(&mut builder);
    config::register(&mut builder, &main_path);
    os::register(&mut builder, env);
    shlex::register(&mut builder);
    misc::register(&mut builder);
    builder.build()
}

/// The elements of a list or tuple, or `None` for any other value.
pub(crate) fn sequence_items(value: Value<'_>) -> Option<Vec<Value<'_>>> {
    if let Some(list) = ListRef::from_value(value) {
        Some(list.content().to_vec())
    } else {
        TupleRef::from_value(value).map(|t| t.content().to_vec())
    }
}

/// A `str` (or `blob`) argument.
pub(crate) fn string_arg(value: Value<'_>, what: &str) -> anyhow::Result<String> {
    text_of(value)
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("{what} must be a string, got {} ({value})", value.get_type()))
}

/// A string or a list of strings; `None` (or absence) is the empty list.
pub(crate) fn string_list(value: Option<Value<'_>>, what: &str) -> anyhow::Result<Vec<String>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    if let Some(s) = text_of(value) {
        return Ok(vec![s.to_owned()]);
    }
    let items = sequence_items(value)
        .ok_or_else(|| anyhow::anyhow!("{what} must be a string or a list of strings, got {}", value.get_type()))?;
    items
        .into_iter()
        .map(|item| {
            text_of(item).map(str::to_owned).ok_or_else(|| {
                anyhow::anyhow!("{what} must be a list of strings, but contains {} ({item})", item.get_type())
            })
        })
        .collect()
}

/// A dict of strings to strings (numbers and bools are accepted as values and converted); `None` is empty.
/// Entries keep their insertion order.
pub(crate) fn string_map(value: Option<Value<'_>>, what: &str) -> anyhow::Result<Vec<(String, String)>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    let dict =
        DictRef::from_value(value).ok_or_else(|| anyhow::anyhow!("{what} must be a dict, got {}", value.get_type()))?;
    dict.iter()
        .map(|(k, v)| {
            let key =
                text_of(k).ok_or_else(|| anyhow::anyhow!("{what} keys must be strings, got {} ({k})", k.get_type()))?;
            let val = match text_of(v) {
                Some(s) => s.to_owned(),
                None if v.unpack_i32().is_some() || v.unpack_bool().is_some() => v.to_str(),
                None => anyhow::bail!("{what}[{key:?}] must be a string, got {} ({v})", v.get_type()),
            };
            Ok((key.to_owned(), val))
        })
        .collect()
}

/// A command given as a string (run with `sh -c`) or as an argv list; `None` means no command.
pub(crate) fn command_argv(value: Option<Value<'_>>, what: &str) -> anyhow::Result<Vec<String>> {
    let Some(value) = value.filter(|v| !v.is_none()) else {
        return Ok(Vec::new());
    };
    if let Some(script) = text_of(value) {
        if script.is_empty() {
            return Ok(Vec::new());
        }
        return Ok(vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()]);
    }
    if sequence_items(value).is_none() {
        anyhow::bail!("{what} must be a string or a list of strings, got {}", value.get_type());
    }
    string_list(Some(value), what)
}

/// How a command is shown to users: the script of `sh -c SCRIPT`, else the argv joined by spaces.
pub(crate) fn display_argv(argv: &[String]) -> String {
    match argv {
        [sh, c, script] if sh == "sh" && c == "-c" => script.clone(),
        _ => argv.join(" "),
    }
}

/// `KEY=VALUE` strings sorted by key, rejecting empty keys.
pub(crate) fn env_list(env: Vec<(String, String)>, what: &str) -> anyhow::Result<Vec<String>> {
    let mut env = env;
    if let Some((_, v)) = env.iter().find(|(k, _)| k.is_empty()) {
        anyhow::bail!("{what} has an empty key for value {v:?}");
    }
    env.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

/// Whether `value` is a `blob` (content) rather than a `str` (often a path).
pub(crate) fn is_blob(value: Value<'_>) -> bool {
    value.downcast_ref::<Blob>().is_some()
}

/// A path argument made absolute against the running file's directory.
pub(crate) fn path_arg(state: &TiltfileState, value: Value<'_>, what: &str) -> anyhow::Result<String> {
    let path = string_arg(value, what)?;
    Ok(state.abs_path(&path).to_string_lossy().into_owned())
}

/// Validates a resource name the way Go Tilt does: usable as an API object name (a path segment).
pub(crate) fn validate_resource_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty() {
        anyhow::bail!("resource name must not be empty");
    }
    if name == "." || name == ".." {
        anyhow::bail!("invalid value {name:?}: may not be '.' or '..'");
    }
    if name.contains('/') || name.contains('%') {
        anyhow::bail!("invalid value {name:?}: may not contain '/' or '%'");
    }
    Ok(())
}

/// Validates a resource label (`labels=`): a Kubernetes qualified name without `/`, usable as a label value.
pub(crate) fn validate_label(label: &str) -> anyhow::Result<()> {
    let ok_chars = label.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let ok_ends = label.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && label.chars().last().is_some_and(|c| c.is_ascii_alphanumeric());
    if label.contains('/') {
        anyhow::bail!("Invalid label {label:?}: cannot contain /");
    }
    if !ok_chars || !ok_ends || label.len() > 63 {
        anyhow::bail!(
            "Invalid label {label:?}: must be 63 characters or less, begin and end with an alphanumeric character \
             ([a-z0-9A-Z]) with dashes (-), underscores (_), dots (.), and alphanumerics between"
        );
    }
    Ok(())
}

/// The `labels=` argument: a label or a list of labels.
pub(crate) fn labels_arg(value: Option<Value<'_>>) -> anyhow::Result<Vec<String>> {
    let labels = string_list(value, "labels")?;
    for label in &labels {
        validate_label(label)?;
    }
    Ok(labels)
}
