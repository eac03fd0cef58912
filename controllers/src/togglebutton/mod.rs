//! The ToggleButton controller: shows each ToggleButton as a UIButton of the same name and turns its
//! clicks into writes of the ConfigMap key that holds the state.
//!
//! The UIButton looks like the ToggleButton's `on` or `off` state, whichever the ConfigMap says it is in,
//! and carries a hidden input `action` with what a click does (`on` or `off`); the web UI sends that input
//! back with the click. A click newer than the last one handled writes the key (`onValue`/`offValue`),
//! creating the ConfigMap if needed. The UIButton is owned by the ToggleButton, so deleting the
//! ToggleButton deletes it. Problems (no state source, an unknown value in the key) go to `status.error`.

use std::sync::Arc;

use jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tilt_apis::{
    ConfigMap, ConfigMapStateSource, ToggleButton, ToggleButtonStatus, UIBUTTON_TYPE_ANNOTATION, UIButton,
};
use tokio_util::sync::CancellationToken;

use crate::runtime::{Informers, Reconciler, Reference, Setup};
use crate::status::{apply_status, is_not_found};
use crate::tiltfile::OWNER_LABEL;

/// The field manager of this controller's writes.
pub const MANAGER: &str = "tilt-togglebutton-controller";
/// The UIButton input that says what a click does.
pub const ACTION_INPUT: &str = "action";

/// Errors of one reconcile; retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API refused a read or write.
    #[error("ToggleButton controller API call failed: {0}")]
    Api(#[from] kube::Error),
}

/// The controller.
pub struct Ctx {
    informers: Arc<Informers>,
}

/// `onValue`/`offValue`, with Go Tilt's defaults.
fn values(source: &ConfigMapStateSource) -> (&str, &str) {
    fn or<'a>(value: &'a str, default: &'static str) -> &'a str {
        if value.is_empty() { default } else { value }
    }
    (or(&source.on_value, "true"), or(&source.off_value, "false"))
}

/// What a click asks for: `Some(true)` to turn on, `Some(false)` to turn off; an error for a malformed one.
fn clicked_action(button: &UIButton) -> Result<bool, String> {
    let inputs = button.status.as_ref().map(|s| s.inputs.as_slice()).unwrap_or_default();
    let input = inputs.iter().find(|i| i.name == ACTION_INPUT).ok_or_else(|| {
        format!("UIButton {:?} was clicked without an input named {ACTION_INPUT:?}", button.name_any())
    })?;
    match input.hidden.as_ref().map(|h| h.value.as_str()) {
        Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(other) => {
            Err(format!("UIButton {:?} input {ACTION_INPUT:?} has unexpected value {other:?}", button.name_any()))
        }
        None => Err(format!("UIButton {:?} input {ACTION_INPUT:?} is not a hidden input", button.name_any())),
    }
}

impl Reconciler for Ctx {
    type K = ToggleButton;
    /// When the last click handled was made.
    type State = Timestamp;
    type Error = Error;
    const NAME: &'static str = "togglebutton";

