//! The Cmd controller against a real API server: start, restart on FileWatch events and spec changes,
//! graceful stop, restart policy, readiness probes and errors in status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tilt_apis::{
    Cmd, CmdSpec, CmdStatus, FileWatch, FileWatchSpec, Probe, RestartOnSpec, RestartPolicy, TcpSocketAction,
};
use tilt_apiserver::{ApiServer, Config, Registry};
use tilt_controllers::cmd::{self, CmdConfig};
use tilt_controllers::logs::LogStore;
use tilt_controllers::process::reaper::Reaper;
use tokio_util::sync::CancellationToken;

struct Env {
    _server: ApiServer,
    client: Client,
    logs: Arc<LogStore>,
    shutdown: CancellationToken,
    controller: Option<tokio::task::JoinHandle<()>>,
    dir: tempfile::TempDir,
}

impl Env {
    async fn start(grace: Duration) -> Env {
        let server = ApiServer::start(Registry::tilt(), Config::default()).await.unwrap();
        let client = tilt_fixtures::tilt_client(&server).await;
        let logs = Arc::new(LogStore::default());
        let dir = tempfile::tempdir().unwrap();
        let shutdown = CancellationToken::new();
        let config = CmdConfig {
            grace,
            shutdown_grace: Duration::from_millis(300),
            default_dir: dir.path().to_path_buf(),
            restart_backoff: Duration::from_millis(100),
        };
        let controller = tokio::spawn(cmd::run(
            tilt_controllers::runtime::Informers::new(client.clone(), shutdown.clone()),
            shutdown.clone(),
            logs.clone(),
            Arc::new(Reaper::disabled()),
            config,
        ));
        Env { _server: server, client, logs, shutdown, controller: Some(controller), dir }
    }

    fn cmds(&self) -> Api<Cmd> {
        Api::all(self.client.clone())
    }

    async fn create(&self, name: &str, spec: CmdSpec) {
        self.cmds().create(&PostParams::default(), &Cmd::new(name, spec)).await.unwrap();
    }

