//! Checks every kind's CRD (names, scope, schema, printer columns) and that objects written with Go Tilt's
//! field names survive a JSON round trip unchanged.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray,
};
use kube::{CustomResourceExt, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tilt_apis::*;

/// What `for_each_kind!` reports for one kind.
struct KindInfo {
    crd: CustomResourceDefinition,
    shortnames: &'static [&'static str],
    plural: String,
    group: String,
    version: String,
    api_resource_plural: String,
}

fn all_kinds() -> Vec<KindInfo> {
    let mut kinds = Vec::new();
    macro_rules! collect {
        ($t:ty) => {
            kinds.push(KindInfo {
                crd: <$t as CustomResourceExt>::crd(),
                shortnames: <$t as CustomResourceExt>::shortnames(),
                plural: <$t as Resource>::plural(&()).into_owned(),
                group: <$t as Resource>::group(&()).into_owned(),
                version: <$t as Resource>::version(&()).into_owned(),
                api_resource_plural: <$t as CustomResourceExt>::api_resource().plural,
            });
        };
    }
    tilt_apis::for_each_kind!(collect);
    kinds
}

/// Kind, plural, singular, short names: exactly Go Tilt's.
const EXPECTED: &[(&str, &str, &str, &[&str])] = &[
    ("Cluster", "clusters", "cluster", &[]),
    ("Cmd", "cmds", "cmd", &[]),
    ("CmdImage", "cmdimages", "cmdimage", &[]),
    ("ConfigMap", "configmaps", "configmap", &["cm"]),
    ("DockerComposeLogStream", "dockercomposelogstreams", "dockercomposelogstream", &["dclog", "dcls"]),
    ("DockerComposeService", "dockercomposeservices", "dockercomposeservice", &["dc"]),
    ("DockerImage", "dockerimages", "dockerimage", &[]),
    ("Extension", "extensions", "extension", &["ext"]),
    ("ExtensionRepo", "extensionrepos", "extensionrepo", &["repo", "extrepo"]),
    ("FileWatch", "filewatches", "filewatch", &["fw"]),
    ("ImageMap", "imagemaps", "imagemap", &["im"]),
    ("KubernetesApply", "kubernetesapplys", "kubernetesapply", &["ka", "kapp"]),
    ("KubernetesDiscovery", "kubernetesdiscoveries", "kubernetesdiscovery", &["kd", "kdisco"]),
    ("LiveUpdate", "liveupdates", "liveupdate", &[]),
    ("PodLogStream", "podlogstreams", "podlogstream", &["pls"]),
    ("PortForward", "portforwards", "portforward", &["pf"]),
    ("Session", "sessions", "session", &[]),
    ("Tiltfile", "tiltfiles", "tiltfile", &[]),
    ("ToggleButton", "togglebuttons", "togglebutton", &[]),
    ("UIButton", "uibuttons", "uibutton", &[]),
    ("UIResource", "uiresources", "uiresource", &[]),
    ("UISession", "uisessions", "uisession", &[]),
];

#[test]
fn every_go_tilt_kind_is_registered_once() {
    let mut got: Vec<String> = all_kinds().iter().map(|k| k.crd.spec.names.kind.clone()).collect();
    got.sort();
    let want: Vec<String> = EXPECTED.iter().map(|e| e.0.to_string()).collect();
    assert_eq!(got, want);
}

