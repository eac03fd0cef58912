//! KubernetesDiscovery: finds the pods that belong to deployed objects and reports their state.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, MicroTime, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Forward;

/// Which objects' pods to discover, and what to attach to them.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "KubernetesDiscovery",
    doc = "Discovery of the pods that belong to deployed Kubernetes objects.",
    plural = "kubernetesdiscoveries",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "kubernetesdiscovery",
    shortname = "kd",
    shortname = "kdisco",
    status = "KubernetesDiscoveryStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesDiscoverySpec {
    /// Objects whose pods (the object itself, or anything it transitively owns) are reported.
    #[serde(deserialize_with = "crate::gojson::null_as_default")]
    pub watches: Vec<KubernetesWatchRef>,
    /// Label selectors for pods to report even without an owner reference to a watched object.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_selectors: Vec<LabelSelector>,
    /// Port forwards to set up to the best discovered pod (one at a time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_forward_template_spec: Option<PortForwardTemplateSpec>,
    /// Log streams to attach to every active pod; all logs when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_log_stream_template_spec: Option<PodLogStreamTemplateSpec>,
    /// Cluster to watch; "default" when empty.
    #[serde(default)]
    pub cluster: String,
}

/// A Kubernetes object whose pods are wanted.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesWatchRef {
    /// UID of the pod itself or of a transitive owner.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Namespace to discover in. Required.
    pub namespace: String,
    /// Object name; informational only.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// Port forwards to create for a discovered pod.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortForwardTemplateSpec {
    /// The forwards; at least one.
    #[serde(deserialize_with = "crate::gojson::null_as_default")]
    pub forwards: Vec<Forward>,
}

/// Log streams to create for each discovered pod.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodLogStreamTemplateSpec {
    /// Only show logs from this time on (never before the pod started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_time: Option<Time>,
    /// Containers to include; all when both this and `ignoreContainers` are empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only_containers: Vec<String>,
    /// Containers to exclude.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_containers: Vec<String>,
}

/// The discovered pods and the state of the monitor.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesDiscoveryStatus {
    /// When discovery started; unset until it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_start_time: Option<MicroTime>,
    /// Pods matching the spec.
    #[serde(deserialize_with = "crate::gojson::null_as_default")]
    pub pods: Vec<Pod>,
    /// Why the monitor has not started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<KubernetesDiscoveryStateWaiting>,
    /// The running monitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<KubernetesDiscoveryStateRunning>,
}

/// A monitor that has not started.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesDiscoveryStateWaiting {
    /// Why it has not started.
    pub reason: String,
}

/// A running monitor.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesDiscoveryStateRunning {
    /// When discovery began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<MicroTime>,
}

/// A condensed view of a discovered pod.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    /// The pod's UID.
    pub uid: String,
    /// The pod's name.
    pub name: String,
    /// The pod's namespace.
    pub namespace: String,
    /// When the pod was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Time>,
    /// The pod phase (a Kubernetes `PodPhase`).
    pub phase: String,
    /// Whether the pod is being deleted.
    pub deleting: bool,
    /// Pod conditions (as Kubernetes `PodCondition`s).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<PodCondition>,
    /// Containers run before the main ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
    /// The pod's containers.
    #[serde(deserialize_with = "crate::gojson::null_as_default")]
    pub containers: Vec<Container>,
    /// UID of the watched object this pod descends from; empty when matched by an extra selector.
    #[serde(rename = "ancestorUID", default, skip_serializing_if = "String::is_empty")]
    pub ancestor_uid: String,
    /// Hash of the pod template, used to tie pods to the build that produced them.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod_template_spec_hash: String,
    /// Short human-readable state, like the STATUS column of `kubectl get pods`.
    pub status: String,
    /// Error messages from the pod and its containers.
    #[serde(deserialize_with = "crate::gojson::null_as_default")]
    pub errors: Vec<String>,
    /// The pod's direct owner, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<PodOwner>,
}

/// The object that directly owns a pod.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodOwner {
    /// Owner name.
    pub name: String,
    /// Owner `apiVersion`.
    pub api_version: String,
    /// Owner `kind`.
    pub kind: String,
    /// When the owner was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<Time>,
}

/// One pod condition.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodCondition {
    /// Condition type (a Kubernetes `PodConditionType`).
    #[serde(rename = "type")]
    pub type_: String,
    /// True, False or Unknown.
    pub status: String,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// One-word CamelCase cause of the last change.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Human-readable detail about the last change.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// A condensed view of a container in a discovered pod.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// Container name from the pod spec.
    pub name: String,
    /// Container ID without the runtime prefix (e.g. `docker://`).
    pub id: String,
    /// Whether the container passes its readiness checks (or has none).
    pub ready: bool,
    /// Image the container runs.
    pub image: String,
    /// Restart count, including restarts from before tilt started.
    pub restarts: i32,
    /// Current state of the container.
    pub state: ContainerState,
    /// Ports declared in the pod spec.
    #[serde(deserialize_with = "crate::gojson::null_as_default")]
    pub ports: Vec<i32>,
}

/// The state of a container; at most one member is set (the others are written as `null`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    /// Set while the container is not yet running.
    #[serde(default)]
    pub waiting: Option<ContainerStateWaiting>,
    /// Set while the container runs.
    #[serde(default)]
    pub running: Option<ContainerStateRunning>,
    /// Set once the container has exited.
    #[serde(default)]
    pub terminated: Option<ContainerStateTerminated>,
}

/// A container that is not running yet.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStateWaiting {
    /// Brief reason it is not running.
    pub reason: String,
}

/// A running container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStateRunning {
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
}

/// A container that exited.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStateTerminated {
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When it stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// Brief reason it stopped.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Exit status; non-zero means failure.
    pub exit_code: i32,
}

impl Pod {
    /// Whether every container of the pod is ready.
    pub fn is_ready(&self) -> bool {
        !self.containers.is_empty() && self.containers.iter().all(|c| c.ready)
    }
}

/// The pod a port-forward goes to: running and not being deleted, ready ones
/// first, then the newest.
pub fn best_pod(pods: &[Pod]) -> Option<&Pod> {
    pods.iter()
        .filter(|p| !p.deleting && p.phase == "Running")
        .max_by_key(|p| (p.is_ready(), p.created_at.as_ref().map(|t| t.0)))
}

/// The pod a resource's status shows, as Go Tilt's does: the most recently created one not being deleted. During a
/// rollout that is the new pod, so a new pod that crashes is an error even while an older one still serves.
pub fn newest_pod(pods: &[Pod]) -> Option<&Pod> {
    pods.iter().filter(|p| !p.deleting).max_by_key(|p| (p.created_at.as_ref().map(|t| t.0), p.name.as_str()))
}
