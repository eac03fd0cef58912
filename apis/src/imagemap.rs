//! ImageMap: maps an image name in deployed config to the most recently built image.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which image references to replace, and how.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "ImageMap",
    doc = "A mapping from an image name in deployed config to the latest built image.",
    plural = "imagemaps",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "imagemap",
    shortname = "im",
    status = "ImageMapStatus",
    printcolumn(name = "Selector", type_ = "string", json_path = ".spec.selector"),
    printcolumn(name = "Image", type_ = "string", json_path = ".status.image")
)]
#[serde(rename_all = "camelCase")]
pub struct ImageMapSpec {
    /// Image reference to replace in deployed config; matches by name, ignoring tags, unless `matchExact`.
    pub selector: String,
    /// Match tags too, exactly.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub match_exact: bool,
    /// Also replace matches inside container environment variables.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub match_in_env_vars: bool,
    /// Replace the container's `command` along with the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_command: Option<ImageMapOverrideCommand>,
    /// Replace the container's `args` along with the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_args: Option<ImageMapOverrideArgs>,
}

/// A replacement container command.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageMapOverrideCommand {
    /// The command strings.
    #[serde(deserialize_with = "crate::gojson::null_as_default")]
    pub command: Vec<String>,
}

/// Replacement container args.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageMapOverrideArgs {
    /// The argument strings.
    #[serde(deserialize_with = "crate::gojson::null_as_default")]
    pub args: Vec<String>,
}

/// The image to inject. References differ by network: cluster runtime, local machine, cluster network.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageMapStatus {
    /// Full reference (name and immutable tag) as seen from the cluster's container runtime.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    /// Full reference as seen from the local network.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_from_local: String,
    /// Full reference as seen from the cluster's container runtime.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_from_cluster: String,
    /// When the build of this image started: file changes before it are in the image, later ones may not be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_start_time: Option<MicroTime>,
}
