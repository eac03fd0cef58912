//! `meta.k8s.io/v1 Table` output for `kubectl get`: NAME, then the kind's printer columns (for every tilt.dev
//! kind, `Created At` first), as kube-apiserver prints a custom resource with printer columns.

use jsonpath_rust::JsonPath;
use serde_json::{Value, json};

use crate::kind::ResourceKind;

/// The Name column's description: ObjectMeta's documentation of `name`, as kube-apiserver gives it.
const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some \
resources may allow a client to request the generation of an appropriate name automatically. Name is primarily \
intended for creation idempotence and configuration definition. Cannot be updated. More info: \
https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

/// The column definitions of a kind's tables; a column without a description gets kube-apiserver's.
pub(crate) fn column_definitions(kind: &ResourceKind) -> Vec<Value> {
    let mut cols =
        vec![json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DOC, "priority": 0})];
    for c in &kind.printer_columns {
        cols.push(json!({
            "name": c.name,
            "type": c.type_,
            "format": c.format.clone().unwrap_or_default(),
            "description": c.description.clone().unwrap_or_else(|| {
                format!("Custom resource definition column (in JSONPath format): {}", c.json_path)
            }),
            "priority": c.priority.unwrap_or(0),
        }));
    }
    cols
}

fn cell(object: &Value, json_path: &str, type_: &str) -> Value {
    let path = if json_path.starts_with('$') { json_path.to_string() } else { format!("${json_path}") };
    let found: Vec<&Value> = object.query(&path).unwrap_or_default();
    let value = match found.as_slice() {
        [] => return Value::Null,
        [one] => (*one).clone(),
        many => Value::Array(many.iter().map(|v| (*v).clone()).collect()),
    };
    match (type_, &value) {
        ("string", Value::String(_)) | ("integer" | "number", Value::Number(_)) | ("boolean", Value::Bool(_)) => value,
        (_, Value::String(_)) => value,
        _ => Value::String(value.to_string()),
    }
}

/// One table row.
pub(crate) fn row(kind: &ResourceKind, object: &Value, include_object: &str) -> Value {
    let mut cells = vec![object["metadata"]["name"].clone()];
    for c in &kind.printer_columns {
        cells.push(cell(object, &c.json_path, &c.type_));
    }
    let embedded = match include_object {
        "None" => Value::Null,
        "Object" => object.clone(),
        _ => super::objects::partial_metadata(object),
    };
    json!({"cells": cells, "object": embedded})
}

/// A whole table.
pub(crate) fn table<'v>(
    kind: &ResourceKind,
    objects: impl Iterator<Item = &'v Value>,
    list_meta: Value,
    include_object: &str,
) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": column_definitions(kind),
        "rows": objects.map(|o| row(kind, o, include_object)).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_have_one_cell_per_column() {
        let kind = ResourceKind::of::<tilt_apis::Cmd>();
        let obj = json!({"metadata": {"name": "a", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"args": ["ls", "-l"]}});
        let t = table(&kind, std::iter::once(&obj), json!({}), "Metadata");
        let ncols = t["columnDefinitions"].as_array().unwrap().len();
        assert_eq!(t["rows"][0]["cells"].as_array().unwrap().len(), ncols);
        assert_eq!(t["rows"][0]["cells"][0], "a");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }
}
