//! Where a cluster's image registry is reachable from, following the local registry hosting spec (KEP 1755).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An image registry and its address from each network that uses it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistryHosting {
    /// `host:port` as seen from outside the cluster; where tools push.
    pub host: String,
    /// `host:port` as seen from pods; when empty, pods cannot reach the registry.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host_from_cluster_network: String,
    /// `host:port` as seen by the cluster's container runtime, for image fields of deployed objects;
    /// `host` when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host_from_container_runtime: String,
    /// URL of documentation on setting the registry up, shown when pushes fail.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub help: String,
    /// One image name shared by every built image, told apart by tag (common with Amazon ECR).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub single_name: String,
}
