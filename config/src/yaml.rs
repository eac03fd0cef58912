//! YAML reading and writing (serde-saphyr) over `serde_json::Value`.
//!
//! starlark enables serde_json's `arbitrary_precision` feature, under which a `serde_json::Number` serializes
//! through any non-JSON serializer as a private one-entry map. Every value written here therefore goes
//! through `tilt_apis::yaml::YamlValue`, which writes numbers as native integers or floats.

use serde_json::Value;
use tilt_apis::yaml::YamlValue;

/// Writes one value as a YAML document.
pub(crate) fn to_yaml(value: &Value) -> anyhow::Result<String> {
    Ok(serde_saphyr::to_string(&YamlValue(value))?)
}

/// Writes values as a multi-document YAML stream (`---` between documents).
pub(crate) fn to_yaml_stream(values: &[Value]) -> anyhow::Result<String> {
    let docs: Vec<YamlValue<'_>> = values.iter().map(YamlValue).collect();
    Ok(serde_saphyr::to_string_multiple(&docs)?)
}

/// Parses every document of a YAML stream; empty and `null` documents are skipped.
pub(crate) fn parse_stream(text: &str) -> anyhow::Result<Vec<Value>> {
    Ok(serde_saphyr::from_multiple::<Value>(text)?)
}

/// Parses a stream that must hold exactly one document (an empty stream is `null`).
pub(crate) fn parse_one(text: &str) -> anyhow::Result<Value> {
    let mut docs = parse_stream(text)?;
    match docs.len() {
        0 => Ok(Value::Null),
        1 => Ok(docs.remove(0)),
        n => anyhow::bail!("expected one YAML document, found {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_native() {
        let v = json!({"a": 1, "b": -2, "c": 1.5, "d": "x", "e": [true, null]});
        let out = to_yaml(&v).unwrap();
        assert!(out.contains("a: 1\n"), "{out}");
        assert!(out.contains("b: -2\n"), "{out}");
        assert!(out.contains("c: 1.5\n"), "{out}");
        assert!(!out.contains("serde_json"), "{out}");
        assert_eq!(parse_one(&out).unwrap(), v);
    }

    #[test]
    fn ambiguous_strings_are_quoted() {
        let v = json!({"a": "true", "b": "1", "c": "yes", "d": "on", "e": "null", "f": ""});
        let out = to_yaml(&v).unwrap();
        assert_eq!(parse_one(&out).unwrap(), v, "{out}");
        for word in ["yes", "on"] {
            assert!(!out.contains(&format!(": {word}\n")), "{word} must be quoted for YAML 1.1 readers: {out}");
        }
    }

    #[test]
    fn yaml_1_1_booleans_like_go_yaml_v2() {
        assert_eq!(parse_one("[y, yes, on, off, 'y']").unwrap(), json!([true, true, true, false, "y"]));
    }

    #[test]
    fn stream_round_trip_skips_empty_documents() {
        let docs = parse_stream("a: 1\n---\n---\nb: [x, z]\n").unwrap();
        assert_eq!(docs, vec![json!({"a": 1}), json!({"b": ["x", "z"]})]);
        let out = to_yaml_stream(&docs).unwrap();
        assert_eq!(parse_stream(&out).unwrap(), docs);
    }
}
