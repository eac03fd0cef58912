//! Selecting API objects by regular expressions on their type and name.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Matches Kubernetes-style objects; every non-empty regexp must match.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectSelector {
    /// Regular expression on `apiVersion`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version_regexp: String,
    /// Regular expression on `kind`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind_regexp: String,
    /// Regular expression on the object name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name_regexp: String,
    /// Regular expression on the object namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace_regexp: String,
}
