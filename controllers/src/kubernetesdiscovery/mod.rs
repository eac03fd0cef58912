//! The KubernetesDiscovery controller: finds the pods of deployed objects and reports them in `status`.
//!
//! Each KubernetesDiscovery gets a monitor task that watches pods in the namespaces of its `spec.watches`
//! (only those: tilt never watches a whole cluster) and keeps the pods that descend from a watched object
//! (owner references followed through ReplicaSets and the like, with a per-monitor cache) or match an extra
//! label selector. On every change it writes `status.pods` (phase, readiness, restarts, container states and
//! waiting reasons such as CrashLoopBackOff) and declares the objects that attach to pods: one
//! PodLogStream per pod and, with a port-forward template, one PortForward (same name as the discovery)
//! aimed at the best pod — the newest running one, ready ones first — so a replaced pod moves it.
//! `reconcile` only starts, restarts (spec change) or stops monitors, so it is idempotent.

pub mod pods;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod as K8sPod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, OwnerReference};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::core::{Selector, SelectorExt};
use kube::runtime::controller::Action;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use tilt_apis::{
    KubernetesDiscovery, KubernetesDiscoverySpec, KubernetesDiscoveryStateRunning, KubernetesDiscoveryStateWaiting,
    KubernetesDiscoveryStatus, PodLogStream, PodLogStreamSpec, PortForward, PortForwardSpec,
};
use tokio_util::sync::CancellationToken;

use self::pods::Owners;
use crate::cluster::ClusterConnection;
use crate::references::resource_of;
use crate::runtime::{Gone, Informers, Reconciler, Setup};
use crate::status::{apply_status, is_not_found};
use tilt_apis::RESOURCE_ANNOTATION;

/// The field manager of this controller's writes.
pub const MANAGER: &str = "tilt-kubernetesdiscovery-controller";
/// The label naming the KubernetesDiscovery that declared a PortForward or PodLogStream.
pub const DISCOVERY_LABEL: &str = "tilt.dev/discovery";
/// How long pod events are gathered before status is written.
const SETTLE: Duration = Duration::from_millis(20);

