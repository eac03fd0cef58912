//! `k8s_yaml()`, `k8s_resource()`, `docker_build()`: grouping into resources and the objects produced.

mod common;

use common::{Project, find, has, names, s};
use serde_json::{Value, json};

const APP_YAML: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: Frontend
  labels: {app: frontend}
spec:
  selector:
    matchLabels: {app: frontend}
  template:
    metadata:
      labels: {app: frontend, tier: web}
    spec:
      containers:
      - name: web
        image: gcr.io/proj/frontend:latest
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: frontend
spec:
  selector: {app: frontend}
  ports:
  - port: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  enabled: "true"
  answer: "yes"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: redis
spec:
  template:
    metadata:
      labels: {app: redis}
    spec:
      containers:
      - name: redis
        image: redis:7
"#;

fn docs(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(yaml).unwrap()
}

#[test]
fn workloads_services_images_and_uncategorized() {
    let p = Project::with_tiltfile(
        r#"
k8s_yaml('app.yaml')
docker_build('gcr.io/proj/frontend', 'frontend', build_args={'MODE': 'dev', 'EMPTY': ''}, target='dev',
             ignore=['*.md'], only=['src', 'package.json'])
"#,
    );
    p.write("app.yaml", APP_YAML);
    p.write("frontend/Dockerfile", "FROM node\n");
    p.write("frontend/.dockerignore", "node_modules\n");
    let loaded = p.load();
    assert_eq!(loaded.resources, vec!["frontend", "redis", "uncategorized"]);
    assert_eq!(
        names(&loaded),
        vec![
            "UIResource/frontend",
            "ToggleButton/frontend-disable",
            "UIButton/frontend:trigger",
            "ImageMap/gcr.io_proj_frontend",
            "FileWatch/image:gcr.io_proj_frontend",
            "DockerImage/frontend:gcr.io_proj_frontend",
            "KubernetesApply/frontend",
            "UIResource/redis",
            "ToggleButton/redis-disable",
            "UIButton/redis:trigger",
            "KubernetesApply/redis",
            "UIResource/uncategorized",
            "ToggleButton/uncategorized-disable",
            "UIButton/uncategorized:trigger",
            "KubernetesApply/uncategorized",
        ]
    );
    let dir = s(&p.dir());
    let ctx = format!("{dir}/frontend");

    let ka = find(&loaded, "KubernetesApply", "frontend");
    assert_eq!(ka["metadata"]["labels"]["tilt.dev/resource"], "frontend");
    assert_eq!(ka["metadata"]["annotations"]["tilt.dev/resource"], "frontend");
    assert_eq!(ka["spec"]["imageMaps"], json!(["gcr.io_proj_frontend"]));
    assert_eq!(ka["spec"]["cluster"], "default");
    assert_eq!(ka["spec"]["restartOn"], json!({"uiButtons": ["frontend:trigger"]}));
    let applied = docs(ka["spec"]["yaml"].as_str().unwrap());
    let all = docs(APP_YAML);
    assert_eq!(applied, vec![all[1].clone(), all[0].clone()], "Service before Deployment");

    let uncategorized = docs(find(&loaded, "KubernetesApply", "uncategorized")["spec"]["yaml"].as_str().unwrap());
    assert_eq!(uncategorized, vec![all[2].clone()]);
    assert_eq!(uncategorized[0]["data"]["answer"], "yes", "ambiguous strings survive the YAML round trip");
    assert!(find(&loaded, "KubernetesApply", "redis")["spec"].get("imageMaps").is_none());

    assert_eq!(find(&loaded, "ImageMap", "gcr.io_proj_frontend")["spec"], json!({"selector": "gcr.io/proj/frontend"}));
    let context_ignores = json!([
        {"basePath": format!("{dir}/Tiltfile")},
        {"basePath": ctx, "patterns": ["node_modules", "*.md"]},
        {"basePath": ctx, "patterns": ["**", "!src", "!src/**", "!package.json", "!package.json/**"]},
    ]);
    assert_eq!(
        find(&loaded, "DockerImage", "frontend:gcr.io_proj_frontend")["spec"],
        json!({
            "ref": "gcr.io/proj/frontend",
            "dockerfileContents": "FROM node\n",
            "context": ctx,
            "contextIgnores": context_ignores,
            "args": ["EMPTY", "MODE=dev"],
            "target": "dev",
            "imageMap": "gcr.io_proj_frontend",
            "restartOn": {"fileWatches": ["image:gcr.io_proj_frontend"], "uiButtons": ["frontend:trigger"]},
            "disableSource": {"configMap": {"name": "frontend-disable", "key": "isDisabled"}},
        })
    );
    let mut watch_ignores = context_ignores.as_array().unwrap().clone();
    watch_ignores.push(json!({"basePath": format!("{ctx}/Dockerfile")}));
    assert_eq!(
        find(&loaded, "FileWatch", "image:gcr.io_proj_frontend")["spec"],
        json!({"watchedPaths": [ctx], "ignores": watch_ignores})
    );
    for f in ["Tiltfile", "app.yaml", "frontend/Dockerfile", "frontend/.dockerignore"] {
        assert!(loaded.files.contains(&p.path(f)), "{f}");
    }
}

