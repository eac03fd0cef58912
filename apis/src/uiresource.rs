//! UIResource: the web UI's and terminal view's summary of one Tiltfile resource (a build, deploy or local
//! command). Written by tilt; the spec is empty.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{DisableSource, RuntimeStatus, UpdateStatus};

/// Condition type: the resource is built, deployed and passing readiness checks.
pub const UI_RESOURCE_READY: &str = "Ready";
/// Condition type: every part of the resource is built and deployed (readiness may still be pending).
pub const UI_RESOURCE_UP_TO_DATE: &str = "UpToDate";

/// Nothing to configure: a UIResource only reports.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "UIResource",
    doc = "The UI's summary of one Tiltfile resource.",
    plural = "uiresources",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "uiresource",
    status = "UIResourceStatus",
    printcolumn(name = "Update", type_ = "string", json_path = ".status.updateStatus"),
    printcolumn(name = "Runtime", type_ = "string", json_path = ".status.runtimeStatus")
)]
pub struct UIResourceSpec {}

/// Everything the UI shows about a resource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIResourceStatus {
    /// When the resource was last deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_deploy_time: Option<MicroTime>,
    /// Bit mask of when the resource runs: bit 1 on file changes, bit 2 at startup.
    #[serde(default, skip_serializing_if = "crate::gojson::is_zero")]
    pub trigger_mode: i32,
    /// Past builds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_history: Vec<UIBuildTerminated>,
    /// The build in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_build: Option<UIBuildRunning>,
    /// When a build was queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_build_since: Option<MicroTime>,
    /// Whether the queued build was caused by file changes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub has_pending_changes: bool,
    /// Links shown with the resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoint_links: Vec<UIResourceLink>,
    /// Extra details for Kubernetes resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_resource_info: Option<UIResourceKubernetes>,
    /// Extra details for Docker Compose resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose_resource_info: Option<UIResourceCompose>,
    /// Extra details for local resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_resource_info: Option<UIResourceLocal>,
    /// Summary of the resource's server, if it runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_status: Option<RuntimeStatus>,
    /// Summary of the work (builds, live updates) that brings the resource up to date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_status: Option<UpdateStatus>,
    /// The targets this resource summarizes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub specs: Vec<UIResourceTargetSpec>,
    /// Whether an update is queued.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub queued: bool,
    /// Position among resources when not otherwise sorted (lower first, then by name); the Tiltfile's
    /// declaration order.
    #[serde(default, skip_serializing_if = "crate::gojson::is_zero")]
    pub order: i32,
    /// Whether the resource's objects are disabled.
    #[serde(default)]
    pub disable_status: DisableResourceStatus,
    /// Why an update is blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<UIResourceStateWaiting>,
    /// Standard conditions (`Ready`, `UpToDate`) for `tilt wait` and other tools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<UIResourceCondition>,
}

/// The disable state of all the objects behind a resource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisableResourceStatus {
    /// How many of the resource's sources are enabled.
    pub enabled_count: i32,
    /// How many of the resource's sources are disabled.
    pub disabled_count: i32,
    /// Pending (empty), Enabled, Disabled or Error.
    pub state: String,
    /// The distinct sources deciding whether the resource's objects are disabled.
    #[serde(deserialize_with = "crate::gojson::null_as_default")]
    pub sources: Vec<DisableSource>,
}

/// A link shown with a resource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIResourceLink {
    /// The URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// The label shown for it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// What kind of work a target does.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum UIResourceTargetType {
    /// Not specified.
    #[serde(rename = "unspecified")]
    Unspecified,
    /// A container image build.
    #[serde(rename = "image")]
    Image,
    /// A Kubernetes deploy.
    #[serde(rename = "k8s")]
    Kubernetes,
    /// A Docker Compose service.
    #[serde(rename = "docker-compose")]
    DockerCompose,
    /// A local command or server.
    #[serde(rename = "local")]
    Local,
}

/// One target summarized by a resource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIResourceTargetSpec {
    /// Target ID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Target type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<UIResourceTargetType>,
    /// Whether the target has a live update.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub has_live_update: bool,
}

/// A build in progress.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIBuildRunning {
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<MicroTime>,
    /// Log span holding its output.
    #[serde(rename = "spanID", default, skip_serializing_if = "String::is_empty")]
    pub span_id: String,
}

/// A finished build.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIBuildTerminated {
    /// Why it failed; empty on success.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Warnings (also printed in its log).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<MicroTime>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<MicroTime>,
    /// Log span holding its output.
    #[serde(rename = "spanID", default, skip_serializing_if = "String::is_empty")]
    pub span_id: String,
    /// Whether this was a full rebuild after a live-updated container crashed and lost its updates.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_crash_rebuild: bool,
}

/// Details of a Kubernetes resource's active pod (the one forwards and live updates use).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIResourceKubernetes {
    /// Pod name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod_name: String,
    /// When the pod was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_creation_time: Option<Time>,
    /// When the pod was last updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_update_start_time: Option<Time>,
    /// Pod status.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod_status: String,
    /// More detail on the pod status.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod_status_message: String,
    /// Whether every container is healthy and ready.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all_containers_ready: bool,
    /// Number of pod restarts.
    #[serde(default, skip_serializing_if = "crate::gojson::is_zero")]
    pub pod_restarts: i32,
    /// Log span holding the pod's logs.
    #[serde(rename = "spanID", default, skip_serializing_if = "String::is_empty")]
    pub span_id: String,
    /// Every object the resource deployed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub display_names: Vec<String>,
}

/// Details of a Docker Compose resource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIResourceCompose {
    /// Starting, Healthy or Unhealthy.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub health_status: String,
}

/// Details of a local resource.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIResourceLocal {
    /// PID of the running local command.
    #[serde(default, skip_serializing_if = "crate::gojson::is_zero")]
    pub pid: i64,
    /// Whether this is a test (deprecated: use labels).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_test: bool,
}

/// Why a resource's update is blocked.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIResourceStateWaiting {
    /// One-word reason (e.g. `waiting-for-local`).
    pub reason: String,
    /// Objects it is waiting on; not necessarily declared dependencies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on: Vec<UIResourceStateWaitingOnRef>,
}

/// An object a resource is waiting on.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIResourceStateWaitingOnRef {
    /// API group of the object.
    pub group: String,
    /// API version of the object.
    pub api_version: String,
    /// Kind of the object.
    pub kind: String,
    /// Name of the object.
    pub name: String,
}

/// One observation of a resource's state, in the Kubernetes condition style.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIResourceCondition {
    /// Condition type, e.g. [`UI_RESOURCE_READY`] or [`UI_RESOURCE_UP_TO_DATE`].
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<MicroTime>,
    /// Cause of the last change.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Human-readable detail about the last change.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}
