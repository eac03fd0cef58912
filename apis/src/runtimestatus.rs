//! RuntimeStatus: a one-word summary of whether a resource's server is healthy.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The runtime state of a resource's server (if it has one).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum RuntimeStatus {
    /// Not read yet.
    #[serde(rename = "unknown")]
    Unknown,
    /// Running and passing health checks.
    #[serde(rename = "ok")]
    Ok,
    /// Being scheduled, or waiting on health checks.
    #[serde(rename = "pending")]
    Pending,
    /// Failed.
    #[serde(rename = "error")]
    Error,
    /// The resource has no server and never will.
    #[serde(rename = "not_applicable")]
    NotApplicable,
    /// Nothing has started it yet (usually a manual resource without auto-init).
    #[serde(rename = "none")]
    None,
}
