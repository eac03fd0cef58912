//! Types shared by DockerComposeService and DockerComposeLogStream: the Docker Compose project and the
//! state of a container.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Docker Compose project; each object using it keeps its own copy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerComposeProject {
    /// Compose files to load. When `yaml` is also set it is the source of truth and these are only for
    /// messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_paths: Vec<String>,
    /// Project directory (`--project-directory`); other files are relative to it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub project_path: String,
    /// The merged compose YAML (as from `docker compose -f a.yaml -f b.yaml config`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub yaml: String,
    /// Project name; derived from the project directory's name when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Env file passed as `--env-file`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub env_file: String,
    /// Compose profiles to enable; services with other profiles are left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// Pass `--wait` to `docker compose up`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub wait: bool,
}

/// The state of a Docker container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerContainerState {
    /// created, running, paused, restarting, removing, exited or dead.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// Whether it is running.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub running: bool,
    /// An error state, if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Exit code, once exited.
    #[serde(default, skip_serializing_if = "crate::gojson::is_zero")]
    pub exit_code: i32,
    /// When the process started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<MicroTime>,
    /// When the process finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<MicroTime>,
    /// Starting, Healthy or Unhealthy.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub health_status: String,
}

/// A container port published on the host.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerPortBinding {
    /// Port inside the container.
    #[serde(default, skip_serializing_if = "crate::gojson::is_zero")]
    pub container_port: i32,
    /// Port on the Docker host.
    #[serde(default, skip_serializing_if = "crate::gojson::is_zero")]
    pub host_port: i32,
    /// Host address Docker binds.
    #[serde(rename = "hostIP", default, skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
}
