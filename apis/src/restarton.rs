//! References from one object to the objects whose events restart, start or stop it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Objects that can trigger a restart.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestartOnSpec {
    /// FileWatches whose file events trigger a restart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_watches: Vec<String>,
    /// UIButtons whose clicks trigger a restart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ui_buttons: Vec<String>,
    /// Cmds whose newer successful completion (exit 0) triggers a restart: a server restarts after its
    /// build step succeeds again. tilt-rs addition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmds: Vec<String>,
}

/// Conditions for a start. Without `uiButtons` nothing waits for a click; every listed Cmd and UIResource
/// must be done/ready before the object starts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartOnSpec {
    /// Events before this time are ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_after: Option<Time>,
    /// UIButtons whose clicks trigger a start (any one of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ui_buttons: Vec<String>,
    /// Cmds that must each have completed successfully (exit 0) first. tilt-rs addition: a server waits
    /// for its build step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cmds: Vec<String>,
    /// UIResources that must each be Ready first (`resource_deps`). tilt-rs addition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ui_resources: Vec<String>,
}

/// Objects that can stop a running execution.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StopOnSpec {
    /// UIButtons whose clicks trigger a stop.
    #[serde(deserialize_with = "crate::gojson::null_as_default")]
    pub ui_buttons: Vec<String>,
}