    /// Waits until the Cmd's status satisfies `check`, and returns it.
    async fn status(&self, name: &str, what: &str, check: impl Fn(&CmdStatus) -> bool) -> CmdStatus {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(s) = self.cmds().get(name).await.unwrap().status
                && check(&s)
            {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{name}: timed out waiting for {what}; status {:?}", self.cmds().get(name).await.unwrap().status);
    }

    fn log_texts(&self) -> Vec<String> {
        self.logs.lines(&[], 0).into_iter().map(|l| l.text).collect()
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(c) = self.controller.take() {
            tokio::time::timeout(Duration::from_secs(5), c).await.expect("controller stops").unwrap();
        }
    }
}

fn sh(script: &str) -> CmdSpec {
    CmdSpec { args: vec!["sh".into(), "-c".into(), script.into()], ..Default::default() }
}

fn running_pid(s: &CmdStatus) -> Option<i32> {
    s.running.as_ref().map(|r| r.pid)
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

#[tokio::test]
async fn runs_reports_and_restarts_on_file_watch_events() {
    let env = Env::start(Duration::from_secs(3)).await;
    let fws: Api<FileWatch> = Api::all(env.client.clone());
    fws.create(
        &PostParams::default(),
        &FileWatch::new("src", FileWatchSpec { watched_paths: vec!["/tmp".into()], ..Default::default() }),
    )
    .await
    .unwrap();
    let content = env.dir.path().join("content");
    std::fs::write(&content, "v1").unwrap();
    let mut spec = sh("echo started $(cat content); exec sleep 30");
    spec.restart_on = Some(RestartOnSpec { file_watches: vec!["src".into()], ..Default::default() });
    env.create("server", spec).await;
    let first = env.status("server", "running", |s| s.running.is_some() && s.ready).await;
    let pid1 = running_pid(&first).unwrap();
    assert!(alive(pid1));
    let deadline = Instant::now() + Duration::from_secs(5);
    while env.log_texts().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A FileWatch event restarts it: the old process is gone before the new one starts.
    std::fs::write(&content, "v2").unwrap();
    let event = json!({"status": {"lastEventTime": MicroTime(jiff::Timestamp::now()), "fileEvents": [{"time": MicroTime(jiff::Timestamp::now()), "seenFiles": [content]}]}});
    fws.patch_status("src", &PatchParams::default(), &Patch::Merge(&event)).await.unwrap();
    let second = env.status("server", "a restart", |s| running_pid(s).is_some_and(|p| p != pid1)).await;
    assert!(!alive(pid1), "the old process was stopped");
    let started = |s: &CmdStatus| s.running.as_ref().unwrap().started_at.as_ref().unwrap().0;
    assert!(started(&second) > started(&first));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let texts = env.log_texts();
    assert_eq!(texts, ["started v1", "started v2"], "one restart, and the new process sees the new content");

    // A change of the FileWatch that keeps its lastEventTime reconciles the Cmd but is not a new trigger.
    let before = fws.get("src").await.unwrap().metadata.resource_version;
    let hiccup = json!({"status": {"error": "a watch hiccup"}});
    let after = fws.patch_status("src", &PatchParams::default(), &Patch::Merge(&hiccup)).await.unwrap();
    assert_ne!(after.metadata.resource_version, before, "the FileWatch changed, so the Cmd is looked at again");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(running_pid(&env.cmds().get("server").await.unwrap().status.unwrap()), running_pid(&second));

    // A spec change restarts it too; deleting it stops it.
    let pid2 = running_pid(&second).unwrap();
    env.cmds()
        .patch("server", &PatchParams::default(), &Patch::Merge(json!({"spec": {"env": ["X=1"]}})))
        .await
        .unwrap();
    let third =
        env.status("server", "a restart after a spec change", |s| running_pid(s).is_some_and(|p| p != pid2)).await;
    let pid3 = running_pid(&third).unwrap();
    assert!(!alive(pid2));
    env.cmds().delete("server", &DeleteParams::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid3) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!alive(pid3), "deleting the Cmd stops its process");
    env.stop().await;
}

#[tokio::test]
async fn a_missing_binary_is_a_clear_error_in_status() {
    let env = Env::start(Duration::from_secs(3)).await;
    env.create("broken", CmdSpec { args: vec!["/definitely/not/a/binary".into()], ..Default::default() }).await;
    let s = env.status("broken", "terminated", |s| s.terminated.is_some()).await;
    let t = s.terminated.unwrap();
    assert_eq!(t.exit_code, 127);
    assert!(t.reason.contains("/definitely/not/a/binary") && t.reason.contains("No such file"), "{}", t.reason);
    assert!(!s.ready);
    env.stop().await;
}

#[tokio::test]
async fn deleting_many_stubborn_processes_takes_one_grace_period() {
    // Each ignores SIGTERM, so each stop takes the whole grace period: one at a time, 6 would take 12 s.
    let env = Env::start(Duration::from_secs(2)).await;
    let names: Vec<String> = (0..6).map(|i| format!("stubborn-{i}")).collect();
    for name in &names {
        env.create(name, sh("trap '' TERM; while true; do sleep 0.1; done")).await;
    }
    let mut pids = Vec::new();
    for name in &names {
        pids.push(running_pid(&env.status(name, "running", |s| s.running.is_some()).await).unwrap());
    }
    let start = Instant::now();
    env.cmds().delete_collection(&DeleteParams::default(), &Default::default()).await.unwrap();
    while pids.iter().any(|p| alive(*p)) && start.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = start.elapsed();
    assert!(pids.iter().all(|p| !alive(*p)), "every process is stopped");
    assert!(took >= Duration::from_secs(2), "each waited its grace period: {took:?}");
    assert!(took < Duration::from_secs(6), "the deletes ran concurrently: {took:?}");
    env.stop().await;
}

#[tokio::test]
async fn a_process_ignoring_sigterm_is_killed_after_the_grace_period() {
    let env = Env::start(Duration::from_millis(500)).await;
    env.create("stubborn", sh("trap '' TERM; echo ready; while true; do sleep 0.1; done")).await;
    let s = env.status("stubborn", "running", |s| s.running.is_some()).await;
    let pid = running_pid(&s).unwrap();
    let start = Instant::now();
    env.cmds()
        .patch("stubborn", &PatchParams::default(), &Patch::Merge(json!({"spec": {"env": ["A=b"]}})))
        .await
        .unwrap();
    let next = env.status("stubborn", "restarted", |s| running_pid(s).is_some_and(|p| p != pid)).await;
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(500), "waited the grace period: {took:?}");
    assert!(took < Duration::from_secs(5), "then killed: {took:?}");
    assert!(!alive(pid));
    assert!(running_pid(&next).is_some());
    env.stop().await;
}

