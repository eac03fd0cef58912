//! UpdateStatus: a one-word summary of a resource's build and deploy work.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The state of the updates (builds, deploys, live updates) that bring a resource up to date.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum UpdateStatus {
    /// Nothing has triggered an update yet (usually a manual resource without auto-init).
    #[serde(rename = "none")]
    None,
    /// An update is running.
    #[serde(rename = "in_progress")]
    InProgress,
    /// The last update succeeded.
    #[serde(rename = "ok")]
    Ok,
    /// An update is queued.
    #[serde(rename = "pending")]
    Pending,
    /// The last update failed.
    #[serde(rename = "error")]
    Error,
    /// The resource has nothing to update.
    #[serde(rename = "not_applicable")]
    NotApplicable,
}
