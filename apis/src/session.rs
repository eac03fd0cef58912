//! Session: one run of tilt (`tilt up` or `tilt ci`), its exit condition, and the state of its targets.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Duration;

/// What this run executes and when it ends.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "Session",
    doc = "One run of tilt and the state of its targets.",
    plural = "sessions",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "session",
    status = "SessionStatus",
    printcolumn(name = "Exit Condition", type_ = "string", json_path = ".spec.exitCondition"),
    printcolumn(name = "Done", type_ = "boolean", json_path = ".status.done")
)]
#[serde(rename_all = "camelCase")]
pub struct SessionSpec {
    /// Path of the Tiltfile for this run; must not be empty.
    pub tiltfile_path: String,
    /// When tilt exits.
    pub exit_condition: ExitCondition,
    /// Extra settings for `exitCondition: ci`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<SessionCISpec>,
}

/// Settings for CI runs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionCISpec {
    /// How long a failing Kubernetes resource may take to recover; without it the first pod failure ends
    /// the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_grace_period: Option<Duration>,
    /// Limit on the whole run (default 30m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Limit for a started resource to become ready (default 5m; Kubernetes Jobs excepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_timeout: Option<Duration>,
}

/// When a session ends.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ExitCondition {
    /// Never on its own; the user stops it (`tilt up`).
    #[serde(rename = "manual")]
    Manual,
    /// At the first build or runtime failure, or once every resource is up (`tilt ci`).
    #[serde(rename = "ci")]
    Ci,
}

/// The state of this run of tilt.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionStatus {
    /// Process ID of this tilt.
    pub pid: i64,
    /// When the engine started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<MicroTime>,
    /// The servers and jobs this session manages. One resource may yield several targets, and one target
    /// (e.g. an image) may serve several resources.
    #[serde(deserialize_with = "crate::gojson::null_as_default")]
    pub targets: Vec<Target>,
    /// Whether the session has finished its work and tilt can exit.
    pub done: bool,
    /// Why the session failed, once done.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// A server or job managed by a session.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Name, generated from Tiltfile resources.
    pub name: String,
    /// Whether it runs to completion or forever.
    #[serde(rename = "type")]
    pub type_: TargetType,
    /// The Tiltfile resources it belongs to.
    #[serde(deserialize_with = "crate::gojson::null_as_default")]
    pub resources: Vec<String>,
    /// Its current state.
    pub state: TargetState,
}

/// How a target executes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum TargetType {
    /// Runs to completion (a build, a migration script).
    #[serde(rename = "job")]
    Job,
    /// Runs indefinitely (an HTTP server).
    #[serde(rename = "server")]
    Server,
}

/// The state of a target; at most one member is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetState {
    /// Queued but not started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<TargetStateWaiting>,
    /// Executing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<TargetStateActive>,
    /// Finished, normally or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated: Option<TargetStateTerminated>,
    /// Disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<TargetStateDisabled>,
}

/// A queued target.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetStateWaiting {
    /// What it is waiting for (not what triggered it).
    pub wait_reason: String,
}

/// An executing target.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetStateActive {
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<MicroTime>,
    /// Whether it passes readiness checks (always true without any).
    pub ready: bool,
    /// When it last passed readiness checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ready_time: Option<MicroTime>,
}

/// A finished target.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetStateTerminated {
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<MicroTime>,
    /// When it stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<MicroTime>,
    /// Why it failed; always set for servers, which are not expected to stop.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Whether the error is still inside the session's grace period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_status: Option<TargetGraceStatus>,
}

/// Where a failed target stands with respect to the CI grace period.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum TargetGraceStatus {
    /// Failing, but still within the grace period.
    Tolerated,
    /// Failing for longer than the grace period.
    Exceeded,
}

/// A disabled target.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct TargetStateDisabled {}
