//! `ResourceKind`: what the server knows of one kind, generated from its Rust type and CRD, never by hand.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceColumnDefinition;
use kube::CustomResourceExt;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::error::Cause;

/// The result of checking a body against a kind's type.
pub struct Checked {
    /// The object, normalized (unknown fields pruned, as kube-apiserver prunes CRDs).
    pub object: Value,
    /// Paths of fields the type does not declare (`spec.foo`).
    pub unknown_fields: Vec<String>,
}

type CheckFn = fn(Value, bool) -> Result<Checked, Cause>;

/// One served kind: names, schema, printer columns and a typed validator.
pub struct ResourceKind {
    /// API group, e.g. `tilt.dev`.
    pub group: String,
    /// API version, e.g. `v1alpha1`.
    pub version: String,
    /// Kind, e.g. `Cmd`.
    pub kind: String,
    /// List kind, e.g. `CmdList`.
    pub list_kind: String,
    /// Plural resource name used in paths, e.g. `cmds`.
    pub plural: String,
    /// Singular name, e.g. `cmd`.
    pub singular: String,
    /// Short names, e.g. `fw`.
    pub short_names: Vec<String>,
    /// Categories (`kubectl get all`-style groupings).
    pub categories: Vec<String>,
    /// Whether the kind has a `/status` subresource.
    pub has_status: bool,
    /// The structural OpenAPI v3 schema of the whole object.
    pub schema: Value,
    /// Extra columns for Table output.
    pub printer_columns: Vec<CustomResourceColumnDefinition>,
    check: CheckFn,
}

impl ResourceKind {
    /// Describes `K`, from the CRD that kube-derive generates for it.
    pub fn of<K>() -> Self
    where
        K: CustomResourceExt + DeserializeOwned + Serialize,
    {
        let crd = K::crd();
        let names = crd.spec.names;
        let version = crd.spec.versions.into_iter().next().expect("a CRD has one version");
        let schema = version
            .schema
            .and_then(|s| s.open_api_v3_schema)
            .map(|s| serde_json::to_value(s).expect("schemas serialize"))
            .unwrap_or_else(|| serde_json::json!({"type": "object"}));
        ResourceKind {
            group: crd.spec.group,
            version: version.name,
            list_kind: names.list_kind.unwrap_or_else(|| format!("{}List", names.kind)),
            kind: names.kind,
            singular: names.singular.unwrap_or_default(),
            plural: names.plural,
            short_names: names.short_names.unwrap_or_default(),
            categories: names.categories.unwrap_or_default(),
            has_status: version.subresources.and_then(|s| s.status).is_some(),
            schema,
            printer_columns: version.additional_printer_columns.unwrap_or_default(),
            check: check_typed::<K>,
        }
    }

    /// `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// Checks an object against the kind's Rust type and returns it normalized.
    pub fn check(&self, object: Value) -> Result<Checked, Cause> {
        let has_spec = self.schema["properties"].get("spec").is_some();
        (self.check)(object, has_spec)
    }
}

/// Deserializes into `K` (collecting the path of any mismatch and of unknown fields) and serializes back.
fn check_typed<K: DeserializeOwned + Serialize>(mut object: Value, has_spec: bool) -> Result<Checked, Cause> {
    if let Some(map) = object.as_object_mut().filter(|_| has_spec) {
        // A missing spec is an empty one, as for any CRD.
        map.entry("spec").or_insert_with(|| Value::Object(Default::default()));
    }
    let mut unknown_fields = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let typed: K = {
        let de = serde_path_to_error::Deserializer::new(object, &mut track);
        serde_ignored::deserialize(de, |path| {
            let path = path.to_string();
            if path != "apiVersion" && path != "kind" {
                unknown_fields.push(path);
            }
        })
    }
    .map_err(|err: serde_json::Error| {
        let path = track.path().to_string();
        let message = err.to_string();
        let (reason, message) = if message.starts_with("missing field") {
            ("FieldValueRequired", message)
        } else {
            ("FieldValueInvalid", format!("Invalid value: {message}"))
        };
        Cause { reason, message, field: if path == "." { String::new() } else { path } }
    })?;
    let object = serde_json::to_value(&typed).map_err(|err| Cause {
        reason: "FieldValueInvalid",
        message: err.to_string(),
        field: String::new(),
    })?;
    Ok(Checked { object, unknown_fields })
}

/// All served kinds, looked up by plural, singular, short name or kind.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: Vec<Arc<ResourceKind>>,
    by_plural: HashMap<String, Arc<ResourceKind>>,
}

impl Registry {
    /// A registry holding every tilt.dev/v1alpha1 kind.
    pub fn tilt() -> Self {
        let mut r = Registry::default();
        macro_rules! add {
            ($t:ty) => {
                r.add(ResourceKind::of::<$t>());
            };
        }
        tilt_apis::for_each_kind!(add);
        r
    }

    /// Adds a kind.
    pub fn add(&mut self, kind: ResourceKind) {
        let kind = Arc::new(kind);
        self.by_plural.insert(kind.plural.clone(), kind.clone());
        self.kinds.push(kind);
    }

    /// The kind served at `/apis/{group}/{version}/{plural}`.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&Arc<ResourceKind>> {
        self.by_plural.get(plural).filter(|k| k.group == group && k.version == version)
    }

    /// Every kind, in registration order.
    pub fn kinds(&self) -> &[Arc<ResourceKind>] {
        &self.kinds
    }

    /// Distinct `(group, version)` pairs, in registration order.
    pub fn group_versions(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for k in &self.kinds {
            if !out.iter().any(|(g, v)| g == &k.group && v == &k.version) {
                out.push((k.group.clone(), k.version.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cmd_kind_names() {
        let k = ResourceKind::of::<tilt_apis::Cmd>();
        assert_eq!((k.plural.as_str(), k.kind.as_str(), k.list_kind.as_str()), ("cmds", "Cmd", "CmdList"));
        assert!(k.has_status);
        assert_eq!(k.schema["properties"]["spec"]["properties"]["args"]["type"], "array");
    }

    #[test]
    fn check_reports_field_path_and_unknown_fields() {
        let k = ResourceKind::of::<tilt_apis::Cmd>();
        let err = k
            .check(json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "Cmd", "metadata": {"name": "a"}, "spec": {"args": "ls"}}))
            .err()
            .unwrap();
        assert_eq!(err.field, "spec.args");
        let ok = k
            .check(json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "Cmd", "metadata": {"name": "a"}, "spec": {"args": ["ls"], "bogus": 1}}))
            .unwrap();
        assert_eq!(ok.unknown_fields, vec!["spec.bogus".to_string()]);
        assert_eq!(ok.object["spec"], json!({"args": ["ls"]}));
    }

    #[test]
    fn kinds_without_spec_get_none() {
        let k = ResourceKind::of::<tilt_apis::ConfigMap>();
        let ok = k.check(json!({"metadata": {"name": "a"}, "data": {"x": "1"}})).unwrap();
        assert!(ok.unknown_fields.is_empty());
        assert!(ok.object.get("spec").is_none());
    }

    #[test]
    fn missing_spec_is_empty() {
        let k = ResourceKind::of::<tilt_apis::Cmd>();
        let ok = k.check(json!({"metadata": {"name": "a"}})).unwrap();
        assert_eq!(ok.object["spec"], json!({}));
        assert_eq!(ok.object["kind"], "Cmd");
    }
}