#[test]
fn crd_names_and_scope_match_go_tilt() {
    let kinds = all_kinds();
    for (kind, plural, singular, short) in EXPECTED {
        let info = kinds.iter().find(|k| k.crd.spec.names.kind == *kind).expect(kind);
        let crd = &info.crd;
        let names = &crd.spec.names;
        assert_eq!(crd.spec.scope, "Cluster", "{kind}");
        assert_eq!(crd.spec.group, GROUP, "{kind}");
        assert_eq!(names.plural, *plural, "{kind}");
        assert_eq!(names.singular.as_deref(), Some(*singular), "{kind}");
        let crd_short: Vec<&str> = names.short_names.iter().flatten().map(String::as_str).collect();
        assert_eq!(crd_short, *short, "{kind} short names in the CRD");
        assert_eq!(info.shortnames, *short, "{kind} shortnames()");
        assert_eq!(crd.metadata.name.as_deref(), Some(format!("{plural}.tilt.dev").as_str()), "{kind}");
        assert_eq!(info.plural, *plural, "{kind} Resource::plural");
        assert_eq!(info.api_resource_plural, *plural, "{kind} api_resource");
        assert_eq!(info.group, GROUP, "{kind}");
        assert_eq!(info.version, VERSION, "{kind}");

        assert_eq!(crd.spec.versions.len(), 1, "{kind}");
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, VERSION, "{kind}");
        assert!(version.served && version.storage, "{kind}");
        let has_status_subresource = version.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some();
        assert_eq!(has_status_subresource, *kind != "ConfigMap", "{kind} status subresource");

        let json = serde_json::to_string(crd).unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert!(json.contains("openAPIV3Schema"), "{kind}");
    }
}

/// Looks up a printer column's `.a.b.c` JSON path in the schema, descending into arrays.
fn schema_at<'a>(root: &'a JSONSchemaProps, path: &str) -> Option<&'a JSONSchemaProps> {
    let mut node = root;
    for part in path.trim_start_matches('.').split('.') {
        while let Some(JSONSchemaPropsOrArray::Schema(items)) = node.items.as_ref() {
            node = items;
        }
        node = node.properties.as_ref()?.get(part)?;
    }
    Some(node)
}

#[test]
fn printer_columns_point_at_real_fields() {
    for info in all_kinds() {
        let kind = &info.crd.spec.names.kind;
        let version = &info.crd.spec.versions[0];
        let schema = version.schema.as_ref().and_then(|s| s.open_api_v3_schema.as_ref()).expect(kind);
        for col in version.additional_printer_columns.iter().flatten() {
            let path = &col.json_path;
            assert!(
                [".spec.", ".status.", ".metadata."].iter().any(|p| path.starts_with(p)),
                "{kind} column {}: {path}",
                col.name
            );
            if path.starts_with(".metadata.") {
                continue;
            }
            let field =
                schema_at(schema, path).unwrap_or_else(|| panic!("{kind} column {}: no field {path}", col.name));
            let field_type = field.type_.as_deref().unwrap_or("");
            let ok = match col.type_.as_str() {
                "date" => field.format.as_deref() == Some("date-time"),
                "string" => ["string", "array"].contains(&field_type),
                "boolean" => field_type == "boolean",
                "integer" => field_type == "integer",
                other => panic!("{kind}: unexpected column type {other}"),
            };
            assert!(ok, "{kind} column {} has type {} but {path} is {field_type}", col.name, col.type_);
        }
    }
}

/// ConfigMap's hand-written CRD must be what the derive produces for a flattened (`no_spec`) kind.
mod derived {
    use std::collections::BTreeMap;

    use kube::CustomResource;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    /// A named set of string values, cluster-scoped in the `tilt.dev` group.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
    #[kube(
        group = "tilt.dev",
        version = "v1alpha1",
        kind = "ConfigMap",
        plural = "configmaps",
        singular = "configmap",
        shortname = "cm",
        category = "tilt",
        printcolumn = r#"{"name":"Created At","type":"string","jsonPath":".metadata.creationTimestamp"}"#,
        doc = "A named set of string values, cluster-scoped in the `tilt.dev` group.",
        no_spec
    )]
    pub struct ConfigMapData {
        /// The values. Keys consist of alphanumerics, `-`, `_` and `.`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub data: BTreeMap<String, String>,
    }
}

