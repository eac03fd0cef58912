//! ExtensionRepo: a git repository or local directory of Tiltfile extensions.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the repo is and which version to use.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "ExtensionRepo",
    doc = "A repository of Tiltfile extensions.",
    plural = "extensionrepos",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "extensionrepo",
    shortname = "repo",
    shortname = "extrepo",
    status = "ExtensionRepoStatus",
    printcolumn(name = "URL", type_ = "string", json_path = ".spec.url")
)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionRepoSpec {
    /// An `https:` URL of a public git repo, or a `file:` URL of a local directory.
    pub url: String,
    /// Version to check out; the latest when empty.
    #[serde(rename = "ref", default, skip_serializing_if = "String::is_empty")]
    pub ref_: String,
    /// Load host (as in `load("ext://<host>/name", ...)`) under which unregistered extensions from this
    /// repo are registered on first load.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub load_host: String,
    /// Directory inside a git repo that holds the extensions (the root by default); not for `file:` URLs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub git_subpath: String,
}

/// The local copy of the repo.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionRepoStatus {
    /// A problem fetching or loading the repo.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// When the repo was last fetched and checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fetched_at: Option<Time>,
    /// The repo's location on disk.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// The checked-out commit (empty for `file:` repos).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub checkout_ref: String,
    /// Set when fetching failed and an older copy on disk is in use; says why.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stale_reason: String,
}
