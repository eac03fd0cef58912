//! What the web UI shows of a resource beyond its update and runtime status: build history and the build
//! in progress, pid or pod, endpoints, targets and trigger mode; and the whole status of the Tiltfile's
//! own resource, made from the Tiltfile object.

use kube::ResourceExt;
use tilt_apis::{
    CMD_STOPPED_REASON, DisableResourceStatus, Forward, LINKS_ANNOTATION, PORT_FORWARDS_ANNOTATION, RuntimeStatus,
    TRIGGER_MODE_ANNOTATION, Tiltfile, UIBuildRunning, UIBuildTerminated, UIResource, UIResourceKubernetes,
    UIResourceLink, UIResourceLocal, UIResourceStatus, UIResourceTargetSpec, UIResourceTargetType, UpdateStatus,
};

use super::{Objects, condition};
use crate::logs::span_id;

/// Builds kept in a resource's history.
pub const HISTORY: usize = 10;

/// Adds `build` to the front of `history` unless a build of the same span that started at the same time is
/// already there (then it replaces it: its result may have changed).
fn record(history: &mut Vec<UIBuildTerminated>, build: UIBuildTerminated) {
    if build.start_time.is_none() {
        return;
    }
    let same = |b: &UIBuildTerminated| b.span_id == build.span_id && b.start_time == build.start_time;
    match history.iter_mut().find(|b| same(b)) {
        Some(old) => *old = build,
        None => history.insert(0, build),
    }
    history.sort_by(|a, b| b.start_time.as_ref().map(|t| t.0).cmp(&a.start_time.as_ref().map(|t| t.0)));
    history.truncate(HISTORY);
}

/// The links of `res`: its `links=` and its port forwards.
fn endpoints(res: &UIResource) -> Vec<UIResourceLink> {
    let mut links: Vec<UIResourceLink> =
        res.annotations().get(LINKS_ANNOTATION).and_then(|l| serde_json::from_str(l).ok()).unwrap_or_default();
    let forwards: Vec<Forward> =
        res.annotations().get(PORT_FORWARDS_ANNOTATION).and_then(|f| serde_json::from_str(f).ok()).unwrap_or_default();
    for f in forwards.iter().filter(|f| f.local_port > 0) {
        let host = if f.host.is_empty() { "localhost" } else { f.host.as_str() };
        let path = if f.path.is_empty() || f.path.starts_with('/') { f.path.clone() } else { format!("/{}", f.path) };
        links.push(UIResourceLink { url: format!("http://{host}:{}{path}", f.local_port), name: f.name.clone() });
    }
    links
}

