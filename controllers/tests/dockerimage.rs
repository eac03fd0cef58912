//! The DockerImage controller against a real API server and the fake Docker engine (and, when
//! `TILT_TEST_DOCKER_HOST` names one, a real dockerd): the context it sends, the tags and ImageMap status it
//! writes, rebuilds on FileWatch events and trigger clicks, and errors in status.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tilt_apis::{
    DockerImage, DockerImageSpec, DockerImageStatus, FileWatch, FileWatchSpec, IgnoreDef, ImageMap, ImageMapSpec,
    ImageMapStatus, RestartOnSpec, StartOnSpec,
};
use tilt_apiserver::{ApiServer, Config, Registry};
use tilt_controllers::dockerimage::{self, DockerConfig};
use tilt_controllers::logs::LogStore;
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
        let controller = tokio::spawn(dockerimage::run(
            tilt_controllers::runtime::Informers::new(client.clone(), shutdown.clone()),
            shutdown.clone(),
            logs.clone(),
            DockerConfig { host: docker_host },
        ));
        Env { _server: server, client, logs, shutdown, controller: Some(controller), dir: tempfile::tempdir().unwrap() }
    }

    fn images(&self) -> Api<DockerImage> {
        Api::all(self.client.clone())
    }

    fn image_maps(&self) -> Api<ImageMap> {
        Api::all(self.client.clone())
    }

    /// A build context under the temp dir with the given files.
    fn context(&self, name: &str, files: &[(&str, &str)]) -> String {
        let root = self.dir.path().join(name);
        for (path, data) in files {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        std::fs::create_dir_all(&root).unwrap();
        root.to_string_lossy().into_owned()
    }

    async fn create(&self, name: &str, image_map: &str, spec: DockerImageSpec) {
        if self.image_maps().get_opt(image_map).await.unwrap().is_none() {
            let im = ImageMap::new(image_map, ImageMapSpec { selector: spec.ref_.clone(), ..Default::default() });
            self.image_maps().create(&PostParams::default(), &im).await.unwrap();
        }
        let mut di = DockerImage::new(name, DockerImageSpec { image_map: image_map.into(), ..spec });
        di.metadata.annotations = Some([("tilt.dev/resource".to_owned(), "app".to_owned())].into());
        self.images().create(&PostParams::default(), &di).await.unwrap();
    }

    /// Waits until the DockerImage's status satisfies `check`, and returns it.
    async fn status(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        check: impl Fn(&DockerImageStatus) -> bool,
    ) -> DockerImageStatus {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(s) = self.images().get(name).await.unwrap().status
                && check(&s)
            {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{name}: timed out waiting for {what}; status {:?}", self.images().get(name).await.unwrap().status);
    }

    /// Waits for the next completed build after `after` (a `finishedAt`), and returns its status.
    async fn completed_after(&self, name: &str, after: Option<jiff::Timestamp>) -> DockerImageStatus {
        self.status(name, "a completed build", Duration::from_secs(15), |s| {
            s.completed.as_ref().and_then(|c| c.finished_at.as_ref()).is_some_and(|f| after.is_none_or(|a| f.0 > a))
        })
        .await
    }

    async fn image_map_status(&self, name: &str) -> Option<ImageMapStatus> {
        self.image_maps().get(name).await.unwrap().status
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

fn finished(s: &DockerImageStatus) -> Option<jiff::Timestamp> {
    s.completed.as_ref().and_then(|c| c.finished_at.as_ref()).map(|f| f.0)
}

fn error_of(s: &DockerImageStatus) -> &str {
    s.completed.as_ref().map(|c| c.error.as_str()).unwrap_or("")
}

/// The `tilt-<16 hex>` tag the controller must derive from `id`.
fn expected_ref(repo: &str, id: &str) -> String {
    format!("{repo}:tilt-{}", &id["sha256:".len().."sha256:".len() + 16])
}

fn file_names(build: &tilt_fixtures::docker::ReceivedBuild) -> BTreeSet<String> {
    build.files.keys().cloned().collect()
}

const DOCKERFILE: &str =
    "FROM scratch AS dev\nARG MODE\nCOPY src /src\nCOPY package.json /\nFROM dev AS prod\nCOPY README.md /\n";

#[tokio::test]
async fn builds_the_filtered_context_with_args_and_target_and_publishes_the_image_map() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeDocker::start(dir.path()).await.unwrap();
    let env = Env::start(fake.docker_host()).await;
    let ctx = env.context(
        "web",
        &[
            ("Dockerfile", DOCKERFILE),
            ("Tiltfile", "docker_build('gcr.io/p/web', '.')"),
            ("src/main.go", "package main"),
            ("src/docs/guide.md", "nested markdown is not matched by *.md"),
            ("package.json", "{}"),
            ("README.md", "top-level markdown is ignored"),
            ("node_modules/left-pad/index.js", "module.exports = 1"),
            (".dockerignore", "node_modules\n*.md\n"),
        ],
    );
    // What config/ emits for docker_build(): the Tiltfile, then .dockerignore lines, with `ignore=`.
    let spec = DockerImageSpec {
        ref_: "gcr.io/p/web".into(),
        dockerfile_contents: DOCKERFILE.into(),
        context: ctx.clone(),
        context_ignores: vec![
            IgnoreDef { base_path: format!("{ctx}/Tiltfile"), patterns: vec![] },
            IgnoreDef { base_path: ctx.clone(), patterns: vec!["node_modules".into(), "*.md".into()] },
        ],
        args: vec!["MODE=dev".into(), "TILT_TEST_UNSET_ARG_X".into()],
        target: "dev".into(),
        extra_tags: vec!["web:ci".into()],
        extra_hosts: vec!["db:10.0.0.7".into(), "cache:10.0.0.8".into()],
        ..Default::default()
    };
    env.create("web:gcr.io_p_web", "gcr.io_p_web", spec).await;
    let status = env.completed_after("web:gcr.io_p_web", None).await;
    assert_eq!(error_of(&status), "", "{status:?}");

    let builds = fake.builds();
    assert_eq!(builds.len(), 1);
    let b = &builds[0];
    let files = file_names(b);
    let expected: BTreeSet<String> =
        ["Dockerfile", ".dockerignore", "src/main.go", "src/docs/guide.md", "package.json"].map(String::from).into();
    assert_eq!(files, expected, "Tiltfile, node_modules and top-level *.md are left out");
    assert!(b.dirs.contains("src") && !b.dirs.contains("node_modules"), "{:?}", b.dirs);
    assert_eq!(b.dockerfile, "Dockerfile", "the context's own Dockerfile has the same text");
    assert_eq!(b.files["src/main.go"], b"package main");
    assert_eq!(b.buildargs.get("MODE"), Some(&Some("dev".to_owned())));
    assert!(!b.buildargs.contains_key("TILT_TEST_UNSET_ARG_X"), "a bare arg unset in the environment is not sent");
    assert_eq!(b.target, "dev");
    assert_eq!(b.extra_hosts, ["db:10.0.0.7", "cache:10.0.0.8"]);

    let id = b.image_id.clone().expect("built");
    let reference = expected_ref("gcr.io/p/web", &id);
    assert_eq!(status.ref_, reference);
    let completed = status.completed.as_ref().unwrap();
    assert_eq!(completed.reason, "Initial Build");
    assert!(completed.started_at.as_ref().unwrap().0 <= completed.finished_at.as_ref().unwrap().0);
    let steps: Vec<&str> = status.stage_statuses.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        steps,
        [
            "Step 1/4 : FROM scratch AS dev",
            "Step 2/4 : ARG MODE",
            "Step 3/4 : COPY src /src",
            "Step 4/4 : COPY package.json /"
        ]
    );
    assert!(status.stage_statuses.iter().all(|s| s.finished_at.is_some() && s.error.is_empty()));
    assert!(fake.images().contains(&reference), "{:?}", fake.images());
    assert!(fake.images().contains(&"web:ci".to_owned()), "extra tags: {:?}", fake.images());

    let im = env.image_map_status("gcr.io_p_web").await.expect("ImageMap status");
    assert_eq!(im.image, reference);
    assert_eq!(im.image_from_local, reference);
    assert_eq!(im.image_from_cluster, reference);
    assert_eq!(im.build_start_time, completed.started_at);

    let logs = env.log_texts();
    assert!(logs.iter().any(|l| l.starts_with("Building Dockerfile for gcr.io/p/web")), "{logs:?}");
    assert!(logs.iter().any(|l| l == "Step 3/4 : COPY src /src"), "{logs:?}");
    assert!(logs.iter().any(|l| l.starts_with("Successfully built ")), "{logs:?}");
    assert!(logs.iter().any(|l| *l == format!("Tagged {reference}")), "{logs:?}");
    env.stop().await;
    fake.shutdown().await;
}

#[tokio::test]
async fn only_sends_the_listed_paths_and_a_different_dockerfile_under_its_own_name() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeDocker::start(dir.path()).await.unwrap();
    let env = Env::start(fake.docker_host()).await;
    let ctx = env.context(
        "api",
        &[
            ("Dockerfile", "FROM scratch\nCOPY . /\n"),
            ("src/a/b.rs", "b"),
            ("src/c.rs", "c"),
            ("Cargo.toml", "[package]"),
            ("target/debug/big", "binary"),
            ("notes.txt", "not listed"),
        ],
    );
    let dockerfile = "FROM scratch\nCOPY src /src\nCOPY Cargo.toml /\n";
    let spec = DockerImageSpec {
        ref_: "api:v1".into(),
        dockerfile_contents: dockerfile.into(),
        context: ctx.clone(),
        // docker_build(only=['src', 'Cargo.toml']) as config/ encodes it.
        context_ignores: vec![IgnoreDef {
            base_path: ctx.clone(),
            patterns: vec!["**".into(), "!src".into(), "!Cargo.toml".into()],
        }],
        ..Default::default()
    };
    env.create("api:api", "api", spec).await;
    let status = env.completed_after("api:api", None).await;
    assert_eq!(error_of(&status), "", "{status:?}");
    let b = &fake.builds()[0];
    let name = b.dockerfile.clone();
    assert!(name.starts_with(".dockerfile."), "{name}");
    assert_eq!(b.dockerfile_contents.as_deref(), Some(dockerfile));
    let expected: BTreeSet<String> =
        ["src/a/b.rs", "src/c.rs", "Cargo.toml", name.as_str(), ".dockerignore"].map(String::from).into();
    assert_eq!(file_names(b), expected);
    assert_eq!(
        String::from_utf8_lossy(&b.files[".dockerignore"]),
        format!("{name}\n.dockerignore\n"),
        "the daemon drops the added Dockerfile from the context"
    );
    // The tag replaces the ref's own tag, keeping the repository.
    assert_eq!(status.ref_, expected_ref("api", b.image_id.as_ref().unwrap()));
    env.stop().await;
    fake.shutdown().await;
}