#[test]
fn configmap_crd_matches_what_the_derive_would_generate() {
    let ours = serde_json::to_value(<tilt_apis::ConfigMap as CustomResourceExt>::crd()).unwrap();
    let derived = serde_json::to_value(<derived::ConfigMap as CustomResourceExt>::crd()).unwrap();
    assert_eq!(ours, derived);
    assert_eq!(<tilt_apis::ConfigMap as CustomResourceExt>::crd_name(), "configmaps.tilt.dev");
    let resource = <tilt_apis::ConfigMap as CustomResourceExt>::api_resource();
    assert_eq!(
        (resource.group.as_str(), resource.version.as_str(), resource.kind.as_str(), resource.plural.as_str()),
        ("tilt.dev", "v1alpha1", "ConfigMap", "configmaps")
    );
    assert_eq!(resource.api_version, API_VERSION);
}

/// Reads `value` as `T` and writes it back; the result must be identical.
fn assert_round_trip<T: Serialize + DeserializeOwned>(value: Value) -> T {
    let obj: T = serde_json::from_value(value.clone()).expect("deserialize");
    assert_eq!(serde_json::to_value(&obj).expect("serialize"), value);
    obj
}

#[test]
fn filewatch_round_trips() {
    let fw: FileWatch = assert_round_trip(json!({
        "apiVersion": "tilt.dev/v1alpha1",
        "kind": "FileWatch",
        "metadata": {"name": "configs:web", "annotations": {"tilt.dev/resource": "web"}},
        "spec": {
            "watchedPaths": ["/src/web", "/src/Tiltfile"],
            "ignores": [
                {"basePath": "/src/web", "patterns": ["node_modules", "*.log"]},
                {"basePath": "/src/web/.git"}
            ],
            "disableSource": {"configMap": {"name": "web-disable", "key": "isDisabled"}}
        },
        "status": {
            "monitorStartTime": "2024-05-01T10:00:00.000000Z",
            "lastEventTime": "2024-05-01T10:00:05.123456Z",
            "fileEvents": [
                {"time": "2024-05-01T10:00:05.123456Z", "seenFiles": ["/src/web/main.go"]}
            ],
            "error": "too many open files"
        }
    }));
    assert_eq!(fw.spec.watched_paths.len(), 2);
    assert!(fw.spec.ignores[1].patterns.is_empty());
    let status = fw.status.unwrap();
    assert_eq!(status.file_events[0].seen_files, ["/src/web/main.go"]);
    assert_eq!(status.last_event_time, status.file_events[0].time);
}

#[test]
fn filewatch_requires_watched_paths_but_reads_null_as_empty() {
    let missing = json!({"metadata": {"name": "x"}, "spec": {}});
    let err = serde_json::from_value::<FileWatch>(missing).unwrap_err();
    assert!(err.to_string().contains("watchedPaths"), "{err}");

    // Go writes a nil slice as null.
    let null = json!({"metadata": {"name": "x"}, "spec": {"watchedPaths": null}});
    let fw: FileWatch = serde_json::from_value(null).unwrap();
    assert!(fw.spec.watched_paths.is_empty());
    assert_eq!(serde_json::to_value(&fw.spec).unwrap(), json!({"watchedPaths": []}));
}

#[test]
fn uiresource_round_trips() {
    let res: UIResource = assert_round_trip(json!({
        "apiVersion": "tilt.dev/v1alpha1",
        "kind": "UIResource",
        "metadata": {"name": "web", "labels": {"frontend": "frontend"}},
        "spec": {},
        "status": {
            "lastDeployTime": "2024-05-01T10:01:00.000000Z",
            "triggerMode": 1,
            "buildHistory": [{
                "startTime": "2024-05-01T10:00:30.000000Z",
                "finishTime": "2024-05-01T10:01:00.000000Z",
                "spanID": "build:1",
                "warnings": ["deprecated flag"]
            }],
            "endpointLinks": [{"url": "http://localhost:8080/", "name": "web"}],
            "k8sResourceInfo": {
                "podName": "web-7d9f-abc",
                "podCreationTime": "2024-05-01T10:00:59Z",
                "podStatus": "Running",
                "allContainersReady": true,
                "spanID": "pod:default:web-7d9f-abc",
                "displayNames": ["web:deployment"]
            },
            "runtimeStatus": "ok",
            "updateStatus": "ok",
            "specs": [
                {"id": "image:web", "type": "image"},
                {"id": "k8s:web", "type": "k8s", "hasLiveUpdate": true}
            ],
            "order": 2,
            "disableStatus": {"enabledCount": 1, "disabledCount": 0, "state": "Enabled", "sources": [
                {"configMap": {"name": "web-disable", "key": "isDisabled"}}
            ]},
            "conditions": [
                {"type": "UpToDate", "status": "True", "lastTransitionTime": "2024-05-01T10:01:00.000000Z"},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": "1 of 2 ready"}
            ]
        }
    }));
    let status = res.status.unwrap();
    assert_eq!(status.runtime_status, Some(RuntimeStatus::Ok));
    assert_eq!(status.update_status, Some(UpdateStatus::Ok));
    assert_eq!(status.conditions[1].type_, UI_RESOURCE_READY);
    assert_eq!(status.specs[1].type_, Some(UIResourceTargetType::Kubernetes));
}

