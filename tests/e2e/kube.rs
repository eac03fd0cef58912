//! Issue 14, first part: the real control plane (tests/kube) runs a Deployment. kubectl applies it, the real
//! controller-manager makes its ReplicaSet and Pod, the real scheduler binds the Pod to kwok's fake Node, kwok
//! makes it Running and Ready and serves its logs through the apiserver's kubelet proxy.

use std::time::Duration;

use crate::kube_cluster::{KubeNamespace, real_cluster, wait_until};

const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: example.invalid/web:1
        ports:
        - containerPort: 8000
";

#[test]
fn real_deployment_pod_becomes_ready() {
    let Some(cluster) = real_cluster() else { return };
    let ns = KubeNamespace::new(cluster, "deploy");
    ns.apply(DEPLOYMENT);

    wait_until("the Deployment's ReplicaSet", Duration::from_secs(30), || {
        ns.kubectl_ok(&[
            "get",
            "replicasets",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].metadata.ownerReferences[0].name}",
        ]) == "web"
    });
    // `kubectl wait` fails at once while no pod matches, so poll until the pod exists first.
    wait_until("the ReplicaSet's Pod", Duration::from_secs(30), || {
        !ns.kubectl_ok(&["get", "pods", "-l", "app=web", "-o", "name"]).trim().is_empty()
    });
    ns.kubectl_ok(&["wait", "--for=condition=Ready", "pod", "-l", "app=web", "--timeout=60s"]);

    let pod = ns.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[0].spec.nodeName} {.items[0].status.phase} {.items[0].metadata.ownerReferences[0].kind}",
    ]);
    assert_eq!(pod, "kwok-node-0 Running ReplicaSet");
    wait_until("the Deployment's availableReplicas", Duration::from_secs(30), || {
        ns.kubectl_ok(&["get", "deployment", "web", "-o", "jsonpath={.status.availableReplicas}"]) == "1"
    });

    // Pod logs come from kwok's kubelet API, through the apiserver.
    let logs = ns.kubectl_ok(&["logs", "deployment/web"]);
    assert!(logs.contains("kwok: logs of every pod"), "unexpected pod logs: {logs:?}");
}
