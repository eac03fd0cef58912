//! `ResourceKind`: what the server knows of one kind, generated from its Rust type (and CRD, or k8s-openapi
//! schema for built-in Kubernetes kinds), never by hand.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::schemars::{self, JsonSchema};
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
    /// Whether objects live in a namespace (`/namespaces/{ns}/{plural}`); false for every tilt.dev kind.
    pub namespaced: bool,
    /// The OpenAPI v3 schema of the whole object; for built-in kinds it refers (`$ref`) to `definitions`.
    pub schema: Value,
    /// Extra columns for Table output.
    pub printer_columns: Vec<CustomResourceColumnDefinition>,
    /// The OpenAPI definition name, e.g. `dev.tilt.v1alpha1.Cmd` or `io.k8s.api.core.v1.Pod`.
    definition_name: String,
    /// Schemas `schema` refers to, by definition name (`#/components/schemas/{name}`).
    definitions: serde_json::Map<String, Value>,
    /// Whether a missing `spec` is an empty one (CRDs) rather than absent (built-in kinds, e.g. ConfigMap).
    default_spec: bool,
    /// Served for get, list and watch only (see [`ResourceKind::read_only`]).
    read_only: bool,
    check: CheckFn,
}

/// A Table column: name, type and JSONPath.
type Column = (&'static str, &'static str, &'static str);

/// Short names, categories and Table columns kube-apiserver gives the common built-in kinds.
fn native_names(kind: &str) -> (&'static [&'static str], &'static [&'static str], Vec<Column>) {
    const ALL: &[&str] = &["all"];
    match kind {
        "Pod" => (&["po"], ALL, vec![("Status", "string", ".status.phase"), ("IP", "string", ".status.podIP")]),
        "Service" => {
            (&["svc"], ALL, vec![("Type", "string", ".spec.type"), ("Cluster-IP", "string", ".spec.clusterIP")])
        }
        "Deployment" => (
            &["deploy"],
            ALL,
            vec![
                ("Ready", "integer", ".status.readyReplicas"),
                ("Up-to-date", "integer", ".status.updatedReplicas"),
                ("Available", "integer", ".status.availableReplicas"),
            ],
        ),
        "ReplicaSet" => (
            &["rs"],
            ALL,
            vec![
                ("Desired", "integer", ".spec.replicas"),
                ("Current", "integer", ".status.replicas"),
                ("Ready", "integer", ".status.readyReplicas"),
            ],
        ),
        "StatefulSet" => (&["sts"], ALL, vec![("Ready", "integer", ".status.readyReplicas")]),
        "DaemonSet" => (&["ds"], ALL, vec![("Ready", "integer", ".status.numberReady")]),
        "Job" => (&[], ALL, vec![("Succeeded", "integer", ".status.succeeded")]),
        "CronJob" => (&["cj"], ALL, vec![("Schedule", "string", ".spec.schedule")]),
        "Namespace" => (&["ns"], &[], vec![("Status", "string", ".status.phase")]),
        "ConfigMap" => (&["cm"], &[], vec![]),
        "ServiceAccount" => (&["sa"], &[], vec![]),
        "PersistentVolumeClaim" => (&["pvc"], &[], vec![("Status", "string", ".status.phase")]),
        "PersistentVolume" => (&["pv"], &[], vec![("Status", "string", ".status.phase")]),
        "Endpoints" => (&["ep"], &[], vec![]),
        "Event" => (&["ev"], &[], vec![("Reason", "string", ".reason"), ("Message", "string", ".message")]),
        "Node" => (&["no"], &[], vec![]),
        "Ingress" => (&["ing"], &[], vec![]),
        "Secret" => (&[], &[], vec![("Type", "string", ".type")]),
        _ => (&[], &[], vec![]),
    }
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
        // kube-openapi's definition name: the reversed group, then version and kind.
        let definition_name = format!(
            "{}.{}.{}",
            crd.spec.group.split('.').rev().collect::<Vec<_>>().join("."),
            version.name,
            names.kind
        );
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
            namespaced: crd.spec.scope == "Namespaced",
            schema,
            printer_columns: version.additional_printer_columns.unwrap_or_default(),
            definition_name,
            definitions: serde_json::Map::new(),
            default_spec: true,
            read_only: false,
            check: check_typed::<K>,
        }
    }

    /// Describes a built-in Kubernetes kind from its k8s-openapi type (e.g. `Pod`, `Deployment`): names and
    /// scope from [`k8s_openapi::Resource`], the schema from k8s-openapi's, kube-apiserver's short names.
    pub fn native<K>() -> Self
    where
        K: k8s_openapi::Resource + k8s_openapi::Metadata<Ty = ObjectMeta> + JsonSchema + Serialize + DeserializeOwned,
    {
        let mut generator =
            schemars::generate::SchemaSettings::openapi3().with(|s| s.meta_schema = None).into_generator();
        let reference = generator.subschema_for::<K>();
        let mut definitions = generator.take_definitions(true);
        let definition_name = K::schema_name().into_owned();
        let schema = definitions.remove(&definition_name).unwrap_or_else(|| reference.to_value());
        let has_status = schema["properties"].get("status").is_some();
        // The scope is a marker type; its name is the only thing a generic caller can compare without `'static`.
        let namespaced =
            std::any::type_name::<K::Scope>() == std::any::type_name::<k8s_openapi::NamespaceResourceScope>();
        let (short_names, categories, columns) = native_names(K::KIND);
        ResourceKind {
            group: K::GROUP.to_string(),
            version: K::VERSION.to_string(),
            kind: K::KIND.to_string(),
            list_kind: format!("{}List", K::KIND),
            plural: K::URL_PATH_SEGMENT.to_string(),
            singular: K::KIND.to_ascii_lowercase(),
            short_names: short_names.iter().map(|s| s.to_string()).collect(),
            categories: categories.iter().map(|s| s.to_string()).collect(),
            has_status,
            namespaced,
            schema,
            // As every tilt.dev kind's CRD has it first.
            printer_columns: std::iter::once(("Created At", "string", ".metadata.creationTimestamp"))
                .chain(columns)
                .map(|(name, type_, path)| CustomResourceColumnDefinition {
                    name: name.to_string(),
                    type_: type_.to_string(),
                    json_path: path.to_string(),
                    ..Default::default()
                })
                .collect(),
            definition_name,
            definitions,
            default_spec: false,
            read_only: false,
            check: check_typed::<K>,
        }
    }

    /// The kind served for get, list and watch only: the server holds its objects (see [`Registry::seed`])
    /// and answers every write with 405 MethodNotAllowed, and discovery and OpenAPI advertise only the
    /// read verbs. For kinds whose objects describe the server itself (its CRDs, its one namespace).
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Whether the kind is served for reads only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The OpenAPI definition name of the kind's schema.
    pub fn definition_name(&self) -> &str {
        &self.definition_name
    }

    /// The schemas [`ResourceKind::schema`] refers to, by definition name.
    pub fn definitions(&self) -> &serde_json::Map<String, Value> {
        &self.definitions
    }

    /// `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// Checks an object against the kind's Rust type and returns it normalized.
    pub fn check(&self, object: Value) -> Result<Checked, Cause> {
        let default_spec = self.default_spec && self.schema["properties"].get("spec").is_some();
        type_error(&self.schema, &object, &mut String::new()).map_or(Ok(()), Err)?;
        (self.check)(object, default_spec)
    }
}