#[tokio::test]
async fn restart_policy_and_exit_codes() {
    let env = Env::start(Duration::from_secs(1)).await;
    env.create("once", sh("exit 3")).await;
    let s = env.status("once", "terminated", |s| s.terminated.is_some()).await;
    assert_eq!(s.terminated.as_ref().unwrap().exit_code, 3);
    assert!(s.terminated.unwrap().reason.contains("code 3"));

    let counter = env.dir.path().join("count");
    let mut spec = sh(&format!("echo x >> {}; exit 1", counter.display()));
    spec.restart_policy = Some(RestartPolicy::OnFailure);
    env.create("flaky", spec).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&counter).unwrap_or_default().lines().count() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(std::fs::read_to_string(&counter).unwrap().lines().count() >= 3, "OnFailure restarts a failing command");

    let done = env.dir.path().join("done");
    let mut spec = sh(&format!("echo x >> {}", done.display()));
    spec.restart_policy = Some(RestartPolicy::OnFailure);
    env.create("succeeds", spec).await;
    let s = env.status("succeeds", "terminated", |s| s.terminated.is_some()).await;
    assert!(s.ready, "a command that ran to completion is ready");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(std::fs::read_to_string(&done).unwrap().lines().count(), 1, "OnFailure does not restart a success");
    env.stop().await;
}

