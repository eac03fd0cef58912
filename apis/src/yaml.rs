//! YAML output of JSON values, safe under serde_json's `arbitrary_precision` feature.
//!
//! starlark (in the Tiltfile crate) turns that feature on for the whole binary; with it, a
//! `serde_json::Number` serializes through any non-JSON serializer (serde-saphyr) as a private one-entry map.
//! Every `Value` written as YAML goes through [`YamlValue`], which writes numbers as native YAML numbers.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// Serializes a `serde_json::Value` with numbers as native YAML numbers.
pub struct YamlValue<'a>(pub &'a Value);

impl Serialize for YamlValue<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    serializer.serialize_i64(i)
                } else if let Some(u) = n.as_u64() {
                    serializer.serialize_u64(u)
                } else {
                    serializer.serialize_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => serializer.serialize_str(s),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&YamlValue(item))?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut out = serializer.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    out.serialize_entry(k, &YamlValue(v))?;
                }
                out.end()
            }
        }
    }
}

/// Writes one value as a YAML document.
pub fn to_string(value: &Value) -> Result<String, serde_saphyr::ser::Error> {
    serde_saphyr::to_string(&YamlValue(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_native() {
        let out = to_string(&json!({"a": 1, "b": -2, "c": 1.5, "d": [true, null]})).unwrap();
        assert!(out.contains("a: 1\n") && out.contains("b: -2\n") && out.contains("c: 1.5\n"), "{out}");
        assert!(!out.contains("serde_json"), "{out}");
    }
}
