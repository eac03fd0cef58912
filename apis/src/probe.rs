//! Readiness probes, as in Kubernetes' core/v1 Probe.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A periodic check of a service's health. Exactly one of `exec`, `httpGet`, `tcpSocket` is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    /// Run a command; exit code 0 is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecAction>,
    /// An HTTP GET; a 2xx or 3xx status is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGetAction>,
    /// A TCP connect; success is healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocketAction>,
    /// Seconds after start before the first probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i32>,
    /// Seconds after which a probe times out (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
    /// Seconds between probes (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i32>,
    /// Consecutive successes to become ready (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<i32>,
    /// Consecutive failures to become not ready (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i32>,
}

/// A command to execute.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecAction {
    /// The command line; not run in a shell.
    #[serde(default)]
    pub command: Vec<String>,
}

/// An HTTP GET request.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpGetAction {
    /// Host to connect to (default localhost).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// Port to connect to.
    pub port: i32,
    /// Path to request.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// HTTP or HTTPS (default HTTP).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scheme: String,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_headers: Vec<HttpHeader>,
}

/// One HTTP header.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct HttpHeader {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// A TCP connect.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TcpSocketAction {
    /// Host to connect to (default localhost).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    /// Port to connect to.
    pub port: i32,
}