/// The monitor task of one KubernetesDiscovery.
pub struct Monitor {
    spec: KubernetesDiscoverySpec,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Monitor {
    /// Stops watching. The PortForward and PodLogStreams it declared carry an ownerReference to the
    /// discovery, so the API server's garbage collector deletes them once the discovery is gone.
    async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// The KubernetesDiscovery controller.
pub struct Ctx {
    client: Client,
    cluster: Arc<ClusterConnection>,
}

impl Reconciler for Ctx {
    type K = KubernetesDiscovery;
    type State = Monitor;
    type Error = std::convert::Infallible;
    const NAME: &'static str = "kubernetesdiscovery";

    async fn reconcile(&self, kd: Arc<KubernetesDiscovery>, slot: &mut Option<Monitor>) -> Result<Action, Self::Error> {
        reconcile(kd, self, slot).await;
        Ok(Action::await_change())
    }

    async fn forget(&self, monitor: Monitor, _: Gone) {
        monitor.stop().await;
    }
}

/// Starts, restarts or keeps the monitor of one KubernetesDiscovery.
async fn reconcile(kd: Arc<KubernetesDiscovery>, ctx: &Ctx, slot: &mut Option<Monitor>) {
    let name = kd.name_any();
    if slot.as_ref().is_some_and(|m| m.spec == kd.spec) {
        return;
    }
    if let Some(old) = slot.take() {
        old.stop().await;
    }
    let stop = CancellationToken::new();
    let monitor = PodMonitor {
        client: ctx.client.clone(),
        cluster: ctx.cluster.clone(),
        name,
        resource: resource_of(&*kd),
        owner: owner_ref(&kd),
        spec: kd.spec.clone(),
        declared: Declared::default(),
    };
    let task = tokio::spawn(monitor.run(stop.clone()));
    *slot = Some(Monitor { spec: kd.spec.clone(), stop, task });
}

fn owner_ref(kd: &KubernetesDiscovery) -> OwnerReference {
    OwnerReference {
        api_version: tilt_apis::API_VERSION.into(),
        kind: "KubernetesDiscovery".into(),
        name: kd.name_any(),
        uid: kd.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

/// What a monitor last declared, so unchanged objects are not written again.
#[derive(Default)]
struct Declared {
    status: Option<KubernetesDiscoveryStatus>,
    port_forward: Option<PortForwardSpec>,
    log_streams: HashMap<String, PodLogStreamSpec>,
}

struct PodMonitor {
    client: Client,
    cluster: Arc<ClusterConnection>,
    name: String,
    resource: String,
    owner: OwnerReference,
    spec: KubernetesDiscoverySpec,
    declared: Declared,
}

impl PodMonitor {
    async fn run(mut self, stop: CancellationToken) {
        let started = Timestamp::now();
        let cluster = loop {
            match self.cluster.client().await {
                Ok(c) => break c,
                Err(reason) => {
                    self.write_status(KubernetesDiscoveryStatus {
                        monitor_start_time: Some(MicroTime(started)),
                        waiting: Some(KubernetesDiscoveryStateWaiting { reason }),
                        ..Default::default()
                    })
                    .await;
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    }
                }
            }
        };
        let namespaces: std::collections::BTreeSet<String> = if self.spec.watches.is_empty() {
            [cluster.default_namespace().to_string()].into()
        } else {
            self.spec.watches.iter().map(|w| w.namespace.clone()).collect()
        };
        // Each event carries its namespace: re-lists and errors are per namespace.
        let streams = namespaces.iter().map(|ns| {
            let ns = ns.clone();
            watcher(Api::<K8sPod>::namespaced(cluster.clone(), &ns), watcher::Config::default())
                .default_backoff()
                .map(move |e| (ns.clone(), e))
                .boxed()
        });
        let mut events = futures::stream::select_all(streams);
        let selectors: Vec<Selector> =
            self.spec.extra_selectors.iter().filter_map(|s| Selector::try_from(s.clone()).ok()).collect();
        let watched: HashSet<String> = self.spec.watches.iter().map(|w| w.uid.clone()).collect();
        let mut owners = Owners::new(cluster.clone());
        self.adopt_children().await;
        // Pods by namespace/name; a watcher's re-list replaces its namespace's pods.
        let mut all: BTreeMap<(String, String), K8sPod> = BTreeMap::new();
        let mut relisting: HashMap<String, BTreeMap<(String, String), K8sPod>> = HashMap::new();
        // The last watch error per namespace, until that watch works again.
        let mut errors: BTreeMap<String, String> = BTreeMap::new();
        self.write_status(KubernetesDiscoveryStatus {
            monitor_start_time: Some(MicroTime(started)),
            running: Some(KubernetesDiscoveryStateRunning { start_time: Some(MicroTime(started)) }),
            ..Default::default()
        })
        .await;
        loop {
            let first = tokio::select! {
                _ = stop.cancelled() => return,
                e = events.next() => e,
            };
            let Some(first) = first else { return };
            let mut batch = vec![first];
            let settle = tokio::time::sleep(SETTLE);
            tokio::pin!(settle);
            loop {
                tokio::select! {
                    _ = &mut settle => break,
                    e = events.next() => match e { Some(e) => batch.push(e), None => break },
                }
            }
            let mut changed = false;
            for (ns, event) in batch {
                match event {
                    Ok(watcher::Event::Apply(p)) => {
                        all.insert(key(&p), p);
                        changed = true;
                    }
                    Ok(watcher::Event::Delete(p)) => {
                        all.remove(&key(&p));
                        changed = true;
                    }
                    Ok(watcher::Event::Init) => {
                        relisting.insert(ns.clone(), BTreeMap::new());
                    }
                    Ok(watcher::Event::InitApply(p)) => {
                        relisting.entry(ns.clone()).or_default().insert(key(&p), p);
                    }
                    Ok(watcher::Event::InitDone) => {
                        // The namespace's re-list finished: its pods are exactly what it listed (maybe none).
                        let listed = relisting.remove(&ns).unwrap_or_default();
                        all.retain(|(n, _), _| *n != ns);
                        all.extend(listed);
                        changed = true;
                    }
                    Err(err) => {
                        tracing::debug!(kd = %self.name, %err, "pod watch error");
                        errors.insert(ns.clone(), format!("watching pods in namespace {ns}: {err}"));
                        changed = true;
                        continue;
                    }
                }
                // The watch works again.
                changed |= errors.remove(&ns).is_some();
            }
            if changed {
                let error = (!errors.is_empty()).then(|| errors.values().cloned().collect::<Vec<_>>().join("; "));
                self.publish(started, &all, &watched, &selectors, &mut owners, error).await;
            }
        }
    }

    /// Writes the status and the attached objects for the current pods.
    async fn publish(
        &mut self,
        started: Timestamp,
        all: &BTreeMap<(String, String), K8sPod>,
        watched: &HashSet<String>,
        selectors: &[Selector],
        owners: &mut Owners,
        watch_error: Option<String>,
    ) {
        let mut found = Vec::new();
        for pod in all.values() {
            let ancestor = owners.watched_ancestor(pod, watched).await;
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            if ancestor.is_some() || selectors.iter().any(|s| s.matches(&labels)) {
                found.push(pods::describe(pod, ancestor.unwrap_or_default(), owners.owner_of(pod)));
            }
        }
        owners.prune();
        found.sort_by(|a, b| b.created_at.as_ref().map(|t| t.0).cmp(&a.created_at.as_ref().map(|t| t.0)));
        self.write_status(KubernetesDiscoveryStatus {
            monitor_start_time: Some(MicroTime(started)),
            pods: found.clone(),
            running: Some(KubernetesDiscoveryStateRunning { start_time: Some(MicroTime(started)) }),
            waiting: watch_error.map(|reason| KubernetesDiscoveryStateWaiting { reason }),
        })
        .await;
        self.declare_log_streams(&found).await;
        self.declare_port_forward(&found, all).await;
    }

    async fn write_status(&mut self, status: KubernetesDiscoveryStatus) {
        if self.declared.status.as_ref() == Some(&status) {
            return;
        }
        let api: Api<KubernetesDiscovery> = Api::all(self.client.clone());
        match apply_status(&api, &self.name, MANAGER, &status).await {
            Ok(()) => self.declared.status = Some(status),
            Err(err) => tracing::warn!(kd = %self.name, %err, "writing KubernetesDiscovery status"),
        }
    }

    /// Takes over what an earlier monitor of this discovery declared (before a spec change, or an object of
    /// the same name), so children for pods no longer found are deleted rather than left behind.
    async fn adopt_children(&mut self) {
        let params = ListParams::default().labels(&format!("{DISCOVERY_LABEL}={}", self.name));
        match Api::<PodLogStream>::all(self.client.clone()).list(&params).await {
            Ok(list) => self.declared.log_streams.extend(list.items.into_iter().map(|o| (o.name_any(), o.spec))),
            Err(err) => tracing::warn!(kd = %self.name, %err, "listing PodLogStreams"),
        }
        match Api::<PortForward>::all(self.client.clone()).get_opt(&tilt_apis::path_name(&self.name)).await {
            Ok(pf) => {
                self.declared.port_forward = pf.filter(|pf| pf.labels().contains_key(DISCOVERY_LABEL)).map(|pf| pf.spec)
            }
            Err(err) => tracing::warn!(kd = %self.name, %err, "reading the PortForward"),
        }
    }

    fn child_meta<K: Resource>(&self, object: &mut K) {
        let meta = object.meta_mut();
        meta.owner_references = Some(vec![self.owner.clone()]);
        meta.annotations = Some([(RESOURCE_ANNOTATION.to_string(), self.resource.clone())].into());
        meta.labels = Some([(DISCOVERY_LABEL.to_string(), self.name.clone())].into());
    }

    async fn declare_log_streams(&mut self, found: &[tilt_apis::Pod]) {
        let template = self.spec.pod_log_stream_template_spec.clone().unwrap_or_default();
        let api: Api<PodLogStream> = Api::all(self.client.clone());
        let mut wanted = HashSet::new();
        for pod in found.iter().filter(|p| !p.deleting) {
            let name = format!("{}-{}", self.name, pod.name);
            let spec = PodLogStreamSpec {
                pod: pod.name.clone(),
                namespace: pod.namespace.clone(),
                since_time: template.since_time.clone(),
                only_containers: template.only_containers.clone(),
                ignore_containers: template.ignore_containers.clone(),
                cluster: self.spec.cluster.clone(),
            };
            wanted.insert(name.clone());
            if self.declared.log_streams.get(&name) == Some(&spec) {
                continue;
            }
            let mut pls = PodLogStream::new(&name, spec.clone());
            self.child_meta(&mut pls);
            match api
                .patch(&tilt_apis::path_name(&name), &PatchParams::apply(MANAGER).force(), &Patch::Apply(&pls))
                .await
            {
                Ok(_) => {
                    self.declared.log_streams.insert(name, spec);
                }
                Err(err) => tracing::warn!(kd = %self.name, %err, "declaring a PodLogStream"),
            }
        }
        let gone: Vec<String> = self.declared.log_streams.keys().filter(|n| !wanted.contains(*n)).cloned().collect();
        for name in gone {
            match api.delete(&tilt_apis::path_name(&name), &DeleteParams::default()).await {
                Err(err) if !is_not_found(&err) => tracing::warn!(kd = %self.name, %err, "deleting a PodLogStream"),
                _ => {
                    self.declared.log_streams.remove(&name);
                }
            }
        }
    }

    async fn declare_port_forward(&mut self, found: &[tilt_apis::Pod], all: &BTreeMap<(String, String), K8sPod>) {
        let Some(template) = self.spec.port_forward_template_spec.clone().filter(|t| !t.forwards.is_empty()) else {
            // No forwards (any more): the one an earlier spec declared goes.
            if self.declared.port_forward.is_some() {
                match Api::<PortForward>::all(self.client.clone())
                    .delete(&tilt_apis::path_name(&self.name), &DeleteParams::default())
                    .await
                {
                    Ok(_) => self.declared.port_forward = None,
                    Err(err) if is_not_found(&err) => self.declared.port_forward = None,
                    Err(err) => tracing::warn!(kd = %self.name, %err, "deleting the PortForward"),
                }
            }
            return;
        };
        let Some(best) = pods::best_pod(found) else { return };
        let declared_ports: Vec<i32> = all
            .get(&(best.namespace.clone(), best.name.clone()))
            .and_then(|p| p.spec.as_ref())
            .map(|s| s.containers.iter().flat_map(|c| c.ports.iter().flatten().map(|p| p.container_port)).collect())
            .unwrap_or_default();
        let forwards = template
            .forwards
            .iter()
            .map(|f| {
                let mut f = f.clone();
                if f.container_port == 0 {
                    // As Go Tilt: the declared port equal to the local one, else the first, else the local one.
                    f.container_port = declared_ports
                        .iter()
                        .copied()
                        .find(|p| *p == f.local_port)
                        .or(declared_ports.first().copied())
                        .unwrap_or(f.local_port);
                }
                f
            })
            .collect();
        let spec = PortForwardSpec {
            pod_name: best.name.clone(),
            namespace: best.namespace.clone(),
            forwards,
            cluster: self.spec.cluster.clone(),
        };
        if self.declared.port_forward.as_ref() == Some(&spec) {
            return;
        }
        let mut pf = PortForward::new(&self.name, spec.clone());
        self.child_meta(&mut pf);
        let api: Api<PortForward> = Api::all(self.client.clone());
        match api
            .patch(&tilt_apis::path_name(&self.name), &PatchParams::apply(MANAGER).force(), &Patch::Apply(&pf))
            .await
        {
            Ok(_) => self.declared.port_forward = Some(spec),
            Err(err) => tracing::warn!(kd = %self.name, %err, "declaring the PortForward"),
        }
    }
}

fn key(p: &K8sPod) -> (String, String) {
    (p.namespace().unwrap_or_default(), p.name_any())
}

/// Runs the controller until `shutdown` is cancelled, then stops every monitor.
pub async fn run(informers: Arc<Informers>, shutdown: CancellationToken, cluster: Arc<ClusterConnection>) {
    let ctx = Arc::new(Ctx { client: informers.client().clone(), cluster });
    Setup::new(ctx, &informers).run(shutdown).await;
}