#[test]
fn configmap_keeps_data_at_top_level() {
    let cm: ConfigMap = assert_round_trip(json!({
        "apiVersion": "tilt.dev/v1alpha1",
        "kind": "ConfigMap",
        "metadata": {"name": "web-disable"},
        "data": {"isDisabled": "true"}
    }));
    assert_eq!(cm.data["isDisabled"], "true");
    assert_eq!(cm.meta().name.as_deref(), Some("web-disable"));

    let empty = ConfigMap::new("tilt-settings", BTreeMap::new());
    assert_eq!(
        serde_json::to_value(&empty).unwrap(),
        json!({"apiVersion": "tilt.dev/v1alpha1", "kind": "ConfigMap", "metadata": {"name": "tilt-settings"}})
    );
}

#[test]
fn portforward_round_trips() {
    assert_round_trip::<PortForward>(json!({
        "apiVersion": "tilt.dev/v1alpha1",
        "kind": "PortForward",
        "metadata": {"name": "web-pf"},
        "spec": {
            "podName": "web-7d9f-abc",
            "namespace": "dev",
            "forwards": [{"localPort": 8080, "containerPort": 80, "host": "", "name": "http"}],
            "cluster": "default"
        },
        "status": {"forwardStatuses": [{
            "localPort": 8080,
            "containerPort": 80,
            "addresses": ["127.0.0.1", "::1"],
            "startedAt": "2024-05-01T10:02:00.000000Z"
        }]}
    }));
}

#[test]
fn kubernetesdiscovery_round_trips_with_null_container_states() {
    assert_round_trip::<KubernetesDiscovery>(json!({
        "apiVersion": "tilt.dev/v1alpha1",
        "kind": "KubernetesDiscovery",
        "metadata": {"name": "web"},
        "spec": {
            "watches": [{"uid": "1234-abcd", "namespace": "dev", "name": "web"}],
            "portForwardTemplateSpec": {"forwards": [{"containerPort": 80, "host": ""}]},
            "cluster": "default"
        },
        "status": {
            "monitorStartTime": "2024-05-01T10:00:00.000000Z",
            "pods": [{
                "uid": "5678-efgh",
                "name": "web-7d9f-abc",
                "namespace": "dev",
                "createdAt": "2024-05-01T10:00:59Z",
                "phase": "Running",
                "deleting": false,
                "containers": [{
                    "name": "web",
                    "id": "0123456789ab",
                    "ready": true,
                    "image": "localhost:5000/web:tilt-1a2b3c",
                    "restarts": 0,
                    "state": {"waiting": null, "running": {"startedAt": "2024-05-01T10:01:02Z"}, "terminated": null},
                    "ports": [80]
                }],
                "ancestorUID": "1234-abcd",
                "podTemplateSpecHash": "6f7c9d",
                "status": "Running",
                "errors": [],
                "owner": {"name": "web-7d9f", "apiVersion": "apps/v1", "kind": "ReplicaSet"}
            }],
            "running": {"startTime": "2024-05-01T10:00:00.000000Z"}
        }
    }));
}