#[tokio::test]
async fn readiness_probe_sets_ready() {
    let env = Env::start(Duration::from_secs(1)).await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut spec = CmdSpec {
        args: vec![
            "python3".into(),
            "-m".into(),
            "http.server".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
        ],
        ..Default::default()
    };
    spec.readiness_probe = Some(Probe {
        tcp_socket: Some(TcpSocketAction { port: port as i32, ..Default::default() }),
        ..Default::default()
    });
    env.create("web", spec).await;
    let s = env.status("web", "running", |s| s.running.is_some()).await;
    let started = Instant::now();
    if !s.ready {
        env.status("web", "ready", |s| s.ready).await;
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    env.stop().await;
}

#[tokio::test]
async fn shutdown_stops_every_process_quickly() {
    let env = Env::start(Duration::from_secs(10)).await;
    let mut pids = Vec::new();
    for i in 0..5 {
        env.create(&format!("p{i}"), sh("trap '' TERM; sleep 30 & wait")).await;
    }
    for i in 0..5 {
        pids.push(running_pid(&env.status(&format!("p{i}"), "running", |s| s.running.is_some()).await).unwrap());
    }
    let start = Instant::now();
    env.stop().await;
    assert!(start.elapsed() < Duration::from_secs(1), "stopped in {:?}", start.elapsed());
    for pid in pids {
        assert!(!alive(pid));
    }
}

#[tokio::test]
async fn a_server_waits_for_its_build_step_and_restarts_after_each_successful_build() {
    use tilt_apis::{StartOnSpec, UIResource};
    let env = Env::start(Duration::from_secs(1)).await;
    let fws: Api<FileWatch> = Api::all(env.client.clone());
    fws.create(
        &PostParams::default(),
        &FileWatch::new("local:b", FileWatchSpec { watched_paths: vec!["/tmp".into()], ..Default::default() }),
    )
    .await
    .unwrap();
    // The server also waits for another resource to be Ready.
    let resources: Api<UIResource> = Api::all(env.client.clone());
    resources.create(&PostParams::default(), &UIResource::new("dep", Default::default())).await.unwrap();
    let mut serve = sh("exec sleep 30");
    serve.start_on =
        Some(StartOnSpec { cmds: vec!["b:update".into()], ui_resources: vec!["dep".into()], ..Default::default() });
    serve.restart_on = Some(RestartOnSpec { cmds: vec!["b:update".into()], ..Default::default() });
    env.create("b:serve", serve).await;
    let w = env.status("b:serve", "waiting", |s| s.waiting.is_some()).await;
    let reason = w.waiting.unwrap().reason;
    assert!(
        reason.contains("b:update to succeed") && reason.contains("resource_deps") && reason.contains("dep"),
        "{reason}"
    );

    let mut build = sh("sleep 0.2; echo built");
    build.restart_on = Some(RestartOnSpec { file_watches: vec!["local:b".into()], ..Default::default() });
    env.create("b:update", build).await;
    env.status("b:update", "the build to succeed", |s| s.terminated.as_ref().is_some_and(|t| t.exit_code == 0)).await;
    let still = env.status("b:serve", "still waiting for dep", |s| s.waiting.is_some()).await;
    assert!(still.waiting.unwrap().reason.contains("resource_deps"));
    let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    resources.patch_status("dep", &PatchParams::default(), &Patch::Merge(&ready)).await.unwrap();
    let first = env.status("b:serve", "running", |s| s.running.is_some()).await;
    let pid1 = running_pid(&first).unwrap();

    // A file change rebuilds; the server restarts only once the build has succeeded again.
    let event = json!({"status": {"lastEventTime": MicroTime(jiff::Timestamp::now())}});
    fws.patch_status("local:b", &PatchParams::default(), &Patch::Merge(&event)).await.unwrap();
    env.status("b:update", "rebuilding", |s| s.running.is_some()).await;
    assert_eq!(
        running_pid(&env.cmds().get("b:serve").await.unwrap().status.unwrap()),
        Some(pid1),
        "not before the build is done"
    );
    let second = env.status("b:serve", "restarted", |s| running_pid(s).is_some_and(|p| p != pid1)).await;
    assert!(running_pid(&second).is_some());
    env.stop().await;
}

/// The controller keeps ConfigMaps no Cmd refers to only as stubs (memory per object); a Cmd that comes to
/// refer to one that already exists still reads its data, and later changes of it still reach the Cmd.
#[tokio::test]
async fn disable_source_config_maps_created_before_their_cmd_are_read() {
    use tilt_apis::{ConfigMap, ConfigMapDisableSource, DisableSource};
    let env = Env::start(Duration::from_secs(1)).await;
    let maps: Api<ConfigMap> = Api::all(env.client.clone());
    let data = |v: &str| [("isDisabled".to_string(), v.to_string())].into_iter().collect();
    maps.create(&PostParams::default(), &ConfigMap::new("off-disable", data("true"))).await.unwrap();
    for i in 0..20 {
        maps.create(&PostParams::default(), &ConfigMap::new(&format!("unrelated-{i}"), data("true"))).await.unwrap();
    }
    // Let the controller see the ConfigMaps while no Cmd refers to them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut spec = sh("exec sleep 30");
    spec.disable_source = Some(DisableSource {
        config_map: Some(ConfigMapDisableSource { name: "off-disable".into(), key: "isDisabled".into() }),
        ..Default::default()
    });
    env.create("off", spec).await;
    let s = env.status("off", "disabled", |s| s.disable_status.as_ref().is_some_and(|d| d.disabled)).await;
    assert!(s.running.is_none(), "a disabled Cmd does not run: {s:?}");
    assert!(s.disable_status.unwrap().reason.contains("off-disable"));
    // Enabling it through the ConfigMap starts it.
    maps.patch("off-disable", &PatchParams::default(), &Patch::Merge(json!({"data": {"isDisabled": "false"}})))
        .await
        .unwrap();
    env.status("off", "running after enabling", |s| s.running.is_some()).await;
    env.stop().await;
}