/// Fills the details of `status` (already summarized) of resource `res` from its objects.
pub fn describe(res: &UIResource, objects: &Objects<'_>, status: &mut UIResourceStatus) {
    let name = res.name_any();
    status.trigger_mode = res.annotations().get(TRIGGER_MODE_ANNOTATION).and_then(|m| m.parse().ok()).unwrap_or(0);
    status.endpoint_links = endpoints(res);
    let cmd = |suffix: &str| objects.cmds.iter().copied().find(|c| c.name_any() == format!("{name}:{suffix}"));
    let (update, serve) = (cmd("update"), cmd("serve"));

    let mut specs = Vec::new();
    let target = |id: String, t| UIResourceTargetSpec { id, type_: Some(t), has_live_update: false };
    specs.extend(objects.images.iter().map(|i| target(format!("image:{}", i.name), UIResourceTargetType::Image)));
    if !objects.applies.is_empty() {
        specs.push(target(format!("k8s:{name}"), UIResourceTargetType::Kubernetes));
    }
    if update.is_some() || serve.is_some() {
        specs.push(target(format!("local:{name}"), UIResourceTargetType::Local));
        let pid = serve.and_then(|c| c.status.as_ref()?.running.as_ref()).map(|r| i64::from(r.pid)).unwrap_or(0);
        status.local_resource_info = Some(UIResourceLocal { pid, is_test: false });
    } else {
        status.local_resource_info = None;
    }
    status.specs = specs;

    // The build in progress, and finished builds into the history.
    let mut current: Option<UIBuildRunning> = None;
    let mut history = std::mem::take(&mut status.build_history);
    if let Some(c) = update {
        let span = span_id(&name, &format!("cmd/{}", c.name_any()));
        let s = c.status.clone().unwrap_or_default();
        if let Some(r) = &s.running {
            current = Some(UIBuildRunning { start_time: r.started_at.clone(), span_id: span.clone() });
        }
        if let Some(t) = s.terminated.filter(|t| t.reason != CMD_STOPPED_REASON) {
            let error = match (t.exit_code, t.reason.as_str()) {
                (0, "") => String::new(),
                (code, "") => format!("exit status {code}"),
                (_, reason) => reason.to_string(),
            };
            let build = UIBuildTerminated {
                error,
                start_time: t.started_at,
                finish_time: t.finished_at,
                span_id: span,
                ..Default::default()
            };
            record(&mut history, build);
        }
    }
    for image in &objects.images {
        let span = span_id(&name, &format!("{}/{}", image.kind.to_lowercase(), image.name));
        if let Some(started_at) = &image.building {
            current = Some(UIBuildRunning { start_time: started_at.clone(), span_id: span.clone() });
        }
        if let Some(c) = image.completed.clone() {
            let build = UIBuildTerminated {
                error: c.error,
                start_time: c.started_at,
                finish_time: c.finished_at,
                span_id: span,
                ..Default::default()
            };
            record(&mut history, build);
        }
    }
    for apply in &objects.applies {
        let s = apply.status.clone().unwrap_or_default();
        let build = UIBuildTerminated {
            error: s.error,
            start_time: s.last_apply_start_time.or(s.last_apply_time.clone()),
            finish_time: s.last_apply_time,
            span_id: span_id(&name, "kubernetesapply"),
            ..Default::default()
        };
        record(&mut history, build);
    }
    status.build_history = history;
    status.current_build = current;

    status.k8s_resource_info =
        objects.discoveries.iter().filter_map(|d| tilt_apis::newest_pod(&d.status.as_ref()?.pods)).next().map(|pod| {
            UIResourceKubernetes {
                pod_name: pod.name.clone(),
                pod_creation_time: pod.created_at.clone(),
                pod_status: pod.status.clone(),
                pod_status_message: pod.errors.join("; "),
                all_containers_ready: !pod.containers.is_empty() && pod.containers.iter().all(|c| c.ready),
                pod_restarts: pod.containers.iter().map(|c| c.restarts).sum(),
                display_names: vec![pod.name.clone()],
                ..Default::default()
            }
        });
}

