//! Issue 14, CRDs: `tilt crds` installs every tilt.dev kind into the real kube-apiserver, which accepts
//! their schemas as structural, and both servers then describe the kinds alike: `kubectl explain`,
//! `kubectl api-resources` and `kubectl get` print the same.

use std::process::Stdio;

use serde_json::Value;

use crate::common::TiltUp;
use crate::kube_cluster::{RealCluster, real_cluster};

/// `tilt crds | kubectl apply --server-side -f -` (safe to repeat, and to race with another test doing it).
pub fn install_crds(cluster: &RealCluster) -> Vec<String> {
    install(cluster, &[])
}

/// `tilt crds FLAGS… | kubectl apply --server-side -f -`, waiting until every CRD is Established; their names.
pub fn install(cluster: &RealCluster, flags: &[&str]) -> Vec<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tilt"))
        .args(["crds", "-o", "json"])
        .args(flags)
        .output()
        .unwrap();
    assert!(out.status.success(), "tilt crds: {}", String::from_utf8_lossy(&out.stderr));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<String> =
        list["items"].as_array().unwrap().iter().map(|c| c["metadata"]["name"].as_str().unwrap().to_string()).collect();
    let yaml = std::process::Command::new(env!("CARGO_BIN_EXE_tilt")).arg("crds").args(flags).output().unwrap();
    assert!(yaml.status.success());
    let mut apply = cluster
        .kubectl_command(&["apply", "--server-side", "--force-conflicts", "--field-manager", "tilt", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    apply.stdin.take().unwrap().write_all(&yaml.stdout).unwrap();
    let applied = apply.wait_with_output().unwrap();
    assert!(applied.status.success(), "applying `tilt crds`: {}", String::from_utf8_lossy(&applied.stderr));
    let crds: Vec<String> = names.iter().map(|n| format!("crd/{n}")).collect();
    let mut wait = vec!["wait", "--for=condition=Established", "--timeout=60s"];
    wait.extend(crds.iter().map(String::as_str));
    cluster.kubectl_ok(&wait);
    names
}

#[test]
fn tilt_crds_install_into_kube_apiserver_and_both_servers_describe_the_kinds_alike() {
    let Some(cluster) = real_cluster() else { return };
    let names = install_crds(cluster);
    assert_eq!(names.len(), 22, "{names:?}");

    // kube-apiserver took every schema as structural, with every name accepted.
    let crds: Value = serde_json::from_str(&cluster.kubectl_ok(&["get", "crd", "-o", "json"])).unwrap();
    for crd in crds["items"].as_array().unwrap() {
        let name = crd["metadata"]["name"].as_str().unwrap();
        if !names.iter().any(|n| n == name) {
            continue;
        }
        for condition in crd["status"]["conditions"].as_array().unwrap() {
            let healthy = match condition["type"].as_str().unwrap() {
                "Established" | "NamesAccepted" => condition["status"] == "True",
                _ => condition["status"] == "False",
            };
            assert!(healthy, "{name}: {condition}");
        }
    }

    let tilt = TiltUp::start();
    let both = |args: &[&str]| (tilt.kubectl_ok(args), cluster.kubectl_ok(args));
    let (ours, theirs) = both(&["api-resources", "--api-group", "tilt.dev", "-o", "wide"]);
    assert_eq!(ours, theirs);
    assert!(ours.contains("tilt"), "the kinds are in category `tilt`:\n{ours}");
    for plural in names.iter().map(|n| n.trim_end_matches(".tilt.dev")) {
        let (ours, theirs) = both(&["explain", plural, "--api-version", "tilt.dev/v1alpha1", "--recursive"]);
        assert_eq!(ours, theirs, "kubectl explain {plural}");
    }

    // The same object prints the same columns, all of them `kubectl get tilt` (the category) finds.
    let name = format!("crds-test-{}", std::process::id());
    let cmd = format!(
        "{{\"apiVersion\":\"tilt.dev/v1alpha1\",\"kind\":\"Cmd\",\"metadata\":{{\"name\":\"{name}\"}},\"spec\":{{\"args\":[\"sleep\",\"1\"]}}}}"
    );
    for kubectl in [&tilt.kubectl_command(&[]), &cluster.kubectl_command(&[])] {
        let mut create = std::process::Command::new(kubectl.get_program());
        create
            .args(kubectl.get_args())
            .args(["create", "-f", "-"])
            .envs(kubectl.get_envs().filter_map(|(k, v)| Some((k, v?))));
        let mut child = create.stdin(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(cmd.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success());
    }
    let row = |out: String| -> (String, String) {
        let mut lines = out.lines();
        let header = lines.next().unwrap().split_whitespace().collect::<Vec<_>>().join(" ");
        let row = lines.next().unwrap().split_whitespace().filter(|c| !c.contains('T')).collect::<Vec<_>>().join(" ");
        (header, row)
    };
    let (ours, theirs) = both(&["get", "cmd", &name, "-o", "wide"]);
    assert_eq!(row(ours.clone()), row(theirs));
    assert_eq!(row(ours), ("NAME CREATED AT ARGS".into(), format!("{name} [\"sleep\",\"1\"]")));
    let (ours, theirs) = both(&["get", "tilt", "-o", "name"]);
    assert!(ours.contains(&format!("cmd.tilt.dev/{name}")) && theirs.contains(&format!("cmd.tilt.dev/{name}")));
    cluster.kubectl_ok(&["delete", "cmd", &name]);
}