#[tokio::test]
async fn file_events_and_trigger_clicks_rebuild_with_content_based_tags() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeDocker::start(dir.path()).await.unwrap();
    let env = Env::start(fake.docker_host()).await;
    let ctx = env.context("app", &[("Dockerfile", "FROM scratch\nCOPY main.go /\n"), ("main.go", "v1")]);
    let fws: Api<FileWatch> = Api::all(env.client.clone());
    fws.create(
        &PostParams::default(),
        &FileWatch::new("image:app", FileWatchSpec { watched_paths: vec![ctx.clone()], ..Default::default() }),
    )
    .await
    .unwrap();
    let buttons: Api<tilt_apis::UIButton> = Api::all(env.client.clone());
    let button: tilt_apis::UIButton = serde_json::from_value(json!({
        "apiVersion": "tilt.dev/v1alpha1", "kind": "UIButton", "metadata": {"name": "app:trigger"},
        "spec": {"location": {"componentID": "app", "componentType": "Resource"}, "text": "Trigger"},
    }))
    .unwrap();
    buttons.create(&PostParams::default(), &button).await.unwrap();
    let spec = DockerImageSpec {
        ref_: "app".into(),
        dockerfile_contents: "FROM scratch\nCOPY main.go /\n".into(),
        context: ctx.clone(),
        restart_on: Some(RestartOnSpec {
            file_watches: vec!["image:app".into()],
            ui_buttons: vec!["app:trigger".into()],
            cmds: vec![],
        }),
        ..Default::default()
    };
    env.create("app:app", "app", spec).await;
    let first = env.completed_after("app:app", None).await;
    assert_eq!(error_of(&first), "");
    let ref1 = first.ref_.clone();

    // A file change, then the FileWatch event: a rebuild with a new tag.
    std::fs::write(Path::new(&ctx).join("main.go"), "v2").unwrap();
    let now = MicroTime(jiff::Timestamp::now());
    let event = json!({"status": {"lastEventTime": now, "fileEvents": [{"time": now, "seenFiles": [format!("{ctx}/main.go")]}]}});
    fws.patch_status("image:app", &PatchParams::default(), &Patch::Merge(&event)).await.unwrap();
    let second = env.completed_after("app:app", finished(&first)).await;
    assert_eq!(error_of(&second), "");
    assert_eq!(second.completed.as_ref().unwrap().reason, "Changed Files");
    assert_ne!(second.ref_, ref1, "new content, new tag");
    let builds = fake.builds();
    assert_eq!(builds.len(), 2);
    assert_eq!(builds[1].files["main.go"], b"v2");
    assert_eq!(env.image_map_status("app").await.unwrap().image, second.ref_);

    // The same status written again is no new event.
    fws.patch_status("image:app", &PatchParams::default(), &Patch::Merge(json!({"status": {"error": ""}})))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.builds().len(), 2);

    // A click rebuilds; unchanged content keeps the tag.
    let click = json!({"status": {"lastClickedAt": MicroTime(jiff::Timestamp::now())}});
    buttons.patch_status("app:trigger", &PatchParams::default(), &Patch::Merge(&click)).await.unwrap();
    let third = env.completed_after("app:app", finished(&second)).await;
    assert_eq!(third.completed.as_ref().unwrap().reason, "Manual Trigger");
    assert_eq!(third.ref_, second.ref_, "same content, same tag");
    assert_eq!(fake.builds().len(), 3);

    // Back to the first content: the first tag again.
    std::fs::write(Path::new(&ctx).join("main.go"), "v1").unwrap();
    let event = json!({"status": {"lastEventTime": MicroTime(jiff::Timestamp::now())}});
    fws.patch_status("image:app", &PatchParams::default(), &Patch::Merge(&event)).await.unwrap();
    let fourth = env.completed_after("app:app", finished(&third)).await;
    assert_eq!(fourth.ref_, ref1);
    env.stop().await;
    fake.shutdown().await;
}

