//! Pods as a KubernetesDiscovery reports them: ancestry through owner references, a summary of each pod
//! in Go Tilt's `status.pods[]` shape, and the choice of the pod a port-forward goes to.

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::{ContainerStatus, Pod as K8sPod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::{Client, ResourceExt};
use tilt_apis::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, Pod,
    PodCondition, PodOwner,
};

/// Waiting reasons that mean something is wrong (not just starting).
const ERROR_REASONS: [&str; 7] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];
/// How many owner hops are followed (Pod → ReplicaSet → Deployment → something above).
const MAX_DEPTH: usize = 4;

/// The owner references of objects above pods, fetched once per object. Entries not looked up since the
/// last [`Owners::prune`] are dropped by it, so the cache holds only the ancestry of current pods (old
/// ReplicaSets of every rollout would otherwise pile up).
pub struct Owners {
    client: Client,
    cache: HashMap<String, Vec<OwnerReference>>,
    used: HashSet<String>,
}

impl Owners {
    /// An empty cache reading through `client`.
    pub fn new(client: Client) -> Self {
        Owners { client, cache: HashMap::new(), used: HashSet::new() }
    }

    /// Forgets the objects not looked up since the last prune.
    pub fn prune(&mut self) {
        let used = std::mem::take(&mut self.used);
        self.cache.retain(|uid, _| used.contains(uid));
    }

    /// The UID of the first watched object among the pod's ancestors.
    pub async fn watched_ancestor(&mut self, pod: &K8sPod, watched: &HashSet<String>) -> Option<String> {
        if watched.is_empty() {
            return None;
        }
        let namespace = pod.namespace().unwrap_or_default();
        let mut frontier: Vec<OwnerReference> = pod.owner_references().to_vec();
        for _ in 0..MAX_DEPTH {
            if let Some(hit) = frontier.iter().find(|o| watched.contains(&o.uid)) {
                return Some(hit.uid.clone());
            }
            let mut next = Vec::new();
            for owner in &frontier {
                next.extend(self.owners_of(&namespace, owner).await);
            }
            if next.is_empty() {
                break;
            }
            frontier = next;
        }
        None
    }

    async fn owners_of(&mut self, namespace: &str, owner: &OwnerReference) -> Vec<OwnerReference> {
        self.used.insert(owner.uid.clone());
        if let Some(found) = self.cache.get(&owner.uid) {
            return found.clone();
        }
        let (group, version) = owner.api_version.rsplit_once('/').unwrap_or(("", &owner.api_version));
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &owner.kind));
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, &resource);
        match api.get_opt(&owner.name).await {
            Ok(Some(object)) if object.uid().as_deref() == Some(owner.uid.as_str()) => {
                let owners = object.owner_references().to_vec();
                self.cache.insert(owner.uid.clone(), owners.clone());
                owners
            }
            // Gone, or a different object of the same name: nothing above it.
            Ok(_) => {
                self.cache.insert(owner.uid.clone(), Vec::new());
                Vec::new()
            }
            Err(err) => {
                tracing::debug!(%err, owner = %owner.name, "reading a pod owner");
                Vec::new()
            }
        }
    }

    /// The pod's controlling owner.
    pub fn owner_of(&self, pod: &K8sPod) -> Option<PodOwner> {
        let refs = pod.owner_references();
        let owner = refs.iter().find(|o| o.controller == Some(true)).or(refs.first())?;
        Some(PodOwner {
            name: owner.name.clone(),
            api_version: owner.api_version.clone(),
            kind: owner.kind.clone(),
            creation_timestamp: None,
        })
    }
}

fn container(status: Option<&ContainerStatus>, spec: &k8s_openapi::api::core::v1::Container) -> Container {
    let state = status.and_then(|s| s.state.as_ref());
    Container {
        name: spec.name.clone(),
        id: status.and_then(|s| s.container_id.clone()).unwrap_or_default(),
        ready: status.is_some_and(|s| s.ready),
        image: status.map(|s| s.image.clone()).or_else(|| spec.image.clone()).unwrap_or_default(),
        restarts: status.map_or(0, |s| s.restart_count),
        state: ContainerState {
            waiting: state
                .and_then(|s| s.waiting.as_ref())
                .map(|w| ContainerStateWaiting { reason: w.reason.clone().unwrap_or_default() }),
            running: state
                .and_then(|s| s.running.as_ref())
                .map(|r| ContainerStateRunning { started_at: r.started_at.clone() }),
            terminated: state.and_then(|s| s.terminated.as_ref()).map(|t| ContainerStateTerminated {
                started_at: t.started_at.clone(),
                finished_at: t.finished_at.clone(),
                reason: t.reason.clone().unwrap_or_default(),
                exit_code: t.exit_code,
            }),
        },
        ports: spec.ports.iter().flatten().map(|p| p.container_port).collect(),
    }
}

