//! Cmd: a process on the host machine, run and supervised by the Cmd controller.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{DisableSource, DisableStatus, Probe, RestartOnSpec, StartOnSpec};

/// How to run a local command.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "Cmd",
    doc = "A process on the host machine, run and supervised by tilt.",
    plural = "cmds",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "cmd",
    status = "CmdStatus",
    printcolumn(name = "Args", type_ = "string", json_path = ".spec.args", priority = 1)
)]
#[serde(rename_all = "camelCase")]
pub struct CmdSpec {
    /// Command-line arguments. Must have length at least 1.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Process working directory; tilt's working directory when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dir: String,
    /// Additional environment variables, as `KEY=VALUE` strings layered over tilt's own environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Periodic probe of service readiness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    /// Objects whose newer events restart this command (graceful stop, then start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_on: Option<RestartOnSpec>,
    /// Objects that start (or restart) this command; with any, the command waits for one to fire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_on: Option<StartOnSpec>,
    /// Specifies how to disable this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_source: Option<DisableSource>,
    /// What to do when the process exits on its own: `Never` (the default, as in Go Tilt), `OnFailure`
    /// (restart after a non-zero exit) or `Always`. Restarts back off from 1 s up to 30 s.
    /// tilt-rs addition; Go Tilt has no such field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
}

/// Whether a Cmd whose process exited on its own is started again.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RestartPolicy {
    /// Leave it exited.
    #[default]
    Never,
    /// Restart after a non-zero exit.
    OnFailure,
    /// Restart after any exit.
    Always,
}

/// The observed state of a Cmd, modelled on a Kubernetes ContainerStatus.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CmdStatus {
    /// Details about a waiting process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<CmdStateWaiting>,
    /// Details about a running process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<CmdStateRunning>,
    /// Details about a terminated process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated: Option<CmdStateTerminated>,
    /// Whether the command has passed its readiness probe; always true without a probe.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ready: bool,
    /// Details about whether/why this is disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_status: Option<DisableStatus>,
}

/// A process that is not running yet.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CmdStateWaiting {
    /// (brief) reason the process is not yet running.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// A running process.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CmdStateRunning {
    /// The process id of the command.
    pub pid: i32,
    /// Time at which the command was last started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<MicroTime>,
}

/// A process that exited.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CmdStateTerminated {
    /// The process id of the command.
    pub pid: i32,
    /// Exit status from the last termination of the command.
    pub exit_code: i32,
    /// Time at which the previous execution of the command started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<MicroTime>,
    /// Time at which the command last terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<MicroTime>,
    /// (brief) reason the process is terminated.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// `CmdStatus.terminated.reason` of a process tilt stopped (restart, delete, shutdown): not a failure.
pub const CMD_STOPPED_REASON: &str = "stopped by tilt";
