//! Issue 17 end to end: `custom_build` + `k8s_yaml` under `tilt ci` against the fixture cluster. The command
//! runs with `$EXPECTED_REF`, the Deployment that names the image is applied with that reference injected,
//! and a failing command fails `tilt ci` naming the resource and the command's exit status.

use std::path::Path;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use tilt_fixtures::cluster::FixtureCluster;

use crate::common::kubeconfig_path;

const DEPLOY: &str = "apiVersion: apps/v1
kind: Deployment
metadata: {name: my-app, labels: {app: my-app}}
spec:
  replicas: 1
  selector: {matchLabels: {app: my-app}}
  template:
    metadata: {labels: {app: my-app}}
    spec:
      containers:
      - {name: app, image: my-image}
";

/// `tilt ci` on a project with `custom_build(…command…)` and the Deployment above, against a fresh fixture
/// cluster: whether it succeeded, its output, the project directory and the cluster.
async fn custom_build_ci(command: &str) -> (bool, String, tempfile::TempDir, FixtureCluster) {
    let home = tempfile::tempdir().unwrap();
    let cluster = FixtureCluster::start().await.unwrap();
    let kubeconfig = kubeconfig_path(home.path());
    std::fs::create_dir_all(kubeconfig.parent().unwrap()).unwrap();
    cluster.write_kubeconfig(&kubeconfig, "fixture").unwrap();
    let project = home.path().join("project");
    std::fs::create_dir_all(project.join("src")).unwrap();
    std::fs::write(project.join("src/main.txt"), "v1").unwrap();
    std::fs::write(project.join("app.yaml"), DEPLOY).unwrap();
    let tiltfile =
        format!("custom_build('my-image', {command:?}, deps=['src'], skips_local_docker=True)\nk8s_yaml('app.yaml')\n");
    std::fs::write(project.join("Tiltfile"), tiltfile).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tilt"))
        .args(["ci", "--port", "0", "--timeout", "60s", "-f"])
        .arg(project.join("Tiltfile"))
        .env("HOME", home.path())
        .env("KUBECONFIG", &kubeconfig)
        .env("DOCKER_HOST", format!("unix://{}", home.path().join("no-docker.sock").display()))
        .env_remove("TILT_CONFIG")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text, home, cluster)
}

fn built_ref(project: &Path) -> String {
    let built = std::fs::read_to_string(project.join("built.txt")).unwrap_or_default();
    built.trim().strip_prefix("built ").unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_build_image_is_deployed_and_a_failing_command_fails_ci() {
    let (ok, out, home, cluster) = custom_build_ci("echo built $EXPECTED_REF > built.txt").await;
    assert!(ok && out.contains("SUCCESS"), "{out}");
    let reference = built_ref(&home.path().join("project"));
    assert!(reference.starts_with("my-image:tilt-build-"), "built.txt: {reference:?}\n{out}");
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    let deployed = deployments.get("my-app").await.unwrap();
    let deployed = serde_json::to_value(&deployed).unwrap();
    let image = &deployed["spec"]["template"]["spec"]["containers"][0]["image"];
    assert_eq!(image.as_str(), Some(reference.as_str()), "the built ref is injected");
    cluster.shutdown().await;

    let (ok, out, _home, cluster) = custom_build_ci("echo about to fail; exit 7").await;
    assert!(!ok, "{out}");
    assert!(out.contains("my-app") && out.contains("exit status 7"), "{out}");
    let (output, failed) = (out.find("about to fail"), out.find("Build Failed"));
    assert!(output.is_some() && output < failed, "the command's output is in the log, before the failure: {out}");
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    assert!(deployments.get_opt("my-app").await.unwrap().is_none(), "nothing deployed without an image");
    cluster.shutdown().await;
}