/// The first value of `v` whose JSON type is not the one `schema` declares, as kube-apiserver reports it for a
/// custom resource: `spec.args: Invalid value: "string": spec.args in body must be of type array: "string"`.
/// Nulls are left to the type check (kube-apiserver drops them), and so are fields the schema does not declare.
fn type_error(schema: &Value, v: &Value, path: &mut String) -> Option<Cause> {
    let actual = match v {
        Value::Null => return None,
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let int_or_string = schema["x-kubernetes-int-or-string"] == true;
    if let Some(want) = schema["type"].as_str().filter(|_| !path.is_empty() && !int_or_string)
        && want != actual
        && !(want == "number" && actual == "integer")
    {
        return Some(Cause {
            reason: "FieldValueTypeInvalid",
            message: format!("Invalid value: {actual:?}: {path} in body must be of type {want}: {actual:?}"),
            field: path.clone(),
        });
    }
    let mut child = |key: &str, sub: &Value, item: &Value| {
        let len = path.len();
        if !path.is_empty() && !key.starts_with('[') {
            path.push('.');
        }
        path.push_str(key);
        let found = type_error(sub, item, path);
        path.truncate(len);
        found
    };
    match v {
        Value::Object(map) => map.iter().find_map(|(k, item)| {
            let declared = schema["properties"].get(k);
            child(k, declared.or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))?, item)
        }),
        Value::Array(items) => {
            let sub = schema.get("items")?;
            items.iter().enumerate().find_map(|(i, item)| child(&format!("[{i}]"), sub, item))
        }
        _ => None,
    }
}

