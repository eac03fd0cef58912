//! The PortForward controller: listens on each forward's local port and carries every accepted connection
//! to the pod's container port over the cluster's `pods/NAME/portforward` websocket.
//!
//! Each forward has a listener task (`listener.rs`) bound to `host:localPort` (`localhost` when the host is
//! empty: every address it resolves to). A connection dials the pod when it is accepted, with a deadline,
//! so a dead apiserver or kubelet fails that connection instead of wedging it. The pod a connection goes to
//! is read when it is accepted: when `spec.podName` changes (the pod was replaced), the listener stays bound
//! and only new connections go to the new pod. A listener is rebound only when its host or local port
//! changes.
//!
//! Every failure — a port that cannot be bound, a dial that times out, a pod that is gone, an error the
//! kubelet sends on the stream's error channel ("connection refused"), a connection that breaks — is written
//! to that forward's `status.forwardStatuses[].error`, naming the pod, the ports and the cause; the next
//! connection that gets bytes from the pod clears it. A port that cannot be bound is retried with backoff.
//! Deleting the object (or shutting down) closes its listeners and connections.

mod listener;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use tilt_apis::{Forward, ForwardStatus, PortForward, PortForwardSpec};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cluster::ClusterConnection;
use crate::runtime::{Gone, Informers, Reconciler, Setup};

/// The field manager of this controller's status writes.
pub const MANAGER: &str = "tilt-portforward-controller";

/// The host a forward listens on when `host` is empty (Go Tilt's default).
pub const DEFAULT_HOST: &str = "localhost";

/// How long a connection may take to reach the pod before it is given up.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Where new connections of one forward go.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    pod: String,
    namespace: String,
    container_port: u16,
}

/// The forward statuses of one object, kept by listener id and written in spec order.
#[derive(Default)]
struct Forwards {
    order: Vec<u64>,
    by_id: HashMap<u64, ForwardStatus>,
}

/// The status of one object as this controller knows it; writes are serialized so they land in order.
struct StatusCell {
    cell: crate::status::StatusCell<PortForward>,
    forwards: tokio::sync::Mutex<Forwards>,
}

impl StatusCell {
    fn new(client: Client, name: &str) -> Self {
        StatusCell {
            cell: crate::status::StatusCell::new(client, name, MANAGER),
            forwards: tokio::sync::Mutex::default(),
        }
    }

    /// Applies `change` and writes the whole status if it differs from what was last written.
    async fn update(&self, change: impl FnOnce(&mut Forwards)) {
        // Held across the write, so writes land in the order their changes were made.
        let mut forwards = self.forwards.lock().await;
        change(&mut forwards);
        let statuses: Vec<ForwardStatus> =
            forwards.order.iter().filter_map(|id| forwards.by_id.get(id).cloned()).collect();
        self.cell.update(|s| s.forward_statuses = statuses).await;
    }

    /// Changes the status of the forward `id`, if it is still in the spec.
    async fn forward(&self, id: u64, change: impl FnOnce(&mut ForwardStatus)) {
        self.update(|f| {
            if let Some(s) = f.by_id.get_mut(&id) {
                change(s);
            }
        })
        .await;
    }
}

/// One forward of a running object: its listener task and where it sends connections.
struct Listener {
    id: u64,
    /// `(host, localPort)` as in the spec; a listener is reused for a forward with the same key.
    /// `None` for a forward that cannot run (its status says why).
    key: Option<(String, i32)>,
    target: watch::Sender<Target>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Listener {
    async fn stop(self) {
        self.stop.cancel();
        if let Some(task) = self.task {
            let _ = task.await;
        }
    }
}

/// What the controller runs for one object.
pub struct Entry {
    spec: PortForwardSpec,
    listeners: Vec<Listener>,
    status: Arc<StatusCell>,
}

/// The PortForward controller.
pub struct Ctx {
    client: Client,
    cluster: Arc<ClusterConnection>,
    next_id: AtomicU64,
    shutdown: CancellationToken,
}

impl Reconciler for Ctx {
    type K = PortForward;
    type State = Entry;
    type Error = std::convert::Infallible;
    const NAME: &'static str = "portforward";

    async fn reconcile(&self, pf: Arc<PortForward>, entry: &mut Option<Entry>) -> Result<Action, Self::Error> {
        reconcile(pf, self, entry).await;
        Ok(Action::await_change())
    }