#[tokio::test]
async fn start_on_holds_the_first_build_until_a_click() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeDocker::start(dir.path()).await.unwrap();
    let env = Env::start(fake.docker_host()).await;
    let ctx = env.context("lazy", &[("Dockerfile", "FROM scratch\n")]);
    let buttons: Api<tilt_apis::UIButton> = Api::all(env.client.clone());
    let button: tilt_apis::UIButton = serde_json::from_value(json!({
        "apiVersion": "tilt.dev/v1alpha1", "kind": "UIButton", "metadata": {"name": "lazy:trigger"},
        "spec": {"location": {"componentID": "lazy", "componentType": "Resource"}, "text": "Trigger"},
    }))
    .unwrap();
    buttons.create(&PostParams::default(), &button).await.unwrap();
    let spec = DockerImageSpec {
        ref_: "lazy".into(),
        dockerfile_contents: "FROM scratch\n".into(),
        context: ctx,
        start_on: Some(StartOnSpec { ui_buttons: vec!["lazy:trigger".into()], ..Default::default() }),
        ..Default::default()
    };
    env.create("lazy:lazy", "lazy", spec).await;
    let waiting = env.status("lazy:lazy", "waiting", Duration::from_secs(10), |s| s.waiting.is_some()).await;
    assert_eq!(waiting.waiting.unwrap().reason, "Waiting for a trigger (lazy:trigger)");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(fake.builds().is_empty());
    let click = json!({"status": {"lastClickedAt": MicroTime(jiff::Timestamp::now())}});
    buttons.patch_status("lazy:trigger", &PatchParams::default(), &Patch::Merge(&click)).await.unwrap();
    let done = env.completed_after("lazy:lazy", None).await;
    assert_eq!(error_of(&done), "");
    assert!(done.waiting.is_none());
    assert_eq!(fake.builds().len(), 1);
    env.stop().await;
    fake.shutdown().await;
}

