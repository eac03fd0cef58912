//! The small Go Tilt built-ins: shlex, os.putenv/unsetenv/environ, warn, k8s_kind, local_git_repo,
//! filter_yaml, docker_prune_settings, load_dynamic, workload_to_resource_function.

mod common;

use common::{Project, eval_output, find, has, s};

#[test]
fn shlex_quote_and_split() {
    let out = eval_output(
        r#"
print(shlex.quote("safe-1.0/x"), shlex.quote(""), shlex.quote("a b"), shlex.quote("it's"))
print(shlex.split("a 'b c' \"d e\" f\\ g"))
print(str(local('printf %s ' + shlex.quote("x y'z"), quiet=True, echo_off=True)))
"#,
    );
    assert_eq!(out, vec![r#"safe-1.0/x '' 'a b' 'it'"'"'s'"#, r#"["a", "b c", "d e", "f g"]"#, "x y'z"]);
    let err = Project::with_tiltfile("shlex.split(\"'open\")\n").load_err();
    assert!(err.message.contains("No closing quotation") && err.message.contains("Tiltfile:1"), "{}", err.message);
}

#[test]
fn putenv_and_unsetenv_reach_getenv_environ_local_and_cmds() {
    let p = Project::with_tiltfile(
        r#"
os.putenv('TILT17_A', 'one')
print(os.getenv('TILT17_A'), os.environ['TILT17_A'], 'TILT17_A' in os.environ, os.environ.get('TILT17_A'))
print(str(local('echo $TILT17_A', quiet=True, echo_off=True)).strip())
os.environ['TILT17_B'] = 'two'
os.unsetenv('HOME')
print(os.getenv('HOME', 'unset'), 'HOME' in os.environ, str(local('echo ${HOME-gone}', quiet=True, echo_off=True)).strip())
print(os.environ.pop('TILT17_B'), os.getenv('TILT17_B'))
os.putenv('TILT17_B', 'three')
local_resource('r', cmd='true', serve_cmd='sleep 1', env={'TILT17_A': 'own'})
"#,
    );
    let loaded = p.load();
    assert_eq!(loaded.output, vec!["one one True one", "one", "unset False gone", "two None"]);
    assert_eq!(std::env::var("TILT17_A").ok(), None, "tilt's own environment must not change");
    let update = find(&loaded, "Cmd", "r:update");
    assert_eq!(update["spec"]["env"], serde_json::json!(["HOME=", "TILT17_A=own", "TILT17_B=three"]));
    let serve = find(&loaded, "Cmd", "r:serve");
    assert_eq!(serve["spec"]["env"], serde_json::json!(["HOME=", "TILT17_A=one", "TILT17_B=three"]));
    let err = Project::with_tiltfile("os.putenv('A=B', 'x')\n").load_err();
    assert!(err.message.contains("putenv() key") && err.message.contains("Tiltfile:1"), "{}", err.message);
}

#[test]
fn warn_prints_a_warning_and_continues() {
    let out = eval_output("warn('careful')\nprint('after')\n");
    assert_eq!(out, vec!["WARNING: careful", "after"]);
}

const CRD_YAML: &str = r#"
apiVersion: example.com/v1
kind: Environment
metadata: {name: dev}
spec:
  runtime: {image: "gcr.io/me/app"}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w1}
spec: {}
---
apiVersion: example.com/v1
kind: Other
metadata: {name: o1}
"#;

#[test]
fn k8s_kind_makes_workloads_and_locates_images() {
    let p = Project::with_tiltfile(
        r#"
k8s_yaml('crd.yaml')
k8s_kind('Environment', image_json_path='{.spec.runtime.image}')
k8s_kind('widget', api_version='example.com/v1', pod_readiness='ignore')
docker_build('gcr.io/me/app', '.', dockerfile_contents='FROM scratch')
"#,
    );
    p.write("crd.yaml", CRD_YAML);
    let loaded = p.load();
    assert_eq!(loaded.resources, vec!["dev", "w1", "uncategorized"]);
    let ka = find(&loaded, "KubernetesApply", "dev");
    assert_eq!(ka["spec"]["imageMaps"], serde_json::json!(["gcr.io_me_app"]));
    assert_eq!(ka["spec"]["imageLocators"][0]["path"], "{.spec.runtime.image}");
    assert_eq!(ka["spec"]["imageLocators"][0]["objectSelector"]["kindRegexp"], "(?i)Environment");
    assert!(has(&loaded, "DockerImage", "dev:gcr.io_me_app"));
    let err = Project::with_tiltfile("k8s_kind('X', image_json_path='spec.image')\n").load_err();
    assert!(err.message.contains("error parsing json paths"), "{}", err.message);
    let err = Project::with_tiltfile("k8s_kind('X', pod_readiness='maybe')\n").load_err();
    assert!(err.message.contains("pod_readiness") && err.message.contains("k8s_kind"), "{}", err.message);
}

#[test]
fn local_git_repo_paths() {
    let p = Project::with_tiltfile(
        r#"
repo = local_git_repo('.')
print(repo.paths('src/main.rs'))
print(repo.paths('a', '../b'))
"#,
    );
    std::fs::create_dir(p.path(".git")).unwrap();
    let dir = s(&p.dir());
    let parent = s(p.dir().parent().unwrap());
    assert_eq!(p.load().output, vec![format!("{dir}/src/main.rs"), format!("[\"{dir}/a\", \"{parent}/b\"]")]);
    let err = Project::with_tiltfile("local_git_repo('.')\n").load_err();
    assert!(
        err.message.contains("isn't a valid git repo") && err.message.contains("local_git_repo"),
        "{}",
        err.message
    );
}

#[test]
fn filter_yaml_splits_by_labels_name_kind_namespace_api_version() {
    let p = Project::with_tiltfile(
        r#"
def names(b):
    return [d['metadata']['name'] for d in decode_yaml_stream(b)] if str(b) else []
m, r = filter_yaml('all.yaml', labels={'app': 'web'})
print(names(m), names(r))
m, r = filter_yaml('all.yaml', name='^WEB')
print(names(m), names(r))
m, r = filter_yaml('all.yaml', kind='service', namespace='default')
print(names(m), names(r))
m, r = filter_yaml(read_file('all.yaml'), api_version='apps/', namespace='prod')
print(names(m), names(r), type(m))
"#,
    );
    p.write(
        "all.yaml",
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
---
apiVersion: v1
kind: Service
metadata: {name: web-svc, labels: {app: web, tier: x}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: db, namespace: prod, labels: {app: db}}
"#,
    );
    assert_eq!(
        p.load().output,
        vec![
            r#"["web", "web-svc"] ["db"]"#,
            r#"["web", "web-svc"] ["db"]"#,
            r#"["web-svc"] ["web", "db"]"#,
            r#"["db"] ["web", "web-svc"] blob"#,
        ]
    );
    let err = Project::with_tiltfile("filter_yaml(blob(''), name='(')\n").load_err();
    assert!(err.message.contains("error parsing name regexp"), "{}", err.message);
}

#[test]
fn docker_prune_settings_validates() {
    Project::with_tiltfile("docker_prune_settings(disable=False, max_age_mins=60, num_builds=5, keep_recent=1)\n")
        .load();
    let err = Project::with_tiltfile("docker_prune_settings(max_age_mins=-1)\n").load_err();
    assert!(err.message.contains("max_age_mins must be >= 0"), "{}", err.message);
    let err = Project::with_tiltfile("docker_prune_settings(disable=False, interval_hrs=0)\n").load_err();
    assert!(err.message.contains("interval_hrs"), "{}", err.message);
    let err = Project::with_tiltfile("docker_prune_settings(bogus=1)\n").load_err();
    assert!(err.message.contains("bogus"), "{}", err.message);
}

#[test]
fn load_dynamic_returns_exported_symbols_and_is_watched() {
    let p = Project::with_tiltfile(
        r#"
lib = load_dynamic('lib/Tiltfile')
print(sorted(lib.keys()), lib['greet']('x'), lib['VALUE'])
again = load_dynamic('lib/Tiltfile')
print(again['VALUE'])
"#,
    );
    p.write("lib/Tiltfile", "print('loading lib')\nVALUE = 42\n_private = 1\ndef greet(n):\n    return 'hi ' + n\n");
    let loaded = p.load();
    assert_eq!(loaded.output, vec!["loading lib", r#"["VALUE", "greet"] hi x 42"#, "42"]);
    assert!(loaded.files.contains(&p.path("lib/Tiltfile")));
    let err = Project::with_tiltfile("load_dynamic('missing/Tiltfile')\n").load_err();
    assert!(err.message.contains("does not exist") && err.message.contains("Tiltfile:1"), "{}", err.message);
}

#[test]
fn workload_to_resource_function_names_workloads() {
    let p = Project::with_tiltfile(
        r#"
k8s_yaml('app.yaml')
def name(id):
    print(id, id.name, id.kind, id.namespace, id.group)
    return id.namespace + '-' + id.name
workload_to_resource_function(name)
k8s_resource('prod-web', port_forwards=8000)
"#,
    );
    p.write(
        "app.yaml",
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: prod}
spec:
  template:
    spec:
      containers: [{name: c, image: nginx}]
"#,
    );
    let loaded = p.load();
    assert_eq!(loaded.output, vec!["web:deployment:prod:apps web Deployment prod apps"]);
    assert_eq!(loaded.resources, vec!["prod-web"]);
    let err = Project::with_tiltfile(
        "k8s_yaml(blob('apiVersion: v1\\nkind: Pod\\nmetadata: {name: p}\\nspec: {containers: [{name: c, image: x}]}'))\nworkload_to_resource_function(lambda id: 3)\n",
    )
    .load_err();
    assert!(err.message.contains("invalid return value. wanted: string. got: int"), "{}", err.message);
    assert!(err.message.contains("Tiltfile:2"), "{}", err.message);
}
