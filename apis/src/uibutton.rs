//! UIButton: a button in the web UI; clicks (and input values) are recorded in its status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::UIComponentLocation;

/// How the button looks, where it sits and which inputs it offers.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "tilt.dev",
    version = "v1alpha1",
    kind = "UIButton",
    doc = "A button in the web UI.",
    plural = "uibuttons",
    category = "tilt",
    printcolumn(name = "Created At", type_ = "string", json_path = ".metadata.creationTimestamp"),
    singular = "uibutton",
    status = "UIButtonStatus",
    printcolumn(name = "Text", type_ = "string", json_path = ".spec.text"),
    printcolumn(name = "Last Clicked", type_ = "date", json_path = ".status.lastClickedAt")
)]
#[serde(rename_all = "camelCase")]
pub struct UIButtonSpec {
    /// The component the button is attached to.
    pub location: UIComponentLocation,
    /// Button text (or hover text, depending on location).
    pub text: String,
    /// A Material Icons ligature name shown with the text; `iconSVG` wins if both are set.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub icon_name: String,
    /// An `<svg>` icon for a 24x24 viewport.
    #[serde(rename = "iconSVG", default, skip_serializing_if = "String::is_empty")]
    pub icon_svg: String,
    /// Shown greyed out and not clickable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
    /// Require a second click to confirm.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requires_confirmation: bool,
    /// Inputs shown with the button.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<UIInputSpec>,
}

/// One input of a button; exactly one of `text`, `bool`, `hidden`, `choice` is set.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIInputSpec {
    /// Input name, unique within the button.
    pub name: String,
    /// Label shown next to the input.
    #[serde(default)]
    pub label: String,
    /// A free-text input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<UITextInputSpec>,
    /// A checkbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bool: Option<UIBoolInputSpec>,
    /// A constant value not shown to the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<UIHiddenInputSpec>,
    /// A pick from a list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice: Option<UIChoiceInputSpec>,
}

/// A free-text input.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UITextInputSpec {
    /// Initial value.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub default_value: String,
    /// Hint shown while empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub placeholder: String,
}

/// A checkbox input.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIBoolInputSpec {
    /// Initial value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default_value: bool,
    /// String form of true (default `"true"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub true_string: Option<String>,
    /// String form of false (default `"false"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub false_string: Option<String>,
}

/// A hidden input with a fixed value.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIHiddenInputSpec {
    /// The value.
    pub value: String,
}

/// A pick-one-of-several input.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIChoiceInputSpec {
    /// The allowed values.
    #[serde(default, deserialize_with = "crate::gojson::null_as_default")]
    pub choices: Vec<String>,
}

/// Clicks and input values.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIButtonStatus {
    /// When the button was last clicked; unset if never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_clicked_at: Option<MicroTime>,
    /// Values of the inputs at the last click.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<UIInputStatus>,
}

/// The value of one input; the member set matches the input's kind in the spec.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIInputStatus {
    /// Name of the input in the spec.
    pub name: String,
    /// Value of a text input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<UITextInputStatus>,
    /// Value of a checkbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bool: Option<UIBoolInputStatus>,
    /// Value of a hidden input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<UIHiddenInputStatus>,
    /// Value of a choice input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice: Option<UIChoiceInputStatus>,
}

/// The value of a text input.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UITextInputStatus {
    /// The text.
    pub value: String,
}

/// The value of a checkbox.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIBoolInputStatus {
    /// Whether it is checked.
    pub value: bool,
}

/// The value of a hidden input.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIHiddenInputStatus {
    /// The value.
    pub value: String,
}

/// The value of a choice input.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIChoiceInputStatus {
    /// The chosen value.
    pub value: String,
}
