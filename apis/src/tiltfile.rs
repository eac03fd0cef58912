//! Tiltfile: a Tiltfile to execute; its result is the set of objects it declares.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{RestartOnSpec, StopOnSpec};

/// Which Tiltfile to run, with what arguments, and when to re-run it.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "Tiltfile",
    doc = "A Tiltfile to execute.",
    plural = "tiltfiles",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "tiltfile",
    status = "TiltfileStatus",
    printcolumn(name = "Path", type_ = "string", json_path = ".spec.path")
)]
#[serde(rename_all = "camelCase")]
pub struct TiltfileSpec {
    /// Path of the Tiltfile.
    pub path: String,
    /// Labels put on every object this Tiltfile owns.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Objects whose events re-run the Tiltfile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_on: Option<RestartOnSpec>,
    /// Arguments, positional or `--flag=value`; by default the names of resources to enable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Objects whose events cancel a running execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_on: Option<StopOnSpec>,
}

/// The state of the Tiltfile's execution; at most one member is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TiltfileStatus {
    /// Set while waiting to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<TiltfileStateWaiting>,
    /// Set while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<TiltfileStateRunning>,
    /// Set after a run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated: Option<TiltfileStateTerminated>,
}

/// A Tiltfile waiting to run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TiltfileStateWaiting {
    /// Brief reason for waiting.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// A Tiltfile being executed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TiltfileStateRunning {
    /// Why this run happens (there may be several reasons).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// When the run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<MicroTime>,
}

/// A finished Tiltfile execution.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TiltfileStateTerminated {
    /// Why the run happened.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// Why the run failed; empty on success.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// When the run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<MicroTime>,
    /// When the run finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<MicroTime>,
    /// How many warnings the run produced.
    #[serde(default, skip_serializing_if = "crate::gojson::is_zero")]
    pub warning_count: i32,
}
