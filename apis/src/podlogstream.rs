//! PodLogStream: streams the logs of one pod's containers into tilt's log store.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which pod, containers and time range to stream.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "PodLogStream",
    doc = "A stream of one pod's container logs into tilt's log store.",
    plural = "podlogstreams",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "podlogstream",
    shortname = "pls",
    status = "PodLogStreamStatus",
    printcolumn(name = "Pod", type_ = "string", json_path = ".spec.pod")
)]
#[serde(rename_all = "camelCase")]
pub struct PodLogStreamSpec {
    /// Name of the pod to stream. Required.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod: String,
    /// Namespace of the pod; the kubecontext's default namespace when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Only show logs from this time on (never before the pod started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_time: Option<Time>,
    /// Containers to include; all when both this and `ignoreContainers` are empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only_containers: Vec<String>,
    /// Containers to exclude.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_containers: Vec<String>,
    /// Cluster the pod runs in; "default" when empty.
    #[serde(default)]
    pub cluster: String,
}

/// The state of the stream.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodLogStreamStatus {
    /// The containers being streamed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_statuses: Vec<ContainerLogStreamStatus>,
    /// A problem setting up the stream.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// The stream of one container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerLogStreamStatus {
    /// Container name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Whether logs are streaming.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub active: bool,
    /// Whether the container exited and its logs are complete.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terminated: bool,
    /// The last streaming error; empty while streaming or after a clean finish.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}
