//! The CmdImage controller (Tiltfile `custom_build`) against a real API server and, for images the command
//! leaves in the local Docker, the fake Docker engine: the environment and directory the command runs with,
//! the reference it reports (expected, fixed tag, `outputs_image_ref_to`, content tag), the ImageMap status,
//! failures in status and log, and reruns on FileWatch events.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tilt_apis::{
    CmdImage, CmdImageOutputMode, CmdImageSpec, CmdImageStatus, FileWatch, FileWatchSpec, ImageMap, ImageMapSpec,
    RestartOnSpec,
};
use tilt_apiserver::{ApiServer, Config, Registry};
use tilt_controllers::cmdimage::{self, CmdImageConfig};
use tilt_controllers::dockerimage::DockerConfig;
use tilt_controllers::logs::LogStore;
use tilt_controllers::process::reaper::Reaper;
use tilt_fixtures::docker::FakeDocker;
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
    async fn start(docker_host: String) -> Env {
        let server = ApiServer::start(Registry::tilt(), Config::default()).await.unwrap();
        let client = tilt_fixtures::tilt_client(&server).await;
        let logs = Arc::new(LogStore::default());
        let shutdown = CancellationToken::new();
        let dir = tempfile::tempdir().unwrap();
        let controller = tokio::spawn(cmdimage::run(
            tilt_controllers::runtime::Informers::new(client.clone(), shutdown.clone()),
            shutdown.clone(),
            logs.clone(),
            Arc::new(Reaper::disabled()),
            CmdImageConfig { docker: DockerConfig { host: docker_host }, default_dir: dir.path().to_path_buf() },
        ));
        Env { _server: server, client, logs, shutdown, controller: Some(controller), dir }
    }

    fn images(&self) -> Api<CmdImage> {
        Api::all(self.client.clone())
    }

    fn image_maps(&self) -> Api<ImageMap> {
        Api::all(self.client.clone())
    }

    fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).to_string_lossy().into_owned()
    }

    async fn create(&self, name: &str, image_map: &str, spec: CmdImageSpec) {
        if self.image_maps().get_opt(image_map).await.unwrap().is_none() {
            let im = ImageMap::new(image_map, ImageMapSpec { selector: spec.ref_.clone(), ..Default::default() });
            self.image_maps().create(&PostParams::default(), &im).await.unwrap();
        }
        let mut ci = CmdImage::new(name, CmdImageSpec { image_map: image_map.into(), ..spec });
        ci.metadata.annotations = Some([("tilt.dev/resource".to_owned(), "app".to_owned())].into());
        self.images().create(&PostParams::default(), &ci).await.unwrap();
    }

    /// Waits for the next completed build after `after` (a `finishedAt`), and returns its status.
    async fn completed_after(&self, name: &str, after: Option<jiff::Timestamp>) -> CmdImageStatus {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(s) = self.images().get(name).await.unwrap().status
                && finished(&s).is_some_and(|f| after.is_none_or(|a| f > a))
            {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{name}: no completed build; status {:?}", self.images().get(name).await.unwrap().status);
    }

    async fn image_map_image(&self, name: &str) -> String {
        self.image_maps().get(name).await.unwrap().status.map(|s| s.image).unwrap_or_default()
    }

    fn log_texts(&self) -> Vec<String> {
        self.logs.lines(&["app".into()], 0).into_iter().map(|l| l.text).collect()
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(c) = self.controller.take() {
            tokio::time::timeout(Duration::from_secs(5), c).await.expect("controller stops").unwrap();
        }
    }
}

fn finished(s: &CmdImageStatus) -> Option<jiff::Timestamp> {
    s.completed.as_ref().and_then(|c| c.finished_at.as_ref()).map(|f| f.0)
}

fn error_of(s: &CmdImageStatus) -> &str {
    s.completed.as_ref().map(|c| c.error.as_str()).unwrap_or("")
}

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

#[tokio::test]
async fn runs_the_command_with_the_expected_ref_and_publishes_it() {
    let env = Env::start("unix:///nonexistent/docker.sock".into()).await;
    std::fs::create_dir_all(env.path("build")).unwrap();
    let spec = CmdImageSpec {
        ref_: "gcr.io/p/app".into(),
        args: sh(
            "echo \"$EXPECTED_REF|$EXPECTED_REGISTRY|$EXPECTED_IMAGE|$EXPECTED_TAG|$MODE\" > seen.txt; echo hello",
        ),
        dir: env.path("build"),
        env: vec!["MODE=fast".into()],
        output_mode: Some(CmdImageOutputMode::Remote),
        ..Default::default()
    };
    env.create("app:gcr.io_p_app", "gcr.io_p_app", spec).await;
    let status = env.completed_after("app:gcr.io_p_app", None).await;
    assert_eq!(error_of(&status), "", "{status:?}");
    assert!(status.ref_.starts_with("gcr.io/p/app:tilt-build-"), "{}", status.ref_);
    let tag = status.ref_.rsplit_once(':').unwrap().1;
    let seen = std::fs::read_to_string(env.path("build/seen.txt")).unwrap();
    assert_eq!(seen.trim(), format!("{}||gcr.io/p/app|{tag}|fast", status.ref_));
    assert_eq!(status.completed.as_ref().unwrap().reason, "Initial Build");
    assert_eq!(env.image_map_image("gcr.io_p_app").await, status.ref_);
    let logs = env.log_texts();
    assert!(logs.iter().any(|l| l == "hello"), "{logs:?}");
    assert!(logs.iter().any(|l| l.contains(&format!("EXPECTED_REF={}", status.ref_))), "{logs:?}");
    env.stop().await;
}

