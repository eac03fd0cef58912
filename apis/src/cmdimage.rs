//! CmdImage: an image built by a user-supplied command (Tiltfile `custom_build`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ClusterImageNeeds, DisableSource, RestartOnSpec, StartOnSpec};

/// The build command and where its image ends up.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "CmdImage",
    doc = "An image built by a custom command.",
    plural = "cmdimages",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "cmdimage",
    status = "CmdImageStatus",
    printcolumn(name = "Ref", type_ = "string", json_path = ".spec.ref"),
    printcolumn(name = "Image", type_ = "string", json_path = ".status.ref", priority = 1)
)]
#[serde(rename_all = "camelCase")]
pub struct CmdImageSpec {
    /// The image name (a named reference).
    #[serde(rename = "ref")]
    pub ref_: String,
    /// Command-line arguments; at least one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Working directory; tilt's when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dir: String,
    /// Extra `KEY=VALUE` environment variables over tilt's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// ImageMaps this build depends on; a new image from one of them rebuilds this.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_maps: Vec<String>,
    /// Where the command puts the image; the local Docker image store when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_mode: Option<CmdImageOutputMode>,
    /// Tag the command is expected to produce; when empty tilt picks one and passes it as `$EXPECTED_REF`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output_tag: String,
    /// File the command writes the resulting image reference to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub outputs_image_ref_to: String,
    /// Cluster the image is for (decides architecture and registry); the default cluster when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// Whether the cluster needs the image; a push when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_needs: Option<ClusterImageNeeds>,
    /// The ImageMap whose status receives each successfully built image. tilt-rs addition: Go Tilt's
    /// build engine links images to ImageMaps outside the API.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_map: String,
    /// FileWatches (the `deps`) and UIButtons (the resource's trigger) whose newer events rerun the command.
    /// tilt-rs addition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_on: Option<RestartOnSpec>,
    /// What the first build waits for: `resource_deps` UIResources to be Ready and, with `auto_init=False`,
    /// a click. tilt-rs addition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_on: Option<StartOnSpec>,
    /// ConfigMaps that disable the build (`tilt disable`). tilt-rs addition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_source: Option<DisableSource>,
}

/// Where a build command leaves its image.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum CmdImageOutputMode {
    /// In the local Docker image store only.
    #[serde(rename = "local-docker")]
    LocalDocker,
    /// In the local Docker image store, and pushed to the remote registry.
    #[serde(rename = "local-docker-and-remote")]
    LocalDockerAndRemote,
    /// Directly in the remote registry.
    #[serde(rename = "remote")]
    Remote,
}

/// The state of the most recent build.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CmdImageStatus {
    /// Full reference of the built image as seen from the local network.
    #[serde(rename = "ref", default, skip_serializing_if = "String::is_empty")]
    pub ref_: String,
    /// Set while the build waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<CmdImageStateWaiting>,
    /// Set while the build runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub building: Option<CmdImageStateBuilding>,
    /// Set once the build finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<CmdImageStateCompleted>,
}

/// A build that has not started.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CmdImageStateWaiting {
    /// Brief reason for waiting.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// A build in progress.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CmdImageStateBuilding {
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
pub struct CmdImageStateCompleted {
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
