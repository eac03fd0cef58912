//! JSON and YAML: `read_json()`, `read_yaml()`, `read_yaml_stream()`, `decode_json()`, `encode_json()`,
//! `decode_yaml()`, `decode_yaml_stream()`, `encode_yaml()`, `encode_yaml_stream()`.

use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::{Heap, Value};

use super::files::{FileText, one_path, read_or_default};
use super::{sequence_items, string_arg};
use crate::state::TiltfileState;
use crate::values::Blob;
use crate::yaml;

/// Reads the file `paths`/`path` names and parses it as `format` with `parse`; `default` when it is missing.
fn read_parsed<'v>(
    eval: &mut Evaluator<'v, '_, '_>,
    paths: Option<Value<'v>>,
    path: Option<Value<'v>>,
    default: Option<Value<'v>>,
    format: &str,
    parse: impl FnOnce(&str) -> anyhow::Result<serde_json::Value>,
) -> anyhow::Result<Value<'v>> {
    let state = TiltfileState::from_eval(eval)?;
    let file = one_path(state, paths, path)?;
    match read_or_default(state, &file, default)? {
        FileText::Default(v) => Ok(v),
        FileText::Read(text) => {
            let value =
                parse(&text).map_err(|e| anyhow::anyhow!("error parsing {format} from {}: {e}", file.display()))?;
            Ok(eval.heap().alloc(value))
        }
    }
}

/// Registers this module's built-ins.
pub(crate) fn register(builder: &mut GlobalsBuilder) {
    encoding_builtins(builder);
}

#[starlark_module]
fn encoding_builtins(builder: &mut GlobalsBuilder) {
    /// Reads a JSON file into Starlark values; returns `default` when the file does not exist.
    fn read_json<'v>(
        paths: Option<Value<'v>>,
        default: Option<Value<'v>>,
        #[starlark(require = named)] path: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        read_parsed(eval, paths, path, default, "JSON", |text| Ok(serde_json::from_str(text)?))
    }

    /// Reads a single-document YAML file; returns `default` when the file does not exist.
    fn read_yaml<'v>(
        paths: Option<Value<'v>>,
        default: Option<Value<'v>>,
        #[starlark(require = named)] path: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        read_parsed(eval, paths, path, default, "YAML", yaml::parse_one)
    }

    /// Reads every document of a YAML file into a list; returns `default` when the file does not exist.
    fn read_yaml_stream<'v>(
        paths: Option<Value<'v>>,
        default: Option<Value<'v>>,
        #[starlark(require = named)] path: Option<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        read_parsed(eval, paths, path, default, "YAML", |text| Ok(serde_json::Value::Array(yaml::parse_stream(text)?)))
    }

    /// Parses a JSON string.
    fn decode_json<'v>(json: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        let text = string_arg(json, "json")?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("error parsing JSON: {e}"))?;
        Ok(heap.alloc(value))
    }

    /// Serializes a value as indented JSON.
    fn encode_json(obj: Value<'_>) -> anyhow::Result<String> {
        let value = to_json(obj)?;
        Ok(serde_json::to_string_pretty(&value)? + "\n")
    }

    /// Parses a single YAML document.
    fn decode_yaml<'v>(yaml: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        let text = string_arg(yaml, "yaml")?;
        let value = yaml::parse_one(&text).map_err(|e| anyhow::anyhow!("error parsing YAML: {e}"))?;
        Ok(heap.alloc(value))
    }

    /// Parses every document of a YAML stream into a list.
    fn decode_yaml_stream<'v>(yaml: Value<'v>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        let text = string_arg(yaml, "yaml")?;
        let docs = yaml::parse_stream(&text).map_err(|e| anyhow::anyhow!("error parsing YAML: {e}"))?;
        Ok(heap.alloc(serde_json::Value::Array(docs)))
    }

    /// Serializes a value as a YAML document (a blob, so `k8s_yaml(encode_yaml(obj))` works).
    fn encode_yaml(obj: Value<'_>) -> anyhow::Result<Blob> {
        Ok(Blob { text: yaml::to_yaml(&to_json(obj)?)? })
    }

    /// Serializes a list of values as a multi-document YAML stream (a blob).
    fn encode_yaml_stream(objs: Value<'_>) -> anyhow::Result<Blob> {
        let items =
            sequence_items(objs).ok_or_else(|| anyhow::anyhow!("objs must be a list, got {}", objs.get_type()))?;
        let docs = items.into_iter().map(to_json).collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Blob { text: yaml::to_yaml_stream(&docs)? })
    }
}

/// Converts a Starlark value (dicts, lists, strings, numbers, bools, `None`, structs, blobs) to JSON.
pub(crate) fn to_json(value: Value<'_>) -> anyhow::Result<serde_json::Value> {
    value.to_json_value().map_err(|e| anyhow::anyhow!("cannot convert {} to JSON/YAML: {e}", value.get_type()))
}