/// `spec.containers.0.bogus`: the map keys and list indexes of `path`, without the `?` that serde_ignored's
/// `Display` writes for each `Option` on the way.
fn field_path(path: &serde_ignored::Path) -> String {
    use serde_ignored::Path;
    let join = |parent: &Path, leaf: &str| match field_path(parent) {
        p if p.is_empty() => leaf.to_string(),
        p => format!("{p}.{leaf}"),
    };
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => join(parent, &index.to_string()),
        Path::Map { parent, key } => join(parent, key),
        Path::Some { parent } | Path::NewtypeStruct { parent } | Path::NewtypeVariant { parent } => field_path(parent),
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
            let path = field_path(&path);
            if path != "apiVersion" && path != "kind" {
                unknown_fields.push(path);
            }
        })
    }
    .map_err(|err: serde_json::Error| {
        let path = track.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let message = err.to_string();
        // kube-apiserver names the missing field itself: `spec.selector: Required value`.
        match message.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
            Some(missing) => Cause {
                reason: "FieldValueRequired",
                message: "Required value".into(),
                field: if path.is_empty() { missing.to_string() } else { format!("{path}.{missing}") },
            },
            None => Cause { reason: "FieldValueInvalid", message: format!("Invalid value: {message}"), field: path },
        }
    })?;
    let object = serde_json::to_value(&typed).map_err(|err| Cause {
        reason: "FieldValueInvalid",
        message: err.to_string(),
        field: String::new(),
    })?;
    Ok(Checked { object, unknown_fields })
}

/// All served kinds, looked up by group and plural, and the objects the server holds from its start.
#[derive(Clone, Default)]
pub struct Registry {
    kinds: Vec<Arc<ResourceKind>>,
    /// Keyed by `(group, plural)`: `configmaps` of the core group and of tilt.dev are different kinds.
    by_plural: HashMap<(String, String), Arc<ResourceKind>>,
    /// Objects stored when the server starts, each with its kind, already checked against it.
    seeds: Vec<(Arc<ResourceKind>, Value)>,
}

/// `crd` as kube-apiserver reports a CRD it serves: names accepted, established, its storage version stored.
fn established_crd(crd: CustomResourceDefinition, now: &str) -> Value {
    let mut object = serde_json::to_value(&crd).expect("CRDs serialize");
    let stored: Vec<&str> = crd.spec.versions.iter().filter(|v| v.storage).map(|v| v.name.as_str()).collect();
    let condition = |type_: &str, reason: &str, message: &str| serde_json::json!({"type": type_, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message});
    object["status"] = serde_json::json!({
        "acceptedNames": crd.spec.names,
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "storedVersions": stored,
    });
    object
}

impl Registry {
    /// The registry of `tilt up`'s server: every tilt.dev/v1alpha1 kind, plus what every kube-apiserver
    /// serves and clients wait for before they watch anything (kopf does): the CustomResourceDefinitions of
    /// the tilt.dev kinds (`apiextensions.k8s.io/v1`) and the Namespace `default` (`v1`), both read-only
    /// since a CRD written here would not make a kind appear and no tilt.dev kind is namespaced.
    pub fn tilt() -> Self {
        let mut r = Registry::default();
        macro_rules! add {
            ($t:ty) => {
                r.add(ResourceKind::of::<$t>());
            };
        }
        tilt_apis::for_each_kind!(add);
        r.add(ResourceKind::native::<Namespace>().read_only());
        r.add(ResourceKind::native::<CustomResourceDefinition>().read_only());
        let default_namespace = serde_json::json!({
            "metadata": {"name": "default"},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        });
        r.seed("", "namespaces", default_namespace);
        let now =
            jiff::Timestamp::now().round(jiff::Unit::Second).unwrap_or_else(|_| jiff::Timestamp::now()).to_string();
        for crd in tilt_apis::crds() {
            r.seed("apiextensions.k8s.io", "customresourcedefinitions", established_crd(crd, &now));
        }
        r
    }

    /// Holds `object` (of the kind served as `group`/`plural`) from the server's start, normalized by the
    /// kind's type; the server stamps uid, creationTimestamp and resourceVersion when it stores it.
    ///
    /// # Panics
    /// When the kind is not registered or `object` does not fit its type: seeds are the program's own
    /// constants, so either is a bug.
    pub fn seed(&mut self, group: &str, plural: &str, object: Value) {
        let kind = self
            .by_plural
            .get(&(group.to_string(), plural.to_string()))
            .unwrap_or_else(|| panic!("seeding an unregistered kind {plural}.{group}"))
            .clone();
        let checked =
            kind.check(object).unwrap_or_else(|cause| panic!("a {} seed does not fit its type: {cause:?}", kind.kind));
        self.seeds.push((kind, checked.object));
    }

