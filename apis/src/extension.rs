//! Extension: a Tiltfile extension loaded from an ExtensionRepo.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which repo and directory the extension comes from.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "Extension",
    doc = "A Tiltfile extension loaded from an ExtensionRepo.",
    plural = "extensions",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "extension",
    shortname = "ext",
    status = "ExtensionStatus",
    printcolumn(name = "Repo", type_ = "string", json_path = ".spec.repoName"),
    printcolumn(name = "Path", type_ = "string", json_path = ".spec.repoPath")
)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionSpec {
    /// The ExtensionRepo holding the extension; watched for changes, moves and deletion.
    pub repo_name: String,
    /// Directory inside the repo whose Tiltfile is the extension's entry point.
    pub repo_path: String,
    /// Arguments to the extension's Tiltfile, positional or `--flag=value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// Where the extension was found.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionStatus {
    /// A problem loading the extension.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// The extension's directory on disk, shared by all tilt instances.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
}
