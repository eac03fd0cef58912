//! Cluster: a connection to a Kubernetes cluster or Docker daemon that other objects deploy to.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::RegistryHosting;

/// The name of the cluster used when an object names none.
pub const CLUSTER_NAME_DEFAULT: &str = "default";

/// How to connect, and where images go.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "Cluster",
    doc = "A connection to a Kubernetes cluster or Docker daemon.",
    plural = "clusters",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "cluster",
    status = "ClusterStatus",
    printcolumn(name = "Arch", type_ = "string", json_path = ".status.arch"),
    printcolumn(name = "Error", type_ = "string", json_path = ".status.error", priority = 1)
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterSpec {
    /// How to reach an existing cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ClusterConnection>,
    /// Registry for images when the cluster advertises none; without either, image names are left alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_registry: Option<RegistryHosting>,
}

/// A connection to one kind of cluster; exactly one member is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterConnection {
    /// A Kubernetes cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesClusterConnection>,
    /// A Docker daemon.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerClusterConnection>,
}

/// How to reach a Kubernetes cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesClusterConnection {
    /// Kubeconfig context; the current context when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context: String,
    /// Default namespace; the kubeconfig's when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// How to reach a Docker daemon.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerClusterConnection {
    /// Docker host; `DOCKER_HOST` or Docker's default when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
}

/// What is known about the connected cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// A CPU architecture the cluster runs (node `kubernetes.io/arch`, or the Docker daemon's).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub arch: String,
    /// An unrecoverable connection error.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// When the connection was made; a change tells clients to reconnect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_at: Option<MicroTime>,
    /// The local registry the cluster advertises.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistryHosting>,
    /// Resolved connection details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ClusterConnectionStatus>,
    /// Human-readable version reported by the cluster.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
}

/// Resolved connection details, by kind of cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterConnectionStatus {
    /// Details of a Kubernetes connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesClusterConnectionStatus>,
}

/// Resolved details of a Kubernetes connection.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesClusterConnectionStatus {
    /// The kubeconfig context in use.
    pub context: String,
    /// The default namespace in use.
    pub namespace: String,
    /// The cluster name from the kubeconfig context.
    pub cluster: String,
    /// The product (e.g. kind, minikube, docker-desktop), as named by `github.com/tilt-dev/clusterid`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub product: String,
    /// Path of the frozen kubeconfig tilt wrote; subprocesses get it as `KUBECONFIG`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub config_path: String,
}

/// Whether the cluster needs a built image.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ClusterImageNeeds {
    /// Push the image to the cluster's registry so the cluster can run it.
    #[serde(rename = "push")]
    Push,
    /// Only a base for other images; no push needed.
    #[serde(rename = "base-image")]
    BaseImage,
}
