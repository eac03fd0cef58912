//! Where a UI extension (button, toggle) is placed in the web UI.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The component a UI element is attached to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UIComponentLocation {
    /// The parent component, e.g. a resource name when `componentType` is `Resource`.
    #[serde(rename = "componentID")]
    pub component_id: String,
    /// What kind of component the parent is.
    pub component_type: ComponentType,
}

/// Kinds of UI components that can hold other elements.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ComponentType {
    /// A resource's pane.
    Resource,
    /// The global navigation bar.
    Global,
}
