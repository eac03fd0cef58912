//! DockerComposeLogStream: streams the logs of one Docker Compose service into tilt's log store.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::DockerComposeProject;

/// Which service to stream, and from when.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "DockerComposeLogStream",
    doc = "A stream of one Docker Compose service's logs into tilt's log store.",
    plural = "dockercomposelogstreams",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "dockercomposelogstream",
    shortname = "dclog",
    shortname = "dcls",
    status = "DockerComposeLogStreamStatus",
    printcolumn(name = "Service", type_ = "string", json_path = ".spec.service")
)]
#[serde(rename_all = "camelCase")]
pub struct DockerComposeLogStreamSpec {
    /// The compose service to stream.
    pub service: String,
    /// The project the service belongs to.
    pub project: DockerComposeProject,
    /// Only show logs from this time on (never before the container started).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_time: Option<Time>,
}

/// The state of the stream.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerComposeLogStreamStatus {
    /// When the streamer last started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<MicroTime>,
    /// Set while the streamer is failing.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}
