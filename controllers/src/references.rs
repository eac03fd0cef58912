//! What an object's `restartOn`, `startOn` and `disableSource` name, and what those objects say: when it must
//! (re)start, what it waits for, whether it is disabled. Shared by every controller whose kind has these
//! fields (Cmd, DockerImage, KubernetesApply); the objects are read from the shared informers' stores.

use std::sync::Arc;

use jiff::Timestamp;
use kube::ResourceExt;
use tilt_apis::{
    Cmd, ConfigMap, ConfigMapDisableSource, DisableSource, FileWatch, RESOURCE_ANNOTATION, RestartOnSpec, StartOnSpec,
    UIButton, UIResource,
};

use crate::runtime::Reference;
use crate::runtime::informer::{Informers, Kind};

/// The references for a [`crate::runtime::Setup::index`] of the objects named by `restart_on`, `start_on` and
/// `disable_source`.
pub(crate) fn references(
    restart_on: Option<&RestartOnSpec>,
    start_on: Option<&StartOnSpec>,
    disable_source: Option<&DisableSource>,
) -> Vec<Reference> {
    let mut refs = Vec::new();
    if let Some(r) = restart_on {
        refs.extend(r.file_watches.iter().map(|n| Reference::new("FileWatch", n)));
        refs.extend(r.ui_buttons.iter().map(|n| Reference::new("UIButton", n)));
        refs.extend(r.cmds.iter().map(|n| Reference::new("Cmd", n)));
    }
    if let Some(s) = start_on {
        refs.extend(s.ui_buttons.iter().map(|n| Reference::new("UIButton", n)));
        refs.extend(s.cmds.iter().map(|n| Reference::new("Cmd", n)));
        refs.extend(s.ui_resources.iter().map(|n| Reference::new("UIResource", n)));
    }
    if let Some(d) = disable_source {
        refs.extend(d.config_map.iter().chain(d.every_config_map.iter()).map(|c| Reference::new("ConfigMap", &c.name)));
    }
    refs.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    refs.dedup();
    refs
}

/// Where the objects named by a spec are looked up.
pub(crate) trait Lookup: Sync {
    /// The object `name` of kind `K`, if it exists.
    fn get<K: Kind>(&self, name: &str) -> impl Future<Output = Option<Arc<K>>> + Send;
}

impl Lookup for Informers {
    /// From the kind's shared store, once it has listed (before that, an object not yet seen would look
    /// missing, and a trigger time already acted on could look new).
    async fn get<K: Kind>(&self, name: &str) -> Option<Arc<K>> {
        Informers::get(self, name).await
    }
}

/// When a Cmd last completed successfully (exit 0).
pub(crate) fn succeeded_at(cmd: &Cmd) -> Option<Timestamp> {
    let t = cmd.status.as_ref()?.terminated.as_ref()?;
    (t.exit_code == 0 && t.reason.is_empty()).then(|| t.finished_at.as_ref().map(|f| f.0)).flatten()
}

