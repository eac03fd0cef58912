//! LiveUpdate: copies changed files into running containers (and runs commands there) instead of
//! rebuilding the image.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which containers to update, from which file sources, and how.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "LiveUpdate",
    doc = "File syncs and commands applied to running containers instead of a rebuild.",
    plural = "liveupdates",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "liveupdate",
    status = "LiveUpdateStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct LiveUpdateSpec {
    /// Absolute local path that relative paths in this object are relative to; must not be empty.
    pub base_path: String,
    /// How to find the containers to update.
    pub selector: LiveUpdateSelector,
    /// Where file changes come from; at least one (usually one per image).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<LiveUpdateSource>,
    /// Relative paths whose change invalidates the container and forces a full rebuild.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_paths: Vec<String>,
    /// Local paths to copy into containers; a change outside all of them forces a full rebuild.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub syncs: Vec<LiveUpdateSync>,
    /// Commands to run in the container after syncing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub execs: Vec<LiveUpdateExec>,
    /// Whether to restart the container in place after syncs and execs (Docker and Docker Compose only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<LiveUpdateRestartStrategy>,
    /// When set, every file matched by `syncs` is copied when a container starts or restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_sync: Option<LiveUpdateInitialSync>,
}

/// A source of file changes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveUpdateSource {
    /// A FileWatch supplying the changes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file_watch: String,
    /// An ImageMap telling which changes are already in the image; without it every change is copied.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_map: String,
}

/// How to find containers; exactly one member is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveUpdateSelector {
    /// Containers in Kubernetes pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<LiveUpdateKubernetesSelector>,
    /// A Docker Compose service's container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_compose: Option<LiveUpdateDockerComposeSelector>,
}

/// Containers in Kubernetes pods; exactly one of `image`, `containerName`, `imageMapName` is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveUpdateKubernetesSelector {
    /// KubernetesDiscovery that finds the pods.
    pub discovery_name: String,
    /// KubernetesApply whose current deploy the pods must belong to (skipping stale pods); no filter
    /// when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub apply_name: String,
    /// Image of the containers to update; matches by name unless a tag is given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// Name of the container to update.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container_name: String,
    /// ImageMap whose image identifies the containers to update.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_map_name: String,
}

/// A Docker Compose service's container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveUpdateDockerComposeSelector {
    /// Name of the DockerComposeService object (usually the compose service name).
    pub service: String,
}

/// A local path copied into containers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveUpdateSync {
    /// Local path, relative to `basePath`. Required.
    pub local_path: String,
    /// Absolute destination in the container. Required.
    pub container_path: String,
}

/// A command run in the container after syncing.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveUpdateExec {
    /// Command-line arguments; at least one.
    #[serde(deserialize_with = "crate::gojson::null_as_default")]
    pub args: Vec<String>,
    /// Relative paths whose change runs this command; any change when empty.
    #[serde(default, deserialize_with = "crate::gojson::null_as_default")]
    pub trigger_paths: Vec<String>,
    /// Don't echo the command's output to the log.
    pub echo_off: bool,
}

/// Whether to restart containers in place after an update.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum LiveUpdateRestartStrategy {
    /// Never.
    #[serde(rename = "none")]
    None,
    /// Always; an error on runtimes that can't.
    #[serde(rename = "always")]
    Always,
}

/// Marker enabling a full sync on container start; has no fields.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct LiveUpdateInitialSync {}

/// The state of the updater.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveUpdateStatus {
    /// Containers the updater is attached to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<LiveUpdateContainerStatus>,
    /// Set while some container can't be updated: what is wrong and what is being done about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<LiveUpdateStateFailed>,
}

/// The updater's view of one container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveUpdateContainerStatus {
    /// Container name in the pod.
    pub container_name: String,
    /// Container ID, like `docker://<id>`.
    #[serde(rename = "containerID", default, skip_serializing_if = "String::is_empty")]
    pub container_id: String,
    /// Pod name.
    pub pod_name: String,
    /// Pod namespace.
    pub namespace: String,
    /// Time of the newest file change synced, as given in the FileEvent (not the time of the sync).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_file_time_synced: Option<MicroTime>,
    /// Errors from the most recent execs (e.g. a linter run), not necessarily an updater failure.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_exec_error: String,
    /// Set while known changes are being held back from this container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<LiveUpdateContainerStateWaiting>,
}

/// Why the updater is failing.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveUpdateStateFailed {
    /// One-word CamelCase reason.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When it started failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<MicroTime>,
}

/// Why changes are being held back from a container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveUpdateContainerStateWaiting {
    /// One-word CamelCase reason.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}
