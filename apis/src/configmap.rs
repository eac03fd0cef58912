//! ConfigMap: tilt's own string key-value store (not Kubernetes' core/v1 ConfigMap), used for settings
//! such as which resources are disabled.
//!
//! Like Kubernetes' ConfigMap it keeps `data` at the top level, with no spec or status. `kube`'s
//! `CustomResource` derive always nests fields under `spec`, so the kube traits are implemented by hand
//! here, producing the same CRD the derive would.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec, CustomResourceDefinitionVersion, CustomResourceValidation,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::{ApiResource, ClusterResourceScope, CustomResourceExt, Resource};
use schemars::JsonSchema;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

/// A named set of string values, cluster-scoped in the `tilt.dev` group.
#[derive(Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMap {
    /// Standard object metadata. Left out of the schema, as the derive does: the API server checks it.
    #[schemars(skip)]
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The values. Keys consist of alphanumerics, `-`, `_` and `.`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
}

impl ConfigMap {
    const KIND: &'static str = "ConfigMap";
    const PLURAL: &'static str = "configmaps";
    const SINGULAR: &'static str = "configmap";
    const SHORT_NAMES: &'static [&'static str] = &["cm"];

    /// A ConfigMap called `name` holding `data`.
    pub fn new(name: &str, data: BTreeMap<String, String>) -> Self {
        Self { metadata: ObjectMeta { name: Some(name.to_string()), ..Default::default() }, data }
    }
}

impl Serialize for ConfigMap {
    /// Writes `apiVersion` and `kind` first, as the derived kinds do.
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut obj = ser.serialize_struct("ConfigMap", 3 + usize::from(!self.data.is_empty()))?;
        obj.serialize_field("apiVersion", crate::API_VERSION)?;
        obj.serialize_field("kind", Self::KIND)?;
        obj.serialize_field("metadata", &self.metadata)?;
        if !self.data.is_empty() {
            obj.serialize_field("data", &self.data)?;
        }
        obj.end()
    }
}

impl Resource for ConfigMap {
    type DynamicType = ();
    type Scope = ClusterResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Self::KIND.into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        crate::GROUP.into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        crate::VERSION.into()
    }

    fn api_version(_: &()) -> Cow<'_, str> {
        crate::API_VERSION.into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        Self::PLURAL.into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl CustomResourceExt for ConfigMap {
    fn crd() -> CustomResourceDefinition {
        // The same generator settings and transforms kube-derive uses, so the schema matches derived kinds.
        let generator = schemars::generate::SchemaSettings::openapi3()
            .with(|s| {
                s.inline_subschemas = true;
                s.meta_schema = None;
            })
            .with_transform(schemars::transform::AddNullable::default())
            .with_transform(kube::core::schema::StructuralSchemaRewriter)
            .with_transform(kube::core::schema::OptionalEnum)
            .with_transform(kube::core::schema::OptionalIntOrString)
            .into_generator();
        let schema = serde_json::to_value(generator.into_root_schema_for::<Self>())
            .and_then(serde_json::from_value)
            .expect("valid JSONSchemaProps from schemars schema");

        CustomResourceDefinition {
            metadata: ObjectMeta { name: Some(Self::crd_name().into()), ..Default::default() },
            spec: CustomResourceDefinitionSpec {
                group: crate::GROUP.into(),
                names: CustomResourceDefinitionNames {
                    kind: Self::KIND.into(),
                    plural: Self::PLURAL.into(),
                    singular: Some(Self::SINGULAR.into()),
                    short_names: Some(Self::SHORT_NAMES.iter().map(|s| s.to_string()).collect()),
                    categories: Some(vec!["tilt".into()]),
                    ..Default::default()
                },
                scope: "Cluster".into(),
                versions: vec![CustomResourceDefinitionVersion {
                    name: crate::VERSION.into(),
                    schema: Some(CustomResourceValidation { open_api_v3_schema: Some(schema) }),
                    served: true,
                    storage: true,
                    additional_printer_columns: Some(vec![CustomResourceColumnDefinition {
                        name: "Created At".into(),
                        type_: "string".into(),
                        json_path: ".metadata.creationTimestamp".into(),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn crd_name() -> &'static str {
        "configmaps.tilt.dev"
    }

    fn api_resource() -> ApiResource {
        ApiResource::erase::<Self>(&())
    }

    fn shortnames() -> &'static [&'static str] {
        Self::SHORT_NAMES
    }
}