#[test]
fn k8s_resource_configures_renames_and_groups() {
    let p = Project::with_tiltfile(
        r#"
k8s_yaml(blob(str(read_file('app.yaml'))))
k8s_resource('frontend', new_name='web', port_forwards=['8000:8080', 9000, port_forward(9229, name='debugger')],
             resource_deps=['redis'], labels=['frontend'], trigger_mode=TRIGGER_MODE_MANUAL, auto_init=False,
             links=['http://localhost:8000'], extra_pod_selectors=[{'app': 'frontend'}])
k8s_resource(new_name='config', objects=['settings:configmap'])
k8s_resource('redis', port_forwards=6379)
"#,
    );
    p.write("app.yaml", APP_YAML);
    let loaded = p.load();
    assert_eq!(loaded.resources, vec!["web", "redis", "config"]);
    assert!(!has(&loaded, "UIResource", "uncategorized"));

    let ui = find(&loaded, "UIResource", "web");
    let notes = &ui["metadata"]["annotations"];
    assert_eq!(notes["tilt.dev/resource"], "web");
    assert_eq!(notes["tilt.dev/trigger-mode"], "2", "manual without auto init (Go Tilt's TriggerModeManual)");
    assert_eq!(notes["tilt.dev/auto-init"], "false");
    assert_eq!(notes["tilt.dev/resource-deps"], r#"["redis"]"#);
    let forwards: Value = serde_json::from_str(notes["tilt.dev/port-forwards"].as_str().unwrap()).unwrap();
    let expected = json!([
        {"localPort": 8000, "containerPort": 8080, "host": ""},
        {"localPort": 9000, "containerPort": 0, "host": ""},
        {"localPort": 9229, "containerPort": 0, "host": "", "name": "debugger"},
    ]);
    assert_eq!(forwards, expected);
    assert_eq!(ui["metadata"]["labels"]["frontend"], "frontend");

    let ka = find(&loaded, "KubernetesApply", "web");
    assert_eq!(ka["spec"]["portForwardTemplateSpec"]["forwards"], expected);
    assert_eq!(
        ka["spec"]["kubernetesDiscoveryTemplateSpec"],
        json!({"extraSelectors": [{"matchLabels": {"app": "frontend"}}]})
    );
    assert_eq!(ka["metadata"]["labels"]["frontend"], "frontend");
    let config = docs(find(&loaded, "KubernetesApply", "config")["spec"]["yaml"].as_str().unwrap());
    assert_eq!(config[0]["metadata"]["name"], "settings");
}

#[test]
fn workload_names_are_disambiguated_like_go_tilt() {
    let yaml = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: a}
spec: {template: {spec: {containers: [{name: c, image: nginx}]}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: b}
spec: {template: {spec: {containers: [{name: c, image: nginx}]}}}
---
apiVersion: batch/v1
kind: Job
metadata: {name: web, namespace: a}
spec: {template: {spec: {containers: [{name: c, image: busybox}]}}}
---
apiVersion: v1
kind: Pod
metadata: {name: solo}
spec: {containers: [{name: c, image: busybox}]}
"#;
    let p = Project::with_tiltfile("k8s_yaml('a.yaml')\n");
    p.write("a.yaml", yaml);
    let loaded = p.load();
    assert_eq!(loaded.resources, vec!["web:deployment:a", "web:deployment:b", "web:job", "solo"]);
}

#[test]
fn k8s_yaml_accepts_lists_blobs_and_local_output() {
    let p = Project::with_tiltfile(
        r#"
k8s_yaml(['a.yaml', local('cat b.yaml', quiet=True)])
k8s_yaml(encode_yaml({'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': 's'}}))
"#,
    );
    p.write("a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n");
    p.write("b.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n");
    let loaded = p.load();
    let objs = docs(find(&loaded, "KubernetesApply", "uncategorized")["spec"]["yaml"].as_str().unwrap());
    let mut got: Vec<&str> = objs.iter().map(|o| o["metadata"]["name"].as_str().unwrap()).collect();
    got.sort();
    assert_eq!(got, vec!["a", "b", "s"]);
    assert!(!loaded.files.contains(&p.path("b.yaml")), "read by the command, not by Tilt");
}

