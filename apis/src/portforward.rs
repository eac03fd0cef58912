//! PortForward: forwarding of local ports to ports of one Kubernetes pod.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which pod to forward to, and which ports.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "PortForward",
    doc = "Local ports forwarded to ports of one Kubernetes pod.",
    plural = "portforwards",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "portforward",
    shortname = "pf",
    status = "PortForwardStatus",
    printcolumn(name = "Pod", type_ = "string", json_path = ".spec.podName"),
    printcolumn(name = "Namespace", type_ = "string", json_path = ".spec.namespace", priority = 1)
)]
#[serde(rename_all = "camelCase")]
pub struct PortForwardSpec {
    /// Name of the pod to forward to. Required.
    pub pod_name: String,
    /// Namespace of the pod; the kubecontext's default namespace when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The forwards to run against the pod; at least one.
    #[serde(deserialize_with = "crate::gojson::null_as_default")]
    pub forwards: Vec<Forward>,
    /// Cluster the pod runs in; the default cluster when empty.
    #[serde(default)]
    pub cluster: String,
}

/// One local port forwarded to one container port.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Forward {
    /// Port to listen on locally; 0 picks a free port, reported in status.
    #[serde(default, skip_serializing_if = "crate::gojson::is_zero")]
    pub local_port: i32,
    /// Port in the pod to connect to. Required.
    pub container_port: i32,
    /// Local address to bind; the web UI's bind host (usually localhost) when empty.
    #[serde(default)]
    pub host: String,
    /// A name for this forward.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Path appended to links generated for this forward.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
}

/// The state of each forward.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortForwardStatus {
    /// One entry per forward in the spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forward_statuses: Vec<ForwardStatus>,
}

/// The observed state of one forward.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForwardStatus {
    /// Local port actually bound.
    pub local_port: i32,
    /// Container port being forwarded to.
    pub container_port: i32,
    /// Addresses the forwarder listens on (e.g. `127.0.0.1` and `::1` for localhost).
    #[serde(deserialize_with = "crate::gojson::null_as_default")]
    pub addresses: Vec<String>,
    /// When the forward was set up; unset while it is not running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<MicroTime>,
    /// A human-readable problem setting up the forward.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}
