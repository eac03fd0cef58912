//! The KubernetesApply and KubernetesDiscovery controllers (and the UIResource summary of them) against a
//! real tilt API server and the fixture cluster, reached through the kube client as a real cluster would be.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap as K8sConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use tilt_apis::{
    DockerImage, DockerImageSpec, Forward, ImageMap, ImageMapSpec, KubernetesApply, KubernetesApplySpec,
    KubernetesDiscovery, PodLogStream, PortForward, PortForwardTemplateSpec, UIResource, UIResourceSpec,
};
use tilt_apiserver::{ApiServer, Config, Registry};
use tilt_controllers::cluster::ClusterConnection;
use tilt_controllers::logs::LogStore;
use tilt_controllers::{kubernetesapply, kubernetesdiscovery, uiresource};
use tilt_fixtures::cluster::FixtureCluster;
use tilt_fixtures::eventually;
use tokio_util::sync::CancellationToken;

struct Env {
    _server: ApiServer,
    cluster: FixtureCluster,
    client: Client,
    logs: Arc<LogStore>,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Env {
    async fn start() -> Env {
        // Controller warnings show in the output of a failing test.
        let _ = tracing_subscriber::fmt().with_env_filter("warn").with_test_writer().try_init();
        let server = ApiServer::start(Registry::tilt(), Config::default()).await.unwrap();
        let client = tilt_fixtures::tilt_client(&server).await;
        let cluster = FixtureCluster::start().await.unwrap();
        let connection = Arc::new(ClusterConnection::with_client(cluster.client()));
        let logs = Arc::new(LogStore::default());
        let shutdown = CancellationToken::new();
        let informers = tilt_controllers::runtime::Informers::new(client.clone(), shutdown.clone());
        let tasks = vec![
            tokio::spawn(kubernetesapply::run(informers.clone(), shutdown.clone(), connection.clone(), logs.clone())),
            tokio::spawn(kubernetesdiscovery::run(informers.clone(), shutdown.clone(), connection)),
            tokio::spawn(uiresource::run(informers.clone(), shutdown.clone())),
        ];
        Env { _server: server, cluster, client, logs, shutdown, tasks }
    }

    fn tilt<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::ClusterResourceScope, DynamicType = ()>,
    {
        Api::all(self.client.clone())
    }

    async fn stop(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        self.cluster.shutdown().await;
    }
}

fn deployment_yaml(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n      - name: web\n        image: {image}\n        ports:\n        - containerPort: 8000\n"
    )
}

const CONFIG_MAP_YAML: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-settings\ndata:\n  mode: dev\n";

fn labelled<K: kube::Resource>(mut object: K, resource: &str) -> K {
    object.meta_mut().labels = Some([("tilt.dev/resource".to_string(), resource.to_string())].into());
    object.meta_mut().annotations = Some([("tilt.dev/resource".to_string(), resource.to_string())].into());
    object
}

/// What the DockerImage controller does after a build: the build's and the ImageMap's status.
async fn set_image(env: &Env, map: &str, image: &str) {
    let now = jiff::Timestamp::now().to_string();
    let built = json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "DockerImage", "status": {
        "ref": image, "completed": {"startedAt": now, "finishedAt": now}}});
    env.tilt::<DockerImage>()
        .patch_status(&format!("app:{map}"), &PatchParams::apply("test").force(), &Patch::Apply(&built))
        .await
        .unwrap();
    let status = json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "ImageMap", "status": {"image": image, "imageFromCluster": image}});
    env.tilt::<ImageMap>()
        .patch_status(map, &PatchParams::apply("test").force(), &Patch::Apply(&status))
        .await
        .unwrap();
}

async fn pod_images(cluster: &Client) -> Vec<(String, String, bool)> {
    let pods: Api<Pod> = Api::namespaced(cluster.clone(), "default");
    pods.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|p| {
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|c| c.iter().all(|c| c.ready));
            let image = p.spec.as_ref().and_then(|s| s.containers[0].image.clone()).unwrap_or_default();
            (p.name_any(), image, ready)
        })
        .collect()
}