/// Whether a UIResource's Ready condition is True.
pub(crate) fn resource_ready(r: &UIResource) -> bool {
    r.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The newest event time among the objects a spec restarts or starts on, and why it may not start yet
/// (`None` when every `startOn` condition is met).
pub(crate) async fn triggers(
    lookup: &impl Lookup,
    restart_on: Option<&RestartOnSpec>,
    start_on: Option<&StartOnSpec>,
) -> (Option<Timestamp>, Option<String>) {
    let mut newest: Option<Timestamp> = None;
    let mut bump = |t: Option<Timestamp>| {
        if let Some(t) = t {
            newest = Some(newest.map_or(t, |n| n.max(t)));
        }
    };
    let clicked_at = |b: &UIButton| b.status.as_ref().and_then(|s| s.last_clicked_at.as_ref()).map(|t| t.0);
    if let Some(r) = restart_on {
        for name in &r.file_watches {
            if let Some(fw) = lookup.get::<FileWatch>(name).await {
                bump(fw.status.as_ref().and_then(|s| s.last_event_time.as_ref()).map(|t| t.0));
            }
        }
        for name in &r.ui_buttons {
            if let Some(b) = lookup.get::<UIButton>(name).await {
                bump(clicked_at(&b));
            }
        }
        for name in &r.cmds {
            if let Some(c) = lookup.get::<Cmd>(name).await {
                bump(succeeded_at(&c));
            }
        }
    }
    let mut waiting = Vec::new();
    if let Some(s) = start_on {
        let after = s.start_after.as_ref().map(|t| t.0);
        if !s.ui_buttons.is_empty() {
            let mut clicked_any = false;
            for name in &s.ui_buttons {
                if let Some(b) = lookup.get::<UIButton>(name).await
                    && let Some(c) = clicked_at(&b).filter(|c| after.is_none_or(|a| *c > a))
                {
                    clicked_any = true;
                    bump(Some(c));
                }
            }
            if !clicked_any {
                waiting.push(format!("a trigger ({})", s.ui_buttons.join(", ")));
            }
        }
        for name in &s.cmds {
            match lookup.get::<Cmd>(name).await.as_deref().and_then(succeeded_at) {
                Some(t) => bump(Some(t)),
                None => waiting.push(format!("{name} to succeed")),
            }
        }
        let mut not_ready: Vec<&str> = Vec::new();
        for name in &s.ui_resources {
            if !lookup.get::<UIResource>(name).await.as_deref().is_some_and(resource_ready) {
                not_ready.push(name.as_str());
            }
        }
        if !not_ready.is_empty() {
            waiting.push(format!("resource_deps to be ready ({})", not_ready.join(", ")));
        }
    }
    let reason = (!waiting.is_empty()).then(|| format!("Waiting for {}", waiting.join(" and ")));
    (newest, reason)
}

/// Why an object is disabled by its `disableSource` ConfigMap(s) (`key: "true"`), if it is.
pub(crate) async fn disabled_by(lookup: &impl Lookup, source: Option<&DisableSource>) -> Option<String> {
    let source = source?;
    let mut all: Vec<&ConfigMapDisableSource> = source.every_config_map.iter().collect();
    all.extend(source.config_map.as_ref());
    if all.is_empty() {
        return None;
    }
    for cm in &all {
        let map = lookup.get::<ConfigMap>(&cm.name).await;
        if map.as_ref().and_then(|m| m.data.get(&cm.key)).map(String::as_str) != Some("true") {
            return None;
        }
    }
    let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    Some(format!("disabled by ConfigMap {}", names.join(", ")))
}

/// The resource (manifest) an object belongs to, for its logs: its `tilt.dev/resource` annotation, else its name.
pub(crate) fn resource_of(o: &impl ResourceExt) -> String {
    o.annotations().get(RESOURCE_ANNOTATION).cloned().unwrap_or_else(|| o.name_any())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use tilt_apis::{CmdSpec, CmdStateTerminated, CmdStatus};

    /// Objects by kind and name, for tests.
    #[derive(Default)]
    struct Objects(HashMap<(&'static str, String), Arc<dyn std::any::Any + Send + Sync>>);

    impl Objects {
        fn with<K: Kind>(mut self, o: K) -> Self {
            self.0.insert((K::kind(&()).into_owned().leak(), o.name_any()), Arc::new(o));
            self
        }
    }

    impl Lookup for Objects {
        async fn get<K: Kind>(&self, name: &str) -> Option<Arc<K>> {
            let o = self.0.get(&(K::kind(&()).into_owned().leak() as &str, name.to_string()))?;
            o.clone().downcast::<K>().ok()
        }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn button(name: &str, at: &str) -> UIButton {
        serde_json::from_value(serde_json::json!({
            "apiVersion": tilt_apis::API_VERSION, "kind": "UIButton", "metadata": {"name": name},
            "spec": {"location": {"componentType": "Global", "componentID": "x"}, "text": "t"},
            "status": {"lastClickedAt": crate::micro(t(at))},
        }))
        .unwrap()
    }

    fn cmd_done(name: &str, code: i32, at: &str) -> Cmd {
        let mut c = Cmd::new(name, CmdSpec::default());
        let terminated =
            CmdStateTerminated { exit_code: code, finished_at: Some(crate::micro(t(at))), ..Default::default() };
        c.status = Some(CmdStatus { terminated: Some(terminated), ..Default::default() });
        c
    }

    #[tokio::test]
    async fn triggers_take_the_newest_event_and_name_what_start_waits_for() {
        let objects = Objects::default()
            .with(button("b", "2026-01-01T00:00:02Z"))
            .with(cmd_done("ok", 0, "2026-01-01T00:00:05Z"))
            .with(cmd_done("bad", 1, "2026-01-01T00:00:09Z"));
        let restart =
            RestartOnSpec { ui_buttons: vec!["b".into()], cmds: vec!["ok".into(), "bad".into()], ..Default::default() };
        let (newest, waiting) = triggers(&objects, Some(&restart), None).await;
        assert_eq!(newest, Some(t("2026-01-01T00:00:05Z")), "a failed Cmd is no trigger");
        assert_eq!(waiting, None);

        let start = StartOnSpec {
            ui_buttons: vec!["b".into()],
            start_after: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t("2026-01-01T00:00:03Z"))),
            cmds: vec!["bad".into()],
            ui_resources: vec!["db".into()],
        };
        let (_, waiting) = triggers(&objects, None, Some(&start)).await;
        assert_eq!(
            waiting.as_deref(),
            Some("Waiting for a trigger (b) and bad to succeed and resource_deps to be ready (db)"),
            "a click before startAfter does not count"
        );
    }

    #[tokio::test]
    async fn disabled_only_when_every_config_map_says_true() {
        let cm = |name: &str, v: &str| ConfigMap::new(name, [("isDisabled".to_string(), v.to_string())].into());
        let source = DisableSource {
            config_map: Some(ConfigMapDisableSource { name: "a".into(), key: "isDisabled".into() }),
            every_config_map: vec![ConfigMapDisableSource { name: "b".into(), key: "isDisabled".into() }],
        };
        let on = Objects::default().with(cm("a", "true")).with(cm("b", "true"));
        assert_eq!(disabled_by(&on, Some(&source)).await.as_deref(), Some("disabled by ConfigMap b, a"));
        let off = Objects::default().with(cm("a", "true")).with(cm("b", "false"));
        assert_eq!(disabled_by(&off, Some(&source)).await, None);
        assert_eq!(disabled_by(&Objects::default(), Some(&source)).await, None, "a missing ConfigMap enables");
        assert_eq!(disabled_by(&on, None).await, None);
    }

    #[test]
    fn references_name_each_object_once() {
        let restart =
            RestartOnSpec { file_watches: vec!["fw".into()], ui_buttons: vec!["b".into()], ..Default::default() };
        let start = StartOnSpec { ui_buttons: vec!["b".into()], ui_resources: vec!["db".into()], ..Default::default() };
        let refs = references(Some(&restart), Some(&start), None);
        assert_eq!(
            refs,
            [Reference::new("FileWatch", "fw"), Reference::new("UIButton", "b"), Reference::new("UIResource", "db")]
        );
    }
}