#[test]
fn k8s_errors() {
    let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {template: {spec: {containers: [{name: c, image: nginx}]}}}\n";
    for (t, wanted) in [
        ("k8s_yaml('d.yaml')\nk8s_yaml('d.yaml')", "Duplicate YAML"),
        ("k8s_yaml('d.yaml')\nk8s_resource('nope')", "k8s_resource specified unknown resource \"nope\""),
        ("k8s_yaml('d.yaml')\nk8s_resource(new_name='x', objects=['zzz'])", "No object identified by the fragment"),
        ("k8s_resource()", "Resource name missing"),
        ("k8s_resource(new_name='x')", "must specify 1 or more objects"),
        ("k8s_yaml('d.yaml')\nlocal_resource('web', 'true')", "already exists"),
        ("k8s_yaml('bad.yaml')", "missing 'kind'"),
        ("k8s_yaml('d.yaml')\nk8s_resource('web', port_forwards='70000')", "valid range"),
        ("docker_build('Bad/Name', '.')", "can't parse"),
        ("docker_build('img', '.', dockerfile='Dockerfile', dockerfile_contents='FROM x')", "Cannot specify both"),
        ("docker_build('img', 'nodir')", "error reading dockerfile"),
        ("docker_build('img', '.', only=['*.go'], dockerfile_contents='FROM x')", "file globs"),
    ] {
        let p = Project::with_tiltfile(t);
        p.write("d.yaml", deploy);
        p.write("bad.yaml", "metadata: {name: x}\n");
        let err = p.load_err();
        assert!(err.message.contains(wanted), "{t}: {}", err.message);
    }
    let p = Project::with_tiltfile("k8s_yaml('d.yaml')\nk8s_yaml('d.yaml', allow_duplicates=True)\n");
    p.write("d.yaml", deploy);
    assert_eq!(p.load().resources, vec!["web:deployment:default:apps:0", "web:deployment:default:apps:1"]);
}

#[test]
fn image_options_live_update_and_unused_image_warning() {
    let p = Project::with_tiltfile(
        r#"
k8s_yaml('d.yaml')
docker_build('myapp', '.', dockerfile_contents='FROM scratch', entrypoint='/app --dev', container_args=['-v'],
             match_in_env_vars=True, live_update=[sync('.', '/app'), run('make', trigger=['Makefile'])],
             extra_tag='myapp:ci', cache_from='myapp:cache', pull=True, platform='linux/amd64')
docker_build('unused', '.', dockerfile_contents='FROM scratch')
"#,
    );
    p.write(
        "d.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec: {template: {spec: {containers: [{name: c, image: docker.io/library/myapp:v2}]}}}\n",
    );
    let loaded = p.load();
    assert_eq!(
        find(&loaded, "ImageMap", "myapp")["spec"],
        json!({
            "selector": "myapp",
            "matchInEnvVars": true,
            "overrideCommand": {"command": ["sh", "-c", "/app --dev"]},
            "overrideArgs": {"args": ["-v"]},
        })
    );
    let spec = &find(&loaded, "DockerImage", "app:myapp")["spec"];
    assert_eq!(spec["dockerfileContents"], "FROM scratch");
    assert_eq!(spec["extraTags"], json!(["myapp:ci"]));
    assert_eq!(spec["cacheFrom"], json!(["myapp:cache"]));
    assert_eq!(spec["pull"], json!(true));
    assert_eq!(spec["platform"], "linux/amd64");
    assert!(loaded.output.iter().any(|l| l.contains("live_update is not supported yet")), "{:?}", loaded.output);
    assert!(loaded.output.iter().any(|l| l.contains("Image not used") && l.contains("unused")), "{:?}", loaded.output);
    assert!(!has(&loaded, "ImageMap", "unused"));
}

