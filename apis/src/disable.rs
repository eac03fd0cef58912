//! How objects are disabled (through ConfigMaps) and how they report it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where an object reads whether it is disabled.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisableSource {
    /// A single ConfigMap key that disables this object when "true".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapDisableSource>,
    /// Disabled only when every one of these ConfigMap keys is "true".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub every_config_map: Vec<ConfigMapDisableSource>,
}

/// A ConfigMap key holding a disable flag.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapDisableSource {
    /// The ConfigMap's name.
    pub name: String,
    /// The key whose value says whether the object is disabled.
    pub key: String,
}

/// Whether (and why) an object is disabled.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisableStatus {
    /// Whether the object is disabled.
    #[serde(default)]
    pub disabled: bool,
    /// When the disable state last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<MicroTime>,
    /// Why the object is (not) disabled.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Pending, Disabled, Enabled or Error.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub state: String,
}