#[tokio::test]
async fn a_fixed_tag_or_the_ref_file_names_the_image() {
    let env = Env::start("unix:///nonexistent/docker.sock".into()).await;
    let fixed = CmdImageSpec {
        ref_: "app".into(),
        args: sh("test \"$EXPECTED_REF\" = app:dev"),
        output_tag: "dev".into(),
        output_mode: Some(CmdImageOutputMode::Remote),
        ..Default::default()
    };
    env.create("app:app", "app", fixed).await;
    let status = env.completed_after("app:app", None).await;
    assert_eq!(error_of(&status), "", "{status:?}");
    assert_eq!(status.ref_, "app:dev");

    let ref_file = env.path("ref.txt");
    std::fs::write(&ref_file, "stale:old\n").unwrap();
    let from_file = CmdImageSpec {
        ref_: "other".into(),
        args: sh("test ! -e ref.txt && echo registry.example:5000/other:custom > ref.txt"),
        outputs_image_ref_to: ref_file.clone(),
        output_mode: Some(CmdImageOutputMode::Remote),
        ..Default::default()
    };
    env.create("app:other", "other", from_file).await;
    let status = env.completed_after("app:other", None).await;
    assert_eq!(error_of(&status), "", "the stale file is removed before the run: {status:?}");
    assert_eq!(status.ref_, "registry.example:5000/other:custom");
    assert_eq!(env.image_map_image("other").await, "registry.example:5000/other:custom");
    env.stop().await;
}

#[tokio::test]
async fn a_failing_command_is_a_build_error_with_its_output_in_the_log() {
    let env = Env::start("unix:///nonexistent/docker.sock".into()).await;
    let spec = CmdImageSpec {
        ref_: "app".into(),
        args: sh("echo compiling; echo broken >&2; exit 3"),
        output_mode: Some(CmdImageOutputMode::Remote),
        ..Default::default()
    };
    env.create("app:app", "app", spec).await;
    let status = env.completed_after("app:app", None).await;
    assert_eq!(error_of(&status), "Custom build command failed: exit status 3");
    assert_eq!(status.ref_, "");
    assert_eq!(env.image_map_image("app").await, "", "no image published");
    let logs = env.log_texts();
    assert!(logs.iter().any(|l| l == "broken"), "{logs:?}");
    assert!(logs.iter().any(|l| l.contains("Build Failed: Custom build command failed: exit status 3")), "{logs:?}");
    env.stop().await;
}

#[tokio::test]
async fn a_local_docker_image_must_exist_and_is_tagged_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeDocker::start(dir.path()).await.unwrap();
    let env = Env::start(fake.docker_host()).await;
    let ctx = env.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(Path::new(&ctx).join("Dockerfile"), "FROM scratch\n").unwrap();
    // What a build script does: `docker build -t $EXPECTED_REF`, here straight to the engine's API.
    let script = format!(
        "tar -cf - -C {ctx} . | curl -sf --unix-socket {} -X POST -H 'Content-Type: application/x-tar' \
         --data-binary @- \"http://docker/build?t=$EXPECTED_REF\" > /dev/null",
        fake.socket_path().display()
    );
    let spec = CmdImageSpec { ref_: "app".into(), args: sh(&script), ..Default::default() };
    env.create("app:app", "app", spec).await;
    let status = env.completed_after("app:app", None).await;
    assert_eq!(error_of(&status), "", "{status:?}");
    let id = fake.builds()[0].image_id.clone().expect("built");
    let hex = &id["sha256:".len().."sha256:".len() + 16];
    assert_eq!(status.ref_, format!("app:tilt-{hex}"));
    assert!(fake.images().iter().any(|i| i.ends_with(&format!("app:tilt-{hex}"))), "{:?}", fake.images());

    let missing = CmdImageSpec { ref_: "ghost".into(), args: sh("true"), ..Default::default() };
    env.create("app:ghost", "ghost", missing).await;
    let status = env.completed_after("app:ghost", None).await;
    assert!(error_of(&status).contains("Could not find image ghost:tilt-build-"), "{status:?}");
    assert!(error_of(&status).contains("skips_local_docker=True"), "{status:?}");
    env.stop().await;
    fake.shutdown().await;
}

#[tokio::test]
async fn reruns_when_a_deps_file_watch_fires() {
    let env = Env::start("unix:///nonexistent/docker.sock".into()).await;
    let fws: Api<FileWatch> = Api::all(env.client.clone());
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    fws.create(
        &PostParams::default(),
        &FileWatch::new("image:app", FileWatchSpec { watched_paths: vec![src.clone()], ..Default::default() }),
    )
    .await
    .unwrap();
    let spec = CmdImageSpec {
        ref_: "app".into(),
        args: sh("echo run >> runs.txt"),
        output_mode: Some(CmdImageOutputMode::Remote),
        restart_on: Some(RestartOnSpec { file_watches: vec!["image:app".into()], ..Default::default() }),
        ..Default::default()
    };
    env.create("app:app", "app", spec).await;
    let first = env.completed_after("app:app", None).await;
    assert_eq!(error_of(&first), "");

    let now = MicroTime(jiff::Timestamp::now());
    let event =
        json!({"status": {"lastEventTime": now, "fileEvents": [{"time": now, "seenFiles": [format!("{src}/a")]}]}});
    fws.patch_status("image:app", &PatchParams::default(), &Patch::Merge(&event)).await.unwrap();
    let second = env.completed_after("app:app", finished(&first)).await;
    assert_eq!(error_of(&second), "");
    assert_eq!(second.completed.as_ref().unwrap().reason, "Changed Files");
    assert_eq!(std::fs::read_to_string(env.path("runs.txt")).unwrap(), "run\nrun\n");
    env.stop().await;
}