    /// The objects the server stores when it starts, with their kinds.
    pub fn seeds(&self) -> &[(Arc<ResourceKind>, Value)] {
        &self.seeds
    }

    /// Adds a kind.
    pub fn add(&mut self, kind: ResourceKind) {
        let kind = Arc::new(kind);
        if let Some(old) = self.by_plural.insert((kind.group.clone(), kind.plural.clone()), kind.clone()) {
            // A kind added again replaces the earlier one.
            self.kinds.retain(|k| !Arc::ptr_eq(k, &old));
        }
        self.kinds.push(kind);
    }

    /// The kind served at `/apis/{group}/{version}/{plural}` (`/api/v1/{plural}` for the core group `""`).
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<&Arc<ResourceKind>> {
        self.by_plural.get(&(group.to_string(), plural.to_string())).filter(|k| k.version == version)
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
    fn native_kinds_from_k8s_openapi() {
        use k8s_openapi::api::{
            apps::v1::Deployment,
            core::v1::{ConfigMap, Namespace, Pod},
        };
        let pod = ResourceKind::native::<Pod>();
        assert_eq!(
            (
                pod.group.as_str(),
                pod.version.as_str(),
                pod.plural.as_str(),
                pod.singular.as_str(),
                pod.list_kind.as_str()
            ),
            ("", "v1", "pods", "pod", "PodList")
        );
        assert!(pod.namespaced && pod.has_status);
        assert_eq!(pod.short_names, vec!["po".to_string()]);
        assert_eq!(pod.api_version(), "v1");
        assert_eq!(pod.definition_name(), "io.k8s.api.core.v1.Pod");
        // The schema refers to k8s-openapi's definitions, which come along.
        let spec_ref = pod.schema["properties"]["spec"].to_string();
        assert!(spec_ref.contains("#/components/schemas/io.k8s.api.core.v1.PodSpec"), "{spec_ref}");
        assert!(pod.definitions().contains_key("io.k8s.api.core.v1.Container"));
        let ns = ResourceKind::native::<Namespace>();
        assert!(!ns.namespaced && ns.has_status);
        let cm = ResourceKind::native::<ConfigMap>();
        assert!(cm.namespaced && !cm.has_status);
        let deploy = ResourceKind::native::<Deployment>();
        assert_eq!((deploy.group.as_str(), deploy.api_version().as_str()), ("apps", "apps/v1"));
        assert_eq!(deploy.short_names, vec!["deploy".to_string()]);
    }

    #[test]
    fn native_check_names_the_field_and_prunes_unknown_ones() {
        let pod = ResourceKind::native::<k8s_openapi::api::core::v1::Pod>();
        let err = pod
            .check(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": {"containers": "x"}}))
            .err()
            .unwrap();
        assert_eq!(err.field, "spec.containers");
        let ok = pod
            .check(
                json!({"metadata": {"name": "a"}, "spec": {"containers": [{"name": "c", "image": "i", "bogus": 1}]}}),
            )
            .unwrap();
        assert_eq!(ok.unknown_fields, vec!["spec.containers.0.bogus".to_string()]);
        assert_eq!(ok.object["spec"]["containers"][0], json!({"name": "c", "image": "i"}));
        // No spec is no spec for built-in kinds (a ConfigMap has none, a Pod's is optional in the type).
        let cm = ResourceKind::native::<k8s_openapi::api::core::v1::ConfigMap>();
        let ok = cm.check(json!({"metadata": {"name": "a"}, "data": {"k": "v"}})).unwrap();
        assert!(ok.object.get("spec").is_none() && ok.unknown_fields.is_empty());
    }

    #[test]
    fn registry_lookup_is_per_group() {
        let mut r = Registry::tilt();
        r.add(ResourceKind::native::<k8s_openapi::api::core::v1::ConfigMap>());
        assert_eq!(r.get("", "v1", "configmaps").unwrap().group, "");
        assert_eq!(r.get("tilt.dev", "v1alpha1", "configmaps").unwrap().group, "tilt.dev");
        assert!(r.get("", "v1alpha1", "configmaps").is_none());
    }

    #[test]
    fn missing_spec_is_empty() {
        let k = ResourceKind::of::<tilt_apis::Cmd>();
        let ok = k.check(json!({"metadata": {"name": "a"}})).unwrap();
        assert_eq!(ok.object["spec"], json!({}));
        assert_eq!(ok.object["kind"], "Cmd");
    }
}