#[tokio::test]
async fn dockerfile_and_context_errors_are_in_status_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeDocker::start(dir.path()).await.unwrap();
    let env = Env::start(fake.docker_host()).await;
    let ctx = env.context("bad", &[("Dockerfile", "x"), ("README.md", "ignored")]);
    let bad = DockerImageSpec {
        ref_: "bad".into(),
        dockerfile_contents: "FROM scratch\nFROBNICATE /x\n".into(),
        context: ctx.clone(),
        ..Default::default()
    };
    env.create("bad:bad", "bad", bad).await;
    let status = env.completed_after("bad:bad", None).await;
    assert_eq!(error_of(&status), "dockerfile parse error on line 2: unknown instruction: FROBNICATE");
    assert!(status.ref_.is_empty());
    assert!(env.image_map_status("bad").await.is_none_or(|s| s.image.is_empty()), "no image to deploy");
    let logs = env.log_texts();
    assert!(
        logs.iter().any(|l| l == "Build Failed: dockerfile parse error on line 2: unknown instruction: FROBNICATE"),
        "{logs:?}"
    );

    // Fixing the spec rebuilds at once; a source left out by the ignores is the daemon's COPY error.
    let fixed = json!({"spec": {
        "dockerfileContents": "FROM scratch\nCOPY README.md /\n",
        "contextIgnores": [{"basePath": ctx, "patterns": ["*.md"]}],
    }});
    env.images().patch("bad:bad", &PatchParams::default(), &Patch::Merge(&fixed)).await.unwrap();
    let status = env.completed_after("bad:bad", finished(&status)).await;
    assert_eq!(status.completed.as_ref().unwrap().reason, "Config Changed");
    assert_eq!(
        error_of(&status),
        "COPY failed: file not found in build context or excluded by .dockerignore: stat README.md: file does not exist"
    );
    let failed_step = status.stage_statuses.last().unwrap();
    assert_eq!(failed_step.name, "Step 2/2 : COPY README.md /");
    assert_eq!(failed_step.error, error_of(&status));

    // A context directory that does not exist.
    let missing = DockerImageSpec {
        ref_: "gone".into(),
        dockerfile_contents: "FROM scratch\n".into(),
        context: format!("{ctx}/nope"),
        ..Default::default()
    };
    env.create("gone:gone", "gone", missing).await;
    let status = env.completed_after("gone:gone", None).await;
    assert!(error_of(&status).contains("must be an absolute path to a directory"), "{status:?}");
    env.stop().await;
    fake.shutdown().await;
}

