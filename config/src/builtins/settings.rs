//! Go Tilt settings built-ins that do not change the declared objects here. They check their arguments like
//! Go Tilt and otherwise do nothing, so Tiltfiles that call them keep loading: `allow_k8s_contexts()`,
//! `update_settings()`, `analytics_settings()`, `version_settings()`, `ci_settings()`, `secret_settings()`,
//! `set_team()`, `enable_feature()`, `disable_feature()`, `disable_snapshots()`.

use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::none::NoneType;

use super::string_list;
use crate::state::TiltfileState;

/// Registers this module's built-ins.
pub(crate) fn register(builder: &mut GlobalsBuilder) {
    settings_builtins(builder);
}

#[starlark_module]
fn settings_builtins(builder: &mut GlobalsBuilder) {
    /// Kubernetes contexts Tilt may deploy to besides local ones.
    fn allow_k8s_contexts<'v>(contexts: Value<'v>) -> anyhow::Result<NoneType> {
        string_list(Some(contexts), "contexts")?;
        Ok(NoneType)
    }

    /// Engine settings (parallelism, apply timeout, image warnings).
    fn update_settings<'v>(
        max_parallel_updates: Option<i32>,
        k8s_upsert_timeout_secs: Option<i32>,
        suppress_unused_image_warnings: Option<Value<'v>>,
        k8s_server_side_apply: Option<Value<'v>>,
    ) -> anyhow::Result<NoneType> {
        if max_parallel_updates.is_some_and(|n| n < 1) {
            anyhow::bail!("max number of parallel updates must be >= 1");
        }
        if k8s_upsert_timeout_secs.is_some_and(|n| n < 1) {
            anyhow::bail!("minimum k8s upsert timeout is 1s");
        }
        string_list(suppress_unused_image_warnings, "suppress_unused_image_warnings")?;
        let _ = k8s_server_side_apply;
        Ok(NoneType)
    }

    /// Usage analytics opt-in/out.
    fn analytics_settings(enable: Option<bool>) -> anyhow::Result<NoneType> {
        let _ = enable;
        Ok(NoneType)
    }

    /// Update checks and the required Tilt version.
    fn version_settings(check_updates: Option<bool>, constraint: Option<&str>) -> anyhow::Result<NoneType> {
        let _ = (check_updates, constraint);
        Ok(NoneType)
    }

    /// `tilt ci` settings.
    fn ci_settings<'v>(k8s_grace_period: Option<Value<'v>>, timeout: Option<Value<'v>>) -> anyhow::Result<NoneType> {
        let _ = (k8s_grace_period, timeout);
        Ok(NoneType)
    }

    /// Whether secrets are scrubbed from logs.
    fn secret_settings(disable_scrub: Option<bool>) -> anyhow::Result<NoneType> {
        let _ = disable_scrub;
        Ok(NoneType)
    }

    /// Tilt Cloud team.
    fn set_team(team_id: &str) -> anyhow::Result<NoneType> {
        if team_id.is_empty() {
            anyhow::bail!("team_id cannot be empty");
        }
        Ok(NoneType)
    }

    /// Go Tilt feature flags.
    fn enable_feature<'v>(feature_name: &str, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<NoneType> {
        TiltfileState::from_eval(eval)?.warn(&format!("enable_feature({feature_name:?}) has no effect in tilt-rs"));
        Ok(NoneType)
    }

    /// Go Tilt feature flags.
    fn disable_feature<'v>(feature_name: &str, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<NoneType> {
        TiltfileState::from_eval(eval)?.warn(&format!("disable_feature({feature_name:?}) has no effect in tilt-rs"));
        Ok(NoneType)
    }

    /// Tilt Cloud snapshots.
    fn disable_snapshots() -> anyhow::Result<NoneType> {
        Ok(NoneType)
    }
}
