//! DockerImage: an image built with `docker build` from a Dockerfile and context.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ClusterImageNeeds, DisableSource, IgnoreDef, RestartOnSpec, StartOnSpec};

/// How to build the image; fields mirror `docker build` flags.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "DockerImage",
    doc = "An image built with docker build.",
    plural = "dockerimages",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "dockerimage",
    status = "DockerImageStatus",
    printcolumn(name = "Ref", type_ = "string", json_path = ".spec.ref"),
    printcolumn(name = "Image", type_ = "string", json_path = ".status.ref", priority = 1)
)]
#[serde(rename_all = "camelCase")]
pub struct DockerImageSpec {
    /// The image name (a named reference).
    #[serde(rename = "ref")]
    pub ref_: String,
    /// The full text of the Dockerfile.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dockerfile_contents: String,
    /// Build context: an absolute local path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub context: String,
    /// Filters on the build context; `.dockerignore` files are not read, so every filter is listed here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub context_ignores: Vec<IgnoreDef>,
    /// Build arguments, `KEY` or `KEY=VALUE` (`--build-arg`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Dockerfile stage to build (`--target`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// SSH agent sockets or keys to expose to the build (`--ssh`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ssh_agent_configs: Vec<String>,
    /// Secrets to expose to the build (`--secret`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Network mode for RUN instructions (`--network`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network: String,
    /// Always pull newer base images (`--pull`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pull: bool,
    /// Images to use as cache sources (`--cache-from`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<String>,
    /// Target platform (`--platform`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub platform: String,
    /// Extra tags besides the temporary one tilt generates (`--tag`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_tags: Vec<String>,
    /// ImageMaps this build depends on; a new image from one of them rebuilds this and is injected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_maps: Vec<String>,
    /// Cluster the image is for (decides architecture and registry); the default cluster when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// Whether the cluster needs the image; a push when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_needs: Option<ClusterImageNeeds>,
    /// Extra `/etc/hosts` entries for the build (`--add-host`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    /// The ImageMap whose status receives each successfully built image. tilt-rs addition: Go Tilt's
    /// build engine links images to ImageMaps outside the API.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_map: String,
    /// FileWatches (the build context) and UIButtons (the resource's trigger) whose newer events rebuild
    /// the image. tilt-rs addition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_on: Option<RestartOnSpec>,
    /// What the first build waits for: `resource_deps` UIResources to be Ready and, with
    /// `auto_init=False`, a click. tilt-rs addition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_on: Option<StartOnSpec>,
    /// ConfigMaps that disable the build (`tilt disable`). tilt-rs addition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_source: Option<DisableSource>,
}

/// The state of the most recent build.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerImageStatus {
    /// Full reference of the built image as seen from the local network (may differ from the spec's
    /// registry host).
    #[serde(rename = "ref", default, skip_serializing_if = "String::is_empty")]
    pub ref_: String,
    /// Set while the build waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<DockerImageStateWaiting>,
    /// Set while the build runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub building: Option<DockerImageStateBuilding>,
    /// Set once the build finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<DockerImageStateCompleted>,
    /// Per-stage results of the most recent build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stage_statuses: Vec<DockerImageStageStatus>,
    /// tilt-rs addition: a hash of what the last successful build was made from (the spec and the context's
    /// files: names, sizes, modification times). A controller that starts again, on a store that kept this
    /// object, does not rebuild while it still matches and the engine still has `ref`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub input_hash: String,
}

/// A build that has not started.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerImageStateWaiting {
    /// Brief reason for waiting.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// A build in progress.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerImageStateBuilding {
    /// Why the build runs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<MicroTime>,
}

/// A finished build.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerImageStateCompleted {
    /// Why the build ran.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Why it failed; empty on success.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<MicroTime>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<MicroTime>,
}

/// One stage of a build.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerImageStageStatus {
    /// Human-readable stage name.
    pub name: String,
    /// Whether BuildKit reused a cached result.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
    /// When work on the stage started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<MicroTime>,
    /// When work on the stage finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<MicroTime>,
    /// Why the stage failed; empty on success.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}