#[tokio::test]
async fn a_missing_daemon_is_an_error_in_status() {
    let env = Env::start("unix:///nonexistent-tilt-test/docker.sock".into()).await;
    let ctx = env.context("app", &[("Dockerfile", "FROM scratch\n")]);
    let spec = DockerImageSpec {
        ref_: "app".into(),
        dockerfile_contents: "FROM scratch\n".into(),
        context: ctx,
        ..Default::default()
    };
    env.create("app:app", "app", spec).await;
    let status = env.completed_after("app:app", None).await;
    let error = error_of(&status);
    assert!(
        error.starts_with("Cannot connect to the Docker daemon at unix:///nonexistent-tilt-test/docker.sock. Is the docker daemon running?"),
        "{error}"
    );
    assert!(env.log_texts().iter().any(|l| l.starts_with("Build Failed: Cannot connect to the Docker daemon")));

    // A socket that exists but has no daemon behind it.
    let dead = env.dir.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    let env2 = Env::start(format!("unix://{}", dead.display())).await;
    let ctx = env2.context("app", &[("Dockerfile", "FROM scratch\n")]);
    let spec = DockerImageSpec {
        ref_: "app".into(),
        dockerfile_contents: "FROM scratch\n".into(),
        context: ctx,
        ..Default::default()
    };
    env2.create("app:app", "app", spec).await;
    let status = env2.completed_after("app:app", None).await;
    assert!(error_of(&status).starts_with("Cannot connect to the Docker daemon at unix://"), "{status:?}");
    env2.stop().await;
    env.stop().await;
}