/// The summary of one pod.
pub fn describe(pod: &K8sPod, ancestor_uid: String, owner: Option<PodOwner>) -> Pod {
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let find = |list: &Option<Vec<ContainerStatus>>, name: &str| {
        list.as_ref().and_then(|l| l.iter().find(|s| s.name == name).cloned())
    };
    let containers: Vec<Container> =
        spec.containers.iter().map(|c| container(find(&status.container_statuses, &c.name).as_ref(), c)).collect();
    let init_containers: Vec<Container> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| container(find(&status.init_container_statuses, &c.name).as_ref(), c))
        .collect();
    let deleting = pod.metadata.deletion_timestamp.is_some();
    let phase = status.phase.clone().unwrap_or_default();
    let mut errors = Vec::new();
    let mut shown = None;
    for (c, s) in containers.iter().zip(spec.containers.iter().map(|c| find(&status.container_statuses, &c.name))) {
        if let Some(w) = s.as_ref().and_then(|s| s.state.as_ref()).and_then(|st| st.waiting.as_ref()) {
            let reason = w.reason.clone().unwrap_or_default();
            if ERROR_REASONS.contains(&reason.as_str()) {
                let message = w.message.clone().filter(|m| !m.is_empty());
                errors.push(match message {
                    Some(m) => format!("{}: {reason}: {m}", c.name),
                    None => format!("{}: {reason}", c.name),
                });
            }
            if shown.is_none() && !reason.is_empty() {
                shown = Some(reason);
            }
        }
    }
    Pod {
        uid: pod.uid().unwrap_or_default(),
        name: pod.name_any(),
        namespace: pod.namespace().unwrap_or_default(),
        created_at: pod.metadata.creation_timestamp.clone(),
        phase: phase.clone(),
        deleting,
        conditions: status
            .conditions
            .iter()
            .flatten()
            .map(|c| PodCondition {
                type_: c.type_.clone(),
                status: c.status.clone(),
                last_transition_time: c.last_transition_time.clone(),
                reason: c.reason.clone().unwrap_or_default(),
                message: c.message.clone().unwrap_or_default(),
            })
            .collect(),
        init_containers,
        containers,
        ancestor_uid,
        pod_template_spec_hash: pod.labels().get("pod-template-hash").cloned().unwrap_or_default(),
        // What `kubectl get pods` shows in STATUS.
        status: if deleting { "Terminating".into() } else { shown.unwrap_or(phase) },
        errors,
        owner,
    }
}

pub use tilt_apis::best_pod;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn the_owner_cache_keeps_only_the_ancestry_of_current_pods() {
        // Nothing listens here: every answer comes from the cache.
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        let mut owners = Owners::new(Client::try_from(config).unwrap());
        let watched: HashSet<String> = ["deploy".to_string()].into();
        let rs = |n: usize| OwnerReference {
            uid: format!("rs-{n}"),
            name: format!("app-{n}"),
            kind: "ReplicaSet".into(),
            api_version: "apps/v1".into(),
            ..Default::default()
        };
        let deploy = OwnerReference { uid: "deploy".into(), ..rs(0) };
        for n in 0..50 {
            // One rollout: a new ReplicaSet, whose pod replaces the last one's.
            owners.cache.insert(rs(n).uid, vec![deploy.clone()]);
            let pod = pod(
                json!({"metadata": {"name": format!("app-{n}-x"), "namespace": "default", "ownerReferences": [rs(n)]}}),
            );
            assert_eq!(owners.watched_ancestor(&pod, &watched).await.as_deref(), Some("deploy"));
            owners.prune();
            assert_eq!(owners.cache.len(), 1, "only the current pod's ReplicaSet stays cached");
        }
    }

    fn pod(value: serde_json::Value) -> K8sPod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn describes_a_crashing_pod_with_its_reason() {
        let p = pod(json!({
            "metadata": {"name": "app-1", "namespace": "default", "uid": "u", "labels": {"pod-template-hash": "h"}},
            "spec": {"containers": [{"name": "app", "image": "app:1", "ports": [{"containerPort": 8000}]}]},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "app", "image": "app:1", "imageID": "", "ready": false, "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}}
            }]}
        }));
        let d = describe(&p, "anc".into(), None);
        assert_eq!(d.status, "CrashLoopBackOff");
        assert_eq!(d.errors, vec!["app: CrashLoopBackOff: back-off 40s".to_string()]);
        assert_eq!(d.containers[0].restarts, 3);
        assert_eq!(d.containers[0].ports, vec![8000]);
        assert_eq!(d.pod_template_spec_hash, "h");
        assert!(!d.is_ready());
    }

    #[test]
    fn the_best_pod_is_ready_then_newest() {
        let mk = |name: &str, created: &str, ready: bool| {
            let p = pod(json!({
                "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
                "status": {"phase": "Running", "containerStatuses": [{
                    "name": "c", "image": "i", "imageID": "", "ready": ready, "restartCount": 0}]}
            }));
            describe(&p, String::new(), None)
        };
        let pods = vec![
            mk("old-ready", "2026-01-01T00:00:00Z", true),
            mk("new-unready", "2026-01-02T00:00:00Z", false),
            mk("mid-ready", "2026-01-01T12:00:00Z", true),
        ];
        assert_eq!(best_pod(&pods).unwrap().name, "mid-ready");
        assert_eq!(best_pod(&pods[1..2]).unwrap().name, "new-unready");
        assert!(best_pod(&[]).is_none());
    }
}