    async fn reconcile(&self, tb: Arc<ToggleButton>, handled: &mut Option<Timestamp>) -> Result<Action, Error> {
        let client = self.informers.client().clone();
        let name = tb.name_any();
        let mut error = String::new();
        let Some(source) = tb.spec.state_source.config_map.clone() else {
            write_error(&client, &tb, "spec.stateSource.configMap is not set").await?;
            return Ok(Action::await_change());
        };
        let (on_value, off_value) = values(&source);
        let maps: Api<ConfigMap> = Api::all(client.clone());

        // A click newer than the last one handled (and than the button itself) sets the state.
        let button = self.informers.get::<UIButton>(&name).await;
        let created = tb.meta().creation_timestamp.as_ref().map(|t| t.0).unwrap_or(Timestamp::UNIX_EPOCH);
        let clicked = button.as_ref().and_then(|b| b.status.as_ref()?.last_clicked_at.as_ref()).map(|t| t.0);
        if let (Some(b), Some(at)) = (&button, clicked)
            && at > handled.unwrap_or(created)
        {
            match clicked_action(b) {
                Ok(on) => {
                    let value = if on { on_value } else { off_value };
                    set_key(&maps, &source, value).await?;
                }
                Err(e) => error = e,
            }
            *handled = Some(at);
        }

        let data = self.informers.get::<ConfigMap>(&source.name).await.map(|cm| cm.data.clone()).unwrap_or_default();
        let is_on = match data.get(&source.key).map(String::as_str) {
            None => tb.spec.default_on,
            Some(v) if v == on_value => true,
            Some(v) if v == off_value => false,
            Some(v) => {
                error = format!(
                    "ConfigMap {:?} key {:?} has unknown value {v:?}; expected {on_value:?} or {off_value:?}",
                    source.name, source.key
                );
                tb.spec.default_on
            }
        };
        let state = if is_on { &tb.spec.on } else { &tb.spec.off };
        let mut annotations = serde_json::Map::new();
        if !tb.spec.button_type.is_empty() {
            annotations.insert(UIBUTTON_TYPE_ANNOTATION.into(), json!(tb.spec.button_type));
        }
        if let Some(r) = tb.annotations().get(tilt_apis::RESOURCE_ANNOTATION) {
            annotations.insert(tilt_apis::RESOURCE_ANNOTATION.into(), json!(r));
        }
        // The resource's labels (for grouping), but not the Tiltfile's ownership: this button is the
        // ToggleButton's, and goes with it.
        let labels: serde_json::Map<String, serde_json::Value> =
            tb.labels().iter().filter(|(k, _)| k.as_str() != OWNER_LABEL).map(|(k, v)| (k.clone(), json!(v))).collect();
        let owner = tb.controller_owner_ref(&()).map(|o| vec![o]).unwrap_or_default();
        let ui_button = json!({
            "apiVersion": tilt_apis::API_VERSION,
            "kind": "UIButton",
            "metadata": {"name": name, "labels": labels, "annotations": annotations, "ownerReferences": owner},
            "spec": {
                "location": tb.spec.location,
                "text": state.text,
                "iconName": state.icon_name,
                "iconSVG": state.icon_svg,
                "requiresConfirmation": state.requires_confirmation,
                "inputs": [{"name": ACTION_INPUT, "hidden": {"value": if is_on { "off" } else { "on" }}}],
            },
        });
        Api::<UIButton>::all(client.clone())
            .patch(&tilt_apis::path_name(&name), &PatchParams::apply(MANAGER).force(), &Patch::Apply(&ui_button))
            .await?;
        if tb.status.as_ref().map(|s| s.error.as_str()).unwrap_or_default() != error {
            write_error(&client, &tb, &error).await?;
        }
        Ok(Action::await_change())
    }
}

/// Writes `value` under the source's key, creating the ConfigMap when it does not exist.
async fn set_key(maps: &Api<ConfigMap>, source: &ConfigMapStateSource, value: &str) -> Result<(), kube::Error> {
    let patch = json!({"data": {source.key.clone(): value}});
    match maps.patch(&tilt_apis::path_name(&source.name), &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => {
            let cm: ConfigMap = serde_json::from_value(json!({
                "apiVersion": tilt_apis::API_VERSION,
                "kind": "ConfigMap",
                "metadata": {"name": source.name},
                "data": {source.key.clone(): value},
            }))
            .expect("a ConfigMap literal");
            maps.create(&PostParams::default(), &cm).await.map(drop)
        }
        Err(e) => Err(e),
    }
}

async fn write_error(client: &kube::Client, tb: &ToggleButton, error: &str) -> Result<(), kube::Error> {
    let api: Api<ToggleButton> = Api::all(client.clone());
    apply_status(&api, &tb.name_any(), MANAGER, &ToggleButtonStatus { error: error.to_string() }).await
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(informers: Arc<Informers>, shutdown: CancellationToken) {
    let ctx = Arc::new(Ctx { informers: informers.clone() });
    Setup::new(ctx, &informers)
        .index(|tb: &ToggleButton| {
            tb.spec.state_source.config_map.iter().map(|c| Reference::new("ConfigMap", &c.name)).collect()
        })
        .referenced::<ConfigMap>()
        .watches::<UIButton, _>(|b| Some(ObjectRef::<ToggleButton>::new(&b.name_any())))
        .run(shutdown)
        .await;
}
