//! ToggleButton: an on/off button in the web UI whose state is stored in a ConfigMap key.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::UIComponentLocation;

/// Where the button sits, how each state looks, and where the state is kept.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "ToggleButton",
    doc = "An on/off button in the web UI backed by a ConfigMap key.",
    plural = "togglebuttons",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "togglebutton",
    status = "ToggleButtonStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct ToggleButtonSpec {
    /// The component the button is attached to.
    pub location: UIComponentLocation,
    /// Looks of the button while on.
    pub on: ToggleButtonStateSpec,
    /// Looks of the button while off.
    pub off: ToggleButtonStateSpec,
    /// Initial state when `stateSource` holds no valid value.
    pub default_on: bool,
    /// Where the on/off state is stored.
    pub state_source: StateSource,
    /// Special behaviour in the web UI (`DisableToggle`: a resource's enable/disable switch); copied to the
    /// UIButton's `tilt.dev/uibutton-type` annotation.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub button_type: String,
}

/// How the button looks in one state.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToggleButtonStateSpec {
    /// Button text (or hover text, depending on location).
    pub text: String,
    /// A Material Icons ligature name; `iconSVG` wins if both are set.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub icon_name: String,
    /// An `<svg>` icon for a 24x24 viewport.
    #[serde(rename = "iconSVG", default, skip_serializing_if = "String::is_empty")]
    pub icon_svg: String,
    /// Require a second click to confirm in this state.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requires_confirmation: bool,
}

/// Where a toggle's state is stored.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StateSource {
    /// A ConfigMap key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapStateSource>,
}

/// A ConfigMap key holding a toggle's state.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapStateSource {
    /// The ConfigMap's name.
    pub name: String,
    /// The key within it.
    pub key: String,
    /// Value meaning "on" (default `"true"`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub on_value: String,
    /// Value meaning "off" (default `"false"`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub off_value: String,
}

/// Problems with the button.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToggleButtonStatus {
    /// What is wrong; empty when healthy.
    #[serde(default)]
    pub error: String,
}