    async fn forget(&self, entry: Entry, _: Gone) {
        futures::future::join_all(entry.listeners.into_iter().map(Listener::stop)).await;
    }
}

/// The host a forward listens on.
fn host_of(forward: &Forward) -> String {
    if forward.host.is_empty() { DEFAULT_HOST.to_string() } else { forward.host.clone() }
}

/// Why the object cannot be forwarded at all, if it cannot.
fn invalid_spec(spec: &PortForwardSpec) -> Option<String> {
    if spec.pod_name.is_empty() {
        return Some("spec.podName is empty".into());
    }
    if !spec.cluster.is_empty() && spec.cluster != "default" {
        return Some(format!("cluster {:?} is not supported: tilt forwards to the default cluster only", spec.cluster));
    }
    None
}

/// Why one forward cannot run, if it cannot.
fn invalid_forward(forward: &Forward) -> Option<String> {
    if !(1..=65535).contains(&forward.container_port) {
        return Some(format!("containerPort {} is not a port number (1-65535)", forward.container_port));
    }
    if !(0..=65535).contains(&forward.local_port) {
        return Some(format!("localPort {} is not a port number (0-65535; 0 picks a free one)", forward.local_port));
    }
    None
}

/// Makes the object's listeners follow its spec.
async fn reconcile(pf: Arc<PortForward>, ctx: &Ctx, entry: &mut Option<Entry>) {
    let name = pf.name_any();
    if entry.as_ref().is_some_and(|e| e.spec == pf.spec) {
        return;
    }
    let (mut old, status) = match entry.take() {
        Some(e) => (e.listeners, e.status),
        None => (Vec::new(), Arc::new(StatusCell::new(ctx.client.clone(), &name))),
    };
    let spec = &pf.spec;
    let client = match invalid_spec(spec) {
        Some(why) => Err(why),
        None => ctx.cluster.client().await,
    };
    let namespace = match &client {
        Ok(c) if spec.namespace.is_empty() => c.default_namespace().to_string(),
        _ => spec.namespace.clone(),
    };
    // Match forwards to running listeners by (host, localPort); the rest are closed before new ones bind.
    let mut plan: Vec<(usize, Option<Listener>)> = Vec::new();
    for (i, forward) in spec.forwards.iter().enumerate() {
        let key = (host_of(forward), forward.local_port);
        let reuse = match (&client, invalid_forward(forward)) {
            (Ok(_), None) => old.iter().position(|l| l.key.as_ref() == Some(&key)).map(|j| old.remove(j)),
            _ => None,
        };
        plan.push((i, reuse));
    }
    futures::future::join_all(old.into_iter().map(Listener::stop)).await;
    let mut listeners = Vec::new();
    let mut fresh: Vec<(u64, ForwardStatus)> = Vec::new();
    for (i, reuse) in plan {
        let forward = &spec.forwards[i];
        let target = Target {
            pod: spec.pod_name.clone(),
            namespace: namespace.clone(),
            container_port: forward.container_port.clamp(0, 65535) as u16,
        };
        if let Some(listener) = reuse {
            listener.target.send_replace(target);
            listeners.push(listener);
            continue;
        }
        let id = ctx.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(target);
        let stop = ctx.shutdown.child_token();
        let initial = ForwardStatus {
            local_port: forward.local_port,
            container_port: forward.container_port,
            ..Default::default()
        };
        let why = match &client {
            Err(why) => Some(why.clone()),
            Ok(_) => invalid_forward(forward),
        };
        let (key, task) = match (&client, why) {
            (Ok(client), None) => {
                let key = (host_of(forward), forward.local_port);
                let run = listener::Run {
                    id,
                    host: key.0.clone(),
                    local_port: forward.local_port as u16,
                    target: rx,
                    cluster: client.clone(),
                    status: status.clone(),
                    stop: stop.clone(),
                };
                (Some(key), Some(tokio::spawn(run.run())))
            }
            (_, why) => {
                fresh.push((id, ForwardStatus { error: why.unwrap_or_default(), ..initial }));
                listeners.push(Listener { id, key: None, target: tx, stop, task: None });
                continue;
            }
        };
        fresh.push((id, initial));
        listeners.push(Listener { id, key, target: tx, stop, task });
    }
    let order: Vec<u64> = listeners.iter().map(|l| l.id).collect();
    let container_ports: HashMap<u64, i32> =
        listeners.iter().zip(&spec.forwards).map(|(l, f)| (l.id, f.container_port)).collect();
    status
        .update(move |f| {
            for (id, s) in fresh {
                // A listener may have reported already; keep what it wrote.
                f.by_id.entry(id).or_insert(s);
            }
            f.by_id.retain(|id, _| order.contains(id));
            for (id, port) in container_ports {
                if let Some(s) = f.by_id.get_mut(&id) {
                    s.container_port = port;
                }
            }
            f.order = order;
        })
        .await;
    *entry = Some(Entry { spec: pf.spec.clone(), listeners, status });
}

/// Runs the controller until `shutdown` is cancelled, then closes every listener and connection. Pods are
/// reached in the cluster `cluster` connects to; the objects through `client` (tilt's API).
pub async fn run(informers: Arc<Informers>, shutdown: CancellationToken, cluster: Arc<ClusterConnection>) {
    let ctx = Arc::new(Ctx {
        client: informers.client().clone(),
        cluster,
        next_id: AtomicU64::new(0),
        shutdown: shutdown.child_token(),
    });
    Setup::new(ctx, &informers).run(shutdown).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward(local: i32, container: i32) -> Forward {
        Forward { local_port: local, container_port: container, ..Default::default() }
    }

    #[test]
    fn forwards_are_validated() {
        assert!(invalid_forward(&forward(8080, 80)).is_none());
        assert!(invalid_forward(&forward(0, 80)).is_none());
        assert!(invalid_forward(&forward(8080, 0)).unwrap().contains("containerPort 0"));
        assert!(invalid_forward(&forward(70000, 80)).unwrap().contains("localPort 70000"));
        assert!(invalid_forward(&forward(-1, 80)).unwrap().contains("localPort -1"));
        let spec = PortForwardSpec { pod_name: String::new(), ..Default::default() };
        assert_eq!(invalid_spec(&spec).unwrap(), "spec.podName is empty");
        let spec = PortForwardSpec { pod_name: "p".into(), cluster: "prod".into(), ..Default::default() };
        assert!(invalid_spec(&spec).unwrap().contains("\"prod\""));
    }

    #[test]
    fn the_default_host_is_localhost() {
        assert_eq!(host_of(&forward(1, 2)), "localhost");
        assert_eq!(host_of(&Forward { host: "127.0.0.1".into(), ..forward(1, 2) }), "127.0.0.1");
    }
}