#[test]
fn shared_image_gets_one_image_map_and_a_docker_image_per_resource() {
    let deploy = |name: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec: {{template: {{spec: {{containers: [{{name: c, image: shared}}]}}}}}}\n---\n"
        )
    };
    let p = Project::with_tiltfile("k8s_yaml('d.yaml')\ndocker_build('shared', '.', dockerfile_contents='FROM x')\n");
    p.write("d.yaml", &(deploy("one") + &deploy("two")));
    let loaded = p.load();
    let n = names(&loaded);
    assert_eq!(n.iter().filter(|x| x.starts_with("ImageMap/")).count(), 1);
    assert!(has(&loaded, "DockerImage", "one:shared") && has(&loaded, "DockerImage", "two:shared"));
    assert_eq!(find(&loaded, "KubernetesApply", "two")["spec"]["imageMaps"], json!(["shared"]));
}

#[test]
fn kustomize_runs_the_given_binary_and_watches_the_directory() {
    let p = Project::with_tiltfile(
        "k8s_yaml(kustomize('overlay', kustomize_bin='./fake-kustomize', flags=['--enable-helm']))\n",
    );
    p.write(
        "fake-kustomize",
        "#!/bin/sh\n[ \"$1 $2\" = \"build --enable-helm\" ] || exit 9\necho 'apiVersion: v1'\necho 'kind: ConfigMap'\necho 'metadata: {name: from-kustomize}'\n",
    );
    std::fs::set_permissions(p.path("fake-kustomize"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p.write("overlay/kustomization.yaml", "resources: []\n");
    let loaded = p.load();
    let objs = docs(find(&loaded, "KubernetesApply", "uncategorized")["spec"]["yaml"].as_str().unwrap());
    assert_eq!(objs[0]["metadata"]["name"], "from-kustomize");
    assert!(loaded.files.contains(&p.path("overlay")));
    assert!(loaded.output[0].starts_with("local: "), "{:?}", loaded.output);
}

#[test]
fn docker_image_rebuild_triggers_follow_trigger_mode_auto_init_and_deps() {
    let deploy = |name: &str, image: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec: {{template: {{spec: {{containers: [{{name: c, image: {image}}}]}}}}}}\n---\n"
        )
    };
    let p = Project::with_tiltfile(
        r#"
k8s_yaml('d.yaml')
docker_build('api', '.', dockerfile_contents='FROM scratch')
docker_build('web', '.', dockerfile_contents='FROM scratch')
k8s_resource('web', trigger_mode=TRIGGER_MODE_MANUAL, auto_init=False, resource_deps=['api'])
"#,
    );
    p.write("d.yaml", &(deploy("api", "api") + &deploy("web", "web")));
    let loaded = p.load();
    let api = &find(&loaded, "DockerImage", "api:api")["spec"];
    assert_eq!(api["imageMap"], "api");
    assert_eq!(api["restartOn"], json!({"fileWatches": ["image:api"], "uiButtons": ["api:trigger"]}));
    assert!(api.get("startOn").is_none(), "nothing to wait for: {api}");
    assert!(has(&loaded, "FileWatch", "image:api"));
    let web = &find(&loaded, "DockerImage", "web:web")["spec"];
    assert_eq!(web["restartOn"], json!({"uiButtons": ["web:trigger"]}), "manual: file changes do not rebuild");
    assert_eq!(web["startOn"], json!({"uiButtons": ["web:trigger"], "uiResources": ["api"]}));
    assert_eq!(web["disableSource"]["configMap"]["name"], "web-disable");
    // The deploy waits for the same things (a resource without images waits too).
    assert_eq!(find(&loaded, "KubernetesApply", "web")["spec"]["startOn"], web["startOn"]);
    assert!(find(&loaded, "KubernetesApply", "api")["spec"].get("startOn").is_none());
}

