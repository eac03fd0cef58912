//! KubernetesApply: YAML (or a command that prints YAML) deployed to a cluster, with images injected.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, MicroTime};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    DisableSource, DisableStatus, Duration, ObjectSelector, PodLogStreamTemplateSpec, PortForwardTemplateSpec,
    RestartOnSpec, StartOnSpec,
};

/// Condition type set when the applied object is a Job that has already run to completion, so no pod will
/// ever show up to watch.
pub const APPLY_CONDITION_JOB_COMPLETE: &str = "JobComplete";

/// What to deploy, and how to follow what was deployed. Exactly one of `yaml` and `applyCmd` is set.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "KubernetesApply",
    doc = "Kubernetes objects deployed to a cluster, with built images injected.",
    plural = "kubernetesapplys",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "kubernetesapply",
    shortname = "ka",
    shortname = "kapp",
    status = "KubernetesApplyStatus",
    printcolumn(name = "Last Apply", type_ = "date", json_path = ".status.lastApplyTime"),
    printcolumn(name = "Error", type_ = "string", json_path = ".status.error", priority = 1)
)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesApplySpec {
    /// The YAML to apply.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub yaml: String,
    /// ImageMaps whose images are injected into the YAML; a new image redeploys everything.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_maps: Vec<String>,
    /// Where image references live in objects (needed for CRDs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_locators: Vec<KubernetesImageLocator>,
    /// Limit on one apply (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// How to find the pods of the applied objects; by default, by following owner references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_discovery_template_spec: Option<KubernetesDiscoveryTemplateSpec>,
    /// Port forwards to set up (through a KubernetesDiscovery) to the best discovered pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_forward_template_spec: Option<PortForwardTemplateSpec>,
    /// Which pod logs to stream (through a KubernetesDiscovery); all of them when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_log_stream_template_spec: Option<PodLogStreamTemplateSpec>,
    /// How pods are discovered for everything that attaches to them (forwards, logs, readiness, live update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_strategy: Option<KubernetesDiscoveryStrategy>,
    /// Specifies how to disable this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_source: Option<DisableSource>,
    /// An idempotent command that deploys and prints the YAML of what it deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_cmd: Option<KubernetesApplyCmd>,
    /// Objects whose events trigger a re-apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_on: Option<RestartOnSpec>,
    /// What must happen before the first apply (`resource_deps` Ready, a click with `auto_init=False`).
    /// tilt-rs addition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_on: Option<StartOnSpec>,
    /// A command that deletes what `applyCmd` created and cleans up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_cmd: Option<KubernetesApplyCmd>,
    /// Cluster to deploy to; "default" when empty.
    #[serde(default)]
    pub cluster: String,
    /// Use kubectl's server-side apply instead of client-side apply.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub server_side_apply: bool,
}

/// Where an image reference sits inside matching objects.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesImageLocator {
    /// Which objects to look in.
    pub object_selector: ObjectSelector,
    /// JSON path to the image field: a string, or an object when `object` is set.
    pub path: String,
    /// Describes an image reference split into repository and tag fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<KubernetesImageObjectDescriptor>,
}

/// An image reference stored as an object with separate repository and tag fields.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesImageObjectDescriptor {
    /// Field holding the repository.
    pub repo_field: String,
    /// Field holding the tag.
    pub tag_field: String,
}

/// Extra pod discovery rules for a KubernetesApply.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesDiscoveryTemplateSpec {
    /// Label selectors for pods to follow even without an owner reference to an applied object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_selectors: Vec<LabelSelector>,
}

/// How pods of applied objects are found.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum KubernetesDiscoveryStrategy {
    /// Follow owner references from every pod, plus any extra selectors.
    #[serde(rename = "default")]
    Default,
    /// Use only label selectors, ignoring owner references.
    #[serde(rename = "selectors-only")]
    SelectorsOnly,
}

/// A command used to deploy or delete.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesApplyCmd {
    /// Command-line arguments; at least one.
    #[serde(deserialize_with = "crate::gojson::null_as_default")]
    pub args: Vec<String>,
    /// Working directory; tilt's when empty.
    #[serde(default)]
    pub dir: String,
    /// Extra `KEY=VALUE` environment variables over tilt's own.
    #[serde(default, deserialize_with = "crate::gojson::null_as_default")]
    pub env: Vec<String>,
}

/// The result of the last apply.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesApplyStatus {
    /// The applied objects as returned by the cluster (with UIDs); empty on error.
    #[serde(rename = "resultYAML", default, skip_serializing_if = "String::is_empty")]
    pub result_yaml: String,
    /// Why the last apply failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// When the last apply finished; not before `lastApplyStartTime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_apply_time: Option<MicroTime>,
    /// When the last apply started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_apply_start_time: Option<MicroTime>,
    /// Base64 hash of all apply inputs, so callers can tell whether their change was applied (some
    /// intermediate hashes may be skipped).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub applied_input_hash: String,
    /// Details about whether/why this is disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_status: Option<DisableStatus>,
    /// Conditions derived from the apply result (e.g. `JobComplete`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// What the next apply waits for (images, `resource_deps`, a trigger), while it waits. tilt-rs addition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<KubernetesApplyStateWaiting>,
}

/// An apply that cannot start yet. tilt-rs addition.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesApplyStateWaiting {
    /// Why it waits, for people (`waiting for the image build of app-image`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

impl KubernetesApplyStatus {
    /// The `kind` of each object recorded in `resultYAML` (nothing when it cannot be parsed).
    pub fn applied_kinds(&self) -> Vec<String> {
        if self.result_yaml.trim().is_empty() {
            return Vec::new();
        }
        serde_saphyr::from_multiple::<serde_json::Value>(&self.result_yaml)
            .unwrap_or_default()
            .iter()
            .filter_map(|o| o.get("kind")?.as_str().map(str::to_string))
            .collect()
    }
}