/// The status of the Tiltfile's own resource: its loads are its builds; it has no runtime.
pub fn summarize_tiltfile(tf: &Tiltfile, previous: &UIResourceStatus) -> UIResourceStatus {
    let name = tf.name_any();
    let span = span_id(&name, "tiltfile");
    let s = tf.status.clone().unwrap_or_default();
    let mut history = previous.build_history.clone();
    if let Some(t) = &s.terminated {
        let build = UIBuildTerminated {
            error: t.error.clone(),
            start_time: t.started_at.clone(),
            finish_time: t.finished_at.clone(),
            span_id: span.clone(),
            ..Default::default()
        };
        record(&mut history, build);
    }
    let current = s.running.as_ref().map(|r| UIBuildRunning { start_time: r.started_at.clone(), span_id: span });
    let (update, message) = match (&current, &s.terminated) {
        (Some(_), _) => (UpdateStatus::InProgress, "loading the Tiltfile".to_string()),
        (None, Some(t)) if !t.error.is_empty() => (UpdateStatus::Error, t.error.lines().next().unwrap_or("").into()),
        (None, Some(_)) => (UpdateStatus::Ok, String::new()),
        (None, None) => (UpdateStatus::Pending, "waiting to load the Tiltfile".into()),
    };
    let ok = update == UpdateStatus::Ok;
    let reason = match update {
        UpdateStatus::Error => "Error",
        UpdateStatus::InProgress => "InProgress",
        _ => "Waiting",
    };
    UIResourceStatus {
        update_status: Some(update),
        runtime_status: Some(RuntimeStatus::NotApplicable),
        last_deploy_time: s.terminated.as_ref().filter(|t| t.error.is_empty()).and_then(|t| t.finished_at.clone()),
        build_history: history,
        current_build: current,
        disable_status: DisableResourceStatus { enabled_count: 1, state: "Enabled".into(), ..Default::default() },
        conditions: vec![
            condition("Ready", ok, reason, &message, &previous.conditions),
            condition("UpToDate", ok, reason, &message, &previous.conditions),
        ],
        ..previous.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use tilt_apis::{Cmd, CmdSpec, CmdStateRunning, CmdStateTerminated, CmdStatus, TiltfileStateTerminated};

    fn at(t: &str) -> Option<MicroTime> {
        Some(MicroTime(t.parse().unwrap()))
    }

    fn cmd(name: &str, status: CmdStatus) -> Cmd {
        let mut c = Cmd::new(name, CmdSpec::default());
        c.status = Some(status);
        c
    }

    #[test]
    fn local_resource_details() {
        let mut res = UIResource::new("api", Default::default());
        res.annotations_mut().insert(TRIGGER_MODE_ANNOTATION.into(), "2".into());
        res.annotations_mut()
            .insert(LINKS_ANNOTATION.into(), r#"[{"url":"http://localhost:8000","name":"web"}]"#.into());
        let update = cmd(
            "api:update",
            CmdStatus {
                terminated: Some(CmdStateTerminated {
                    exit_code: 1,
                    started_at: at("2026-12-04T10:00:00Z"),
                    finished_at: at("2026-12-04T10:00:02Z"),
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
        let serve = cmd(
            "api:serve",
            CmdStatus {
                running: Some(CmdStateRunning { pid: 4242, started_at: at("2026-12-04T10:00:03Z") }),
                ..Default::default()
            },
        );
        let objects = Objects { cmds: vec![&update, &serve], ..Default::default() };
        let mut status = UIResourceStatus::default();
        describe(&res, &objects, &mut status);
        assert_eq!(status.trigger_mode, 2);
        assert_eq!(status.endpoint_links[0].url, "http://localhost:8000");
        assert_eq!(status.local_resource_info.as_ref().unwrap().pid, 4242);
        assert_eq!(status.specs[0].type_, Some(UIResourceTargetType::Local));
        assert_eq!(status.build_history.len(), 1);
        assert_eq!(status.build_history[0].error, "exit status 1");
        assert_eq!(status.build_history[0].span_id, "build:api:cmd/api:update");

        // The same build again is not a new entry; a newer one goes first.
        describe(&res, &objects, &mut status);
        assert_eq!(status.build_history.len(), 1);
        let again = cmd(
            "api:update",
            CmdStatus {
                running: Some(CmdStateRunning { pid: 7, started_at: at("2026-12-04T10:01:00Z") }),
                ..Default::default()
            },
        );
        let objects = Objects { cmds: vec![&again, &serve], ..Default::default() };
        describe(&res, &objects, &mut status);
        assert_eq!(status.current_build.as_ref().unwrap().span_id, "build:api:cmd/api:update");
        assert_eq!(status.build_history.len(), 1, "a running build is not history yet");
    }

    #[test]
    fn the_tiltfile_resource_follows_its_loads() {
        let mut tf = Tiltfile::new("(Tiltfile)", Default::default());
        let status = summarize_tiltfile(&tf, &UIResourceStatus::default());
        assert_eq!(status.update_status, Some(UpdateStatus::Pending));
        tf.status = Some(tilt_apis::TiltfileStatus {
            terminated: Some(TiltfileStateTerminated {
                error: "Traceback: boom\nmore".into(),
                started_at: at("2026-12-04T10:00:00Z"),
                finished_at: at("2026-12-04T10:00:01Z"),
                ..Default::default()
            }),
            ..Default::default()
        });
        let status = summarize_tiltfile(&tf, &status);
        assert_eq!(status.update_status, Some(UpdateStatus::Error));
        assert_eq!(status.build_history.len(), 1);
        assert_eq!(status.conditions[0].message, "Traceback: boom");
        assert_eq!(status.runtime_status, Some(RuntimeStatus::NotApplicable));
    }
}