#[test]
fn custom_build_yields_a_cmd_image_its_image_map_and_a_file_watch_on_deps() {
    let p = Project::with_tiltfile(
        r#"
k8s_yaml('d.yaml')
custom_build('gcr.io/proj/app', 'make image TAG=$EXPECTED_REF', deps=['src', 'Makefile'], tag='dev',
             disable_push=True, live_update=[sync('src', '/app')], match_in_env_vars=True, ignore=['*.tmp'],
             entrypoint=['/app', '--dev'], command_bat='make.bat', container_args=['-v'], env={'MODE': 'fast'},
             dir='build', image_deps=['base'])
custom_build('other', ['./build.sh', '--out', 'ref.txt'], ['src'], skips_local_docker=True,
             outputs_image_ref_to='ref.txt')
"#,
    );
    p.write(
        "d.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\nspec: {template: {spec: {containers: [{name: c, image: gcr.io/proj/app}, {name: o, image: other}]}}}\n",
    );
    let loaded = p.load();
    let dir = s(&p.dir());
    assert_eq!(
        names(&loaded),
        vec![
            "UIResource/app",
            "ToggleButton/app-disable",
            "UIButton/app:trigger",
            "ImageMap/gcr.io_proj_app",
            "FileWatch/image:gcr.io_proj_app",
            "CmdImage/app:gcr.io_proj_app",
            "ImageMap/other",
            "FileWatch/image:other",
            "CmdImage/app:other",
            "KubernetesApply/app",
        ]
    );
    assert_eq!(
        find(&loaded, "CmdImage", "app:gcr.io_proj_app")["spec"],
        json!({
            "ref": "gcr.io/proj/app",
            "args": ["sh", "-c", "make image TAG=$EXPECTED_REF"],
            "dir": format!("{dir}/build"),
            "env": ["MODE=fast"],
            "imageMaps": ["base"],
            "outputMode": "local-docker",
            "outputTag": "dev",
            "imageMap": "gcr.io_proj_app",
            "restartOn": {"fileWatches": ["image:gcr.io_proj_app"], "uiButtons": ["app:trigger"]},
            "disableSource": {"configMap": {"name": "app-disable", "key": "isDisabled"}},
        })
    );
    let other = &find(&loaded, "CmdImage", "app:other")["spec"];
    assert_eq!(other["args"], json!(["./build.sh", "--out", "ref.txt"]));
    assert_eq!(other["dir"], json!(dir.clone()));
    assert_eq!(other["outputMode"], "remote");
    assert_eq!(other["outputsImageRefTo"], json!(format!("{dir}/ref.txt")));
    assert!(other.get("outputTag").is_none());
    let fw = &find(&loaded, "FileWatch", "image:gcr.io_proj_app")["spec"];
    assert_eq!(fw["watchedPaths"], json!([format!("{dir}/src"), format!("{dir}/Makefile")]));
    assert_eq!(fw["ignores"][0], json!({"basePath": format!("{dir}/src"), "patterns": ["*.tmp"]}));
    assert_eq!(fw["ignores"][1], json!({"basePath": format!("{dir}/Makefile"), "patterns": ["*.tmp"]}));
    assert_eq!(
        find(&loaded, "ImageMap", "gcr.io_proj_app")["spec"],
        json!({
            "selector": "gcr.io/proj/app",
            "matchInEnvVars": true,
            "overrideCommand": {"command": ["/app", "--dev"]},
            "overrideArgs": {"args": ["-v"]},
        })
    );
    let ka = find(&loaded, "KubernetesApply", "app");
    assert_eq!(ka["spec"]["imageMaps"], json!(["gcr.io_proj_app", "other"]));
    assert!(loaded.output.iter().any(|l| l.contains("live_update is not supported yet")), "{:?}", loaded.output);
}

#[test]
fn custom_build_errors_name_the_builtin_and_line() {
    for (t, wanted) in [
        ("custom_build('app', deps=['.'])", "Argument 2 (command) can't be empty"),
        ("custom_build('app', '', ['.'])", "Argument 2 (command) can't be empty"),
        ("custom_build('app', 'make')", "Argument 3 (deps) is missing"),
        ("custom_build(command='make', deps=['.'])", "ref"),
        ("custom_build(3, 'make', ['.'])", "Argument 1 (ref) must be a string"),
        ("custom_build('Bad/Name', 'make', ['.'])", "can't parse"),
        ("custom_build('app', 42, ['.'])", "(command) must be a string or a list of strings"),
        ("custom_build('app', 'make', 7)", "(deps) must be a string or a list of strings"),
        ("custom_build('app', 'make', ['.'], env=['A'])", "env must be a dict"),
        ("custom_build('app', 'make', ['.'], tag='t', outputs_image_ref_to='f')", "Cannot specify both"),
        ("custom_build('app', 'make', ['.'], disable_push='yes')", "disable_push"),
        ("custom_build('app', 'make', ['.'], live_update=['x'])", "live_update steps"),
        ("custom_build('app', 'make', ['.'])\ncustom_build('app', 'true', ['.'])", "already been defined"),
    ] {
        let p = Project::with_tiltfile(&format!("x = 1\n{t}\n"));
        let err = p.load_err();
        assert!(err.message.contains(wanted), "{t}: {}", err.message);
        assert!(err.message.contains("Tiltfile:2") || err.message.contains("Tiltfile:3"), "{t}: {}", err.message);
        if !t.starts_with("custom_build(command") {
            assert!(
                err.message.contains("custom_build") || err.message.contains("docker_build"),
                "{t}: {}",
                err.message
            );
        }
    }
}
