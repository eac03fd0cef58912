//! DockerComposeService: one service of a Docker Compose project, brought up by tilt.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{DisableSource, DisableStatus, DockerComposeProject, DockerContainerState, DockerPortBinding};

/// Which service of which project to run.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "DockerComposeService",
    doc = "One service of a Docker Compose project.",
    plural = "dockercomposeservices",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "dockercomposeservice",
    shortname = "dc",
    status = "DockerComposeServiceStatus",
    printcolumn(name = "Service", type_ = "string", json_path = ".spec.service"),
    printcolumn(name = "Container", type_ = "string", json_path = ".status.containerName", priority = 1)
)]
#[serde(rename_all = "camelCase")]
pub struct DockerComposeServiceSpec {
    /// The compose service to create.
    pub service: String,
    /// The project the service belongs to.
    pub project: DockerComposeProject,
    /// ImageMaps this service's deploy depends on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_maps: Vec<String>,
    /// Specifies how to disable this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_source: Option<DisableSource>,
}

/// The service's container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerComposeServiceStatus {
    /// Details about whether/why this is disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_status: Option<DisableStatus>,
    /// Container ports published on the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_bindings: Vec<DockerPortBinding>,
    /// Current state of the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_state: Option<DockerContainerState>,
    /// Current container ID.
    #[serde(rename = "containerID", default, skip_serializing_if = "String::is_empty")]
    pub container_id: String,
    /// Current container name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container_name: String,
    /// Why bringing the container up failed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub apply_error: String,
    /// When tilt last started bringing the service up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_apply_start_time: Option<MicroTime>,
    /// When tilt last finished bringing the service up; not before `lastApplyStartTime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_apply_finish_time: Option<MicroTime>,
}