/// Builds `FROM scratch` + busybox through the controller against the real dockerd that `.ci/run` starts.
#[tokio::test]
async fn real_docker_build() {
    let Ok(host) = std::env::var("TILT_TEST_DOCKER_HOST") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("TILT_TEST_DOCKER_HOST is unset under CI=true: .ci/run must start dockerd for this test");
        }
        eprintln!("skipping real_docker_build: TILT_TEST_DOCKER_HOST is unset (.ci/run starts a dockerd and sets it)");
        return;
    };
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static is installed");
    let env = Env::start(host.clone()).await;
    let ctx = env.context("real", &[("Dockerfile", "unused"), ("skip.log", "ignored")]);
    std::fs::copy(busybox, Path::new(&ctx).join("busybox")).unwrap();
    let repo = format!("tilt-rs-test/busybox-{}", std::process::id());
    let spec = DockerImageSpec {
        ref_: repo.clone(),
        dockerfile_contents: "FROM scratch\nARG GREETING=none\nLABEL greeting=$GREETING\nCOPY busybox /busybox\n"
            .into(),
        context: ctx.clone(),
        context_ignores: vec![IgnoreDef { base_path: ctx.clone(), patterns: vec!["*.log".into()] }],
        args: vec!["GREETING=hello".into()],
        ..Default::default()
    };
    env.create("real:real", "real", spec.clone()).await;
    let status =
        env.status("real:real", "a completed build", Duration::from_secs(120), |s| s.completed.is_some()).await;
    assert_eq!(error_of(&status), "", "logs: {:?}", env.log_texts());
    assert!(status.ref_.starts_with(&format!("{repo}:tilt-")), "{}", status.ref_);
    assert_eq!(env.image_map_status("real").await.unwrap().image, status.ref_);
    let logs = env.log_texts();
    assert!(logs.iter().any(|l| l == "Step 4/4 : COPY busybox /busybox"), "{logs:?}");

    // The same content again is the same image, so the same tag.
    env.create("again:real", "real", spec).await;
    let again =
        env.status("again:real", "a completed build", Duration::from_secs(120), |s| s.completed.is_some()).await;
    assert_eq!(error_of(&again), "");
    assert_eq!(again.ref_, status.ref_);

    // The daemon has the image under the content-based tag, with the build arg applied.
    let docker = bollard::Docker::connect_with_unix(&host, 60, bollard::API_DEFAULT_VERSION).unwrap();
    let image = docker.inspect_image(&status.ref_).await.unwrap();
    let id = image.id.clone().unwrap();
    assert_eq!(status.ref_, expected_ref(&repo, &id));
    let labels = image.config.and_then(|c| c.labels).unwrap_or_default();
    assert_eq!(labels.get("greeting").map(String::as_str), Some("hello"));
    let _ = docker
        .remove_image(
            &id,
            Some(bollard::query_parameters::RemoveImageOptions { force: true, ..Default::default() }),
            None,
        )
        .await;
    env.stop().await;
}
