//! UISession: global state of this tilt for the web UI (version, feature flags, fatal errors). Written by
//! tilt; the spec is empty.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Nothing to configure: a UISession only reports.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "UISession",
    doc = "Global state of this tilt for the web UI.",
    plural = "uisessions",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "uisession",
    status = "UISessionStatus"
)]
pub struct UISessionSpec {}

/// What the UI needs to know about the running tilt.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UISessionStatus {
    /// Experimental features and whether they are on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feature_flags: Vec<UIFeatureFlag>,
    /// Whether the user has not yet opted in or out of analytics and should be asked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_analytics_nudge: bool,
    /// The tilt build the UI is talking to.
    #[serde(default)]
    pub running_tilt_build: TiltBuild,
    /// The version the user should run; the UI may suggest upgrading when it differs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub suggested_tilt_version: String,
    /// Version-check settings from the Tiltfile.
    #[serde(default)]
    pub version_settings: VersionSettings,
    /// Deprecated and no longer set.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tilt_cloud_username: String,
    /// Deprecated and no longer set.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tilt_cloud_team_name: String,
    /// Deprecated and no longer set.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tilt_cloud_scheme_host: String,
    /// Deprecated and no longer set.
    #[serde(rename = "tiltCloudTeamID", default, skip_serializing_if = "String::is_empty")]
    pub tilt_cloud_team_id: String,
    /// An error that stopped tilt's control loop; the API server keeps serving but nothing more builds.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fatal_error: String,
    /// When this tilt started; a change tells clients the server restarted and they must reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tilt_start_time: Option<Time>,
    /// Identifies the running Tiltfile, so clients can keep per-project data.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tiltfile_key: String,
}

/// One experimental feature flag.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIFeatureFlag {
    /// Flag name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Whether it is on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub value: bool,
}

/// A tilt build.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TiltBuild {
    /// Semantic version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Git commit the binary was built from.
    #[serde(rename = "commitSHA", default, skip_serializing_if = "String::is_empty")]
    pub commit_sha: String,
    /// Human-readable build date.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub date: String,
    /// Whether this is a development build rather than a release.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dev: bool,
}

/// Version-check settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionSettings {
    /// Whether to check for new versions.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub check_updates: bool,
}