#[tokio::test]
async fn deploys_with_built_images_follows_pods_and_deletes_on_removal() {
    let env = Env::start().await;
    let cluster = env.cluster.client();
    env.tilt::<UIResource>()
        .create(&PostParams::default(), &UIResource::new("app", UIResourceSpec::default()))
        .await
        .unwrap();
    env.tilt::<ImageMap>()
        .create(
            &PostParams::default(),
            &labelled(
                ImageMap::new("app-image", ImageMapSpec { selector: "app-image".into(), ..Default::default() }),
                "app",
            ),
        )
        .await
        .unwrap();
    env.tilt::<DockerImage>()
        .create(
            &PostParams::default(),
            &labelled(
                DockerImage::new("app:app-image", DockerImageSpec { ref_: "app-image".into(), ..Default::default() }),
                "app",
            ),
        )
        .await
        .unwrap();
    let spec = KubernetesApplySpec {
        yaml: format!("{}---\n{CONFIG_MAP_YAML}", deployment_yaml("app", "app-image")),
        image_maps: vec!["app-image".into()],
        port_forward_template_spec: Some(PortForwardTemplateSpec {
            forwards: vec![Forward { local_port: 18000, ..Default::default() }],
        }),
        cluster: "default".into(),
        ..Default::default()
    };
    env.tilt::<KubernetesApply>()
        .create(&PostParams::default(), &labelled(KubernetesApply::new("app", spec.clone()), "app"))
        .await
        .unwrap();

    // Nothing is deployed before the image exists, and the resource says why it waits.
    let waiting = eventually("the UIResource to wait for the image", || async {
        let r = env.tilt::<UIResource>().get("app").await.unwrap();
        r.status.and_then(|s| s.waiting)
    })
    .await;
    assert!(waiting.reason.contains("image"), "{waiting:?}");
    let deployments: Api<Deployment> = Api::namespaced(cluster.clone(), "default");
    assert!(deployments.get_opt("app").await.unwrap().is_none());

    set_image(&env, "app-image", "app-image:tilt-1111111111111111").await;
    let applied = eventually("the first apply", || async {
        let ka = env.tilt::<KubernetesApply>().get("app").await.unwrap();
        ka.status.filter(|s| s.last_apply_time.is_some())
    })
    .await;
    assert_eq!(applied.error, "");
    let deployment = deployments.get("app").await.unwrap();
    let container = &deployment.spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(container.image.as_deref(), Some("app-image:tilt-1111111111111111"));
    assert_eq!(container.image_pull_policy.as_deref(), Some("IfNotPresent"));
    assert_eq!(deployment.labels().get("app.kubernetes.io/managed-by").map(String::as_str), Some("tilt"));
    let managers: Vec<String> =
        deployment.metadata.managed_fields.iter().flatten().filter_map(|m| m.manager.clone()).collect();
    assert!(managers.contains(&"tilt".to_string()), "{managers:?}");
    assert!(applied.result_yaml.contains(&deployment.uid().unwrap()), "resultYAML records UIDs");
    assert!(env.logs.lines(&["app".to_string()], 0).iter().any(|l| l.text.contains("deployment/app")));

    // The discovery follows the deployment's pod; log streams and the port forward attach to it.
    let kd = eventually("a ready pod in the discovery", || async {
        let kd = env.tilt::<KubernetesDiscovery>().get_opt("app").await.unwrap()?;
        let pods = kd.status.as_ref()?.pods.clone();
        pods.iter().any(|p| p.containers.iter().all(|c| c.ready) && !p.containers.is_empty()).then_some(kd)
    })
    .await;
    assert_eq!(kd.spec.watches.iter().filter(|w| w.name == "app").count(), 1);
    let first_pod = kd.status.unwrap().pods[0].clone();
    assert_eq!(first_pod.ancestor_uid, deployment.uid().unwrap());
    assert_eq!(first_pod.containers[0].image, "app-image:tilt-1111111111111111");
    let pf = eventually("the port forward", || async { env.tilt::<PortForward>().get_opt("app").await.unwrap() }).await;
    assert_eq!(pf.spec.pod_name, first_pod.name);
    assert_eq!(pf.spec.forwards[0].container_port, 8000, "inferred from the pod");
    eventually("a log stream for the pod", || async {
        env.tilt::<PodLogStream>().get_opt(&format!("app-{}", first_pod.name)).await.unwrap()
    })
    .await;
    eventually("the resource to be Ready", || async {
        let r = env.tilt::<UIResource>().get("app").await.unwrap();
        r.status?.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True").then_some(())
    })
    .await;

    // A new image redeploys; the discovery and the port forward move to the new pod.
    set_image(&env, "app-image", "app-image:tilt-2222222222222222").await;
    let new_pod = eventually("a ready pod with the new image", || async {
        pod_images(&cluster)
            .await
            .into_iter()
            .find(|(_, image, ready)| image.ends_with("tilt-2222222222222222") && *ready)
            .map(|(name, _, _)| name)
    })
    .await;
    eventually("the port forward to move", || async {
        let pf = env.tilt::<PortForward>().get("app").await.unwrap();
        (pf.spec.pod_name == new_pod).then_some(())
    })
    .await;
    eventually("the old pod's log stream to go", || async {
        let gone = env.tilt::<PodLogStream>().get_opt(&format!("app-{}", first_pod.name)).await.unwrap().is_none();
        gone.then_some(())
    })
    .await;

    // An object no longer declared is deleted from the cluster.
    let mut spec2 = spec.clone();
    spec2.yaml = deployment_yaml("app", "app-image");
    env.tilt::<KubernetesApply>()
        .patch(
            "app",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&labelled(KubernetesApply::new("app", spec2), "app")),
        )
        .await
        .unwrap();
    let maps: Api<K8sConfigMap> = Api::namespaced(cluster.clone(), "default");
    eventually("the ConfigMap to be deleted", || async {
        maps.get_opt("app-settings").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(deployments.get_opt("app").await.unwrap().is_some());

    // Deleting the KubernetesApply deletes what it deployed, then the object itself goes.
    env.tilt::<KubernetesApply>().delete("app", &DeleteParams::default()).await.unwrap();
    eventually("the deployment to be deleted", || async {
        deployments.get_opt("app").await.unwrap().is_none().then_some(())
    })
    .await;
    eventually("the KubernetesApply to go", || async {
        env.tilt::<KubernetesApply>().get_opt("app").await.unwrap().is_none().then_some(())
    })
    .await;
    eventually("the discovery to go", || async {
        env.tilt::<KubernetesDiscovery>().get_opt("app").await.unwrap().is_none().then_some(())
    })
    .await;
    // What the discovery declared goes with it: the API server's garbage collector follows their ownerReferences.
    eventually("the port forward and log streams to go", || async {
        let pf = env.tilt::<PortForward>().get_opt("app").await.unwrap();
        let streams = env.tilt::<PodLogStream>().list(&Default::default()).await.unwrap();
        (pf.is_none() && streams.items.is_empty()).then_some(())
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn apply_errors_are_in_status_and_a_fix_applies() {
    let env = Env::start().await;
    let bad = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n";
    env.tilt::<KubernetesApply>()
        .create(
            &PostParams::default(),
            &KubernetesApply::new("bad", KubernetesApplySpec { yaml: bad.into(), ..Default::default() }),
        )
        .await
        .unwrap();
    let status = eventually("an apply error", || async {
        env.tilt::<KubernetesApply>().get("bad").await.unwrap().status.filter(|s| !s.error.is_empty())
    })
    .await;
    assert!(status.error.contains("Widget"), "{}", status.error);

    let fixed = KubernetesApply::new("bad", KubernetesApplySpec { yaml: CONFIG_MAP_YAML.into(), ..Default::default() });
    env.tilt::<KubernetesApply>()
        .patch("bad", &PatchParams::apply("test").force(), &Patch::Apply(&fixed))
        .await
        .unwrap();
    eventually("the fixed apply", || async {
        let s = env.tilt::<KubernetesApply>().get("bad").await.unwrap().status?;
        (s.error.is_empty() && s.result_yaml.contains("app-settings")).then_some(())
    })
    .await;
    let maps: Api<K8sConfigMap> = Api::namespaced(env.cluster.client(), "default");
    assert_eq!(maps.get("app-settings").await.unwrap().data.unwrap()["mode"], "dev");

    // An object of a kind the cluster no longer serves (its CRD deleted since) does not block deletion.
    let applied = env.tilt::<KubernetesApply>().get("bad").await.unwrap().status.unwrap();
    let recorded = format!(
        "{}---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: gone\n  namespace: default\n",
        applied.result_yaml
    );
    let patch = json!({"status": {"resultYAML": recorded}});
    env.tilt::<KubernetesApply>().patch_status("bad", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    env.tilt::<KubernetesApply>().delete("bad", &DeleteParams::default()).await.unwrap();
    eventually("the KubernetesApply to go", || async {
        env.tilt::<KubernetesApply>().get_opt("bad").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(maps.get_opt("app-settings").await.unwrap().is_none(), "the served kind's object was deleted");
    env.stop().await;
}

#[tokio::test]
async fn a_failed_apply_records_what_it_created_so_deletion_removes_it() {
    let env = Env::start().await;
    // The ConfigMap is created before the unknown kind fails the apply.
    let yaml = format!("{CONFIG_MAP_YAML}---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n");
    env.tilt::<KubernetesApply>()
        .create(
            &PostParams::default(),
            &KubernetesApply::new("half", KubernetesApplySpec { yaml, ..Default::default() }),
        )
        .await
        .unwrap();
    let status = eventually("an apply error", || async {
        env.tilt::<KubernetesApply>().get("half").await.unwrap().status.filter(|s| !s.error.is_empty())
    })
    .await;
    assert!(status.error.contains("Widget"), "{}", status.error);
    let maps: Api<K8sConfigMap> = Api::namespaced(env.cluster.client(), "default");
    let created = maps.get("app-settings").await.unwrap();
    assert!(
        status.result_yaml.contains(&created.uid().unwrap()),
        "the created object is recorded: {}",
        status.result_yaml
    );

    env.tilt::<KubernetesApply>().delete("half", &DeleteParams::default()).await.unwrap();
    eventually("the created ConfigMap to be deleted", || async {
        maps.get_opt("app-settings").await.unwrap().is_none().then_some(())
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn a_restarted_discovery_deletes_what_its_earlier_spec_declared() {
    let env = Env::start().await;
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "solo", "labels": {"app": "solo"}},
        "spec": {"containers": [{"name": "web", "image": "solo:1", "ports": [{"containerPort": 8000}]}]}
    }))
    .unwrap();
    Api::<Pod>::namespaced(env.cluster.client(), "default").create(&PostParams::default(), &pod).await.unwrap();
    let selector = |app: &str| k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
        match_labels: Some([("app".to_string(), app.to_string())].into()),
        ..Default::default()
    };
    let spec = tilt_apis::KubernetesDiscoverySpec {
        extra_selectors: vec![selector("solo")],
        port_forward_template_spec: Some(PortForwardTemplateSpec {
            forwards: vec![Forward { local_port: 18001, ..Default::default() }],
        }),
        ..Default::default()
    };
    // Applied (not created), so the next apply by the same manager removes the fields it leaves out.
    env.tilt::<KubernetesDiscovery>()
        .patch("d", &PatchParams::apply("test").force(), &Patch::Apply(&KubernetesDiscovery::new("d", spec)))
        .await
        .unwrap();
    eventually("the log stream of the pod", || async { env.tilt::<PodLogStream>().get_opt("d-solo").await.unwrap() })
        .await;
    eventually("the port forward", || async { env.tilt::<PortForward>().get_opt("d").await.unwrap() }).await;

    // A new spec restarts the monitor: the pod no longer matches and there are no forwards.
    let spec = tilt_apis::KubernetesDiscoverySpec { extra_selectors: vec![selector("other")], ..Default::default() };
    env.tilt::<KubernetesDiscovery>()
        .patch("d", &PatchParams::apply("test").force(), &Patch::Apply(&KubernetesDiscovery::new("d", spec)))
        .await
        .unwrap();
    eventually("the old log stream to go", || async {
        env.tilt::<PodLogStream>().get_opt("d-solo").await.unwrap().is_none().then_some(())
    })
    .await;
    eventually("the old port forward to go", || async {
        env.tilt::<PortForward>().get_opt("d").await.unwrap().is_none().then_some(())
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn the_first_apply_waits_for_resource_deps() {
    let env = Env::start().await;
    let maps: Api<K8sConfigMap> = Api::namespaced(env.cluster.client(), "default");
    env.tilt::<UIResource>()
        .create(&PostParams::default(), &UIResource::new("app", UIResourceSpec::default()))
        .await
        .unwrap();
    let spec = KubernetesApplySpec {
        yaml: CONFIG_MAP_YAML.into(),
        start_on: Some(tilt_apis::StartOnSpec { ui_resources: vec!["db".into()], ..Default::default() }),
        ..Default::default()
    };
    env.tilt::<KubernetesApply>()
        .create(&PostParams::default(), &labelled(KubernetesApply::new("app", spec), "app"))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(maps.get_opt("app-settings").await.unwrap().is_none(), "nothing applied before db is Ready");
    assert!(env.tilt::<KubernetesApply>().get("app").await.unwrap().status.is_none_or(|s| s.last_apply_time.is_none()));

    // db: a resource of one ConfigMap, Ready once applied (it runs no pods).
    env.tilt::<UIResource>()
        .create(&PostParams::default(), &UIResource::new("db", UIResourceSpec::default()))
        .await
        .unwrap();
    let db_yaml = CONFIG_MAP_YAML.replace("app-settings", "db-settings");
    let db = KubernetesApply::new("db", KubernetesApplySpec { yaml: db_yaml, ..Default::default() });
    env.tilt::<KubernetesApply>().create(&PostParams::default(), &labelled(db, "db")).await.unwrap();
    eventually("the apply once db is Ready", || async { maps.get_opt("app-settings").await.unwrap() }).await;
    eventually("app to be Ready too", || async {
        let r = env.tilt::<UIResource>().get("app").await.unwrap();
        r.status?.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True").then_some(())
    })
    .await;
    env.stop().await;
}