#[test]
fn kubernetesapply_round_trips() {
    let ka: KubernetesApply = assert_round_trip(json!({
        "apiVersion": "tilt.dev/v1alpha1",
        "kind": "KubernetesApply",
        "metadata": {"name": "web"},
        "spec": {
            "yaml": "apiVersion: apps/v1\nkind: Deployment\n",
            "imageMaps": ["web"],
            "imageLocators": [{
                "objectSelector": {"kindRegexp": "^UselessMachine$"},
                "path": "{.spec.image}",
                "object": {"repoField": "repo", "tagField": "tag"}
            }],
            "timeout": "1m30s",
            "kubernetesDiscoveryTemplateSpec": {"extraSelectors": [{"matchLabels": {"app": "web"}}]},
            "discoveryStrategy": "selectors-only",
            "cluster": "default"
        },
        "status": {
            "resultYAML": "apiVersion: apps/v1\n",
            "lastApplyTime": "2024-05-01T10:00:10.000000Z",
            "lastApplyStartTime": "2024-05-01T10:00:09.000000Z",
            "appliedInputHash": "abc=",
            "conditions": [{
                "type": "JobComplete",
                "status": "True",
                "lastTransitionTime": "2024-05-01T10:00:10Z",
                "reason": "JobComplete",
                "message": ""
            }]
        }
    }));
    assert_eq!(ka.spec.timeout, Some(Duration::from_secs(90)));
    assert_eq!(ka.spec.discovery_strategy, Some(KubernetesDiscoveryStrategy::SelectorsOnly));
}

#[test]
fn session_round_trips() {
    assert_round_trip::<Session>(json!({
        "apiVersion": "tilt.dev/v1alpha1",
        "kind": "Session",
        "metadata": {"name": "Tiltfile"},
        "spec": {
            "tiltfilePath": "/src/Tiltfile",
            "exitCondition": "ci",
            "ci": {"k8sGracePeriod": "10s", "timeout": "30m0s"}
        },
        "status": {
            "pid": 4242,
            "startTime": "2024-05-01T10:00:00.000000Z",
            "targets": [{
                "name": "web:runtime",
                "type": "server",
                "resources": ["web"],
                "state": {"terminated": {
                    "startTime": "2024-05-01T10:00:01.000000Z",
                    "finishTime": "2024-05-01T10:00:02.000000Z",
                    "error": "exit status 1",
                    "graceStatus": "Tolerated"
                }}
            }],
            "done": false
        }
    }));
}

#[test]
fn uibutton_and_togglebutton_round_trip() {
    assert_round_trip::<UIButton>(json!({
        "apiVersion": "tilt.dev/v1alpha1",
        "kind": "UIButton",
        "metadata": {"name": "web:restart"},
        "spec": {
            "location": {"componentID": "web", "componentType": "Resource"},
            "text": "Restart",
            "iconName": "refresh",
            "inputs": [
                {"name": "flavor", "label": "Flavor", "choice": {"choices": ["a", "b"]}},
                {"name": "verbose", "label": "", "bool": {"defaultValue": true, "trueString": "-v"}}
            ]
        },
        "status": {
            "lastClickedAt": "2024-05-01T10:03:00.000000Z",
            "inputs": [{"name": "flavor", "choice": {"value": "b"}}, {"name": "verbose", "bool": {"value": true}}]
        }
    }));
    assert_round_trip::<ToggleButton>(json!({
        "apiVersion": "tilt.dev/v1alpha1",
        "kind": "ToggleButton",
        "metadata": {"name": "web-disable"},
        "spec": {
            "location": {"componentID": "web", "componentType": "Resource"},
            "on": {"text": "Disable", "iconSVG": "<svg/>"},
            "off": {"text": "Enable", "requiresConfirmation": true},
            "defaultOn": false,
            "stateSource": {"configMap": {"name": "web-disable", "key": "isDisabled", "onValue": "true"}}
        },
        "status": {"error": ""}
    }));
}
