//! The PodLogStream controller: streams the logs of one pod's containers from the user's cluster into the
//! [`LogStore`], under the resource named by the object's `tilt.dev/resource` annotation.
//!
//! Each PodLogStream gets one task, which finds its pod and starts a task per container (init containers
//! too, filtered by `spec.onlyContainers` / `spec.ignoreContainers`). A container task follows
//! `GET pods/NAME/log?follow=true&timestamps=true`; when the stream ends — the container restarted or
//! exited, the pod went away, the network broke — it looks at the pod and reconnects with backoff from the
//! last timestamp it saw, skipping replayed lines (`resume.rs`), so a restart neither duplicates lines nor
//! loses the new instance's. A container that exited for good (per the pod's phase and restart policy) is
//! reported `terminated`; a pod that is gone is reported in `status.error` and retried slowly while the
//! object exists.
//!
//! The table of running streams is keyed by object name and remembers the UID and spec it was started
//! for, so reconciling an unchanged object does nothing; a spec change stops the old task (awaited, so no
//! two tasks write the same lines) and starts a new one that keeps the read positions when the pod is the
//! same. Deletes are seen on the watch stream that feeds the controller.

pub mod resume;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::AsyncBufReadExt;
use futures::io::AsyncBufRead;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use kube::api::{Api, LogParams};
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use tilt_apis::{ContainerLogStreamStatus, PodLogStream, PodLogStreamSpec, PodLogStreamStatus};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::resume::{Position, split_timestamp};
use crate::cluster::ClusterConnection;
use crate::logs::LogStore;
use crate::references::resource_of;
use crate::runtime::{Gone, Informers, Reconciler, Setup};
use crate::status::message;

/// The field manager of this controller's status writes.
pub const MANAGER: &str = "tilt-podlogstream-controller";

/// Longer lines are cut into pieces of this many bytes, so a log without newlines cannot exhaust memory.
const MAX_LINE: usize = 64 * 1024;

/// First and longest wait before reconnecting to a container's log.
const RECONNECT_BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));

/// First and longest wait before looking again for a pod that is not there.
const POD_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(10));

type StatusCell = crate::status::StatusCell<PodLogStream>;

/// Writes `error` into the status.
async fn set_error(status: &StatusCell, error: String) {
    status.update(|s| s.error = error).await;
}

/// Changes the status of container `name` with `change`.
async fn set_container(status: &StatusCell, name: &str, change: impl FnOnce(&mut ContainerLogStreamStatus)) {
    status.update(|s| change(container_mut(s, name))).await;
}

/// The status entry of container `name`, added if missing.
fn container_mut<'a>(s: &'a mut PodLogStreamStatus, name: &str) -> &'a mut ContainerLogStreamStatus {
    match s.container_statuses.iter().position(|c| c.name == name) {
        Some(i) => &mut s.container_statuses[i],
        None => {
            s.container_statuses.push(ContainerLogStreamStatus { name: name.to_string(), ..Default::default() });
            s.container_statuses.last_mut().expect("just pushed")
        }
    }
}

/// A running stream of one object.
pub struct Entry {
    spec: PodLogStreamSpec,
    /// Read positions by container name, kept across spec changes that keep the pod.
    positions: Positions,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

type Positions = Arc<Mutex<HashMap<String, Arc<Mutex<Position>>>>>;

impl Entry {
    async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// The PodLogStream controller.
pub struct Ctx {
    client: Client,
    cluster: Arc<ClusterConnection>,
    logs: Arc<LogStore>,
    shutdown: CancellationToken,
}

impl Reconciler for Ctx {
    type K = PodLogStream;
    type State = Entry;
    type Error = std::convert::Infallible;
    const NAME: &'static str = "podlogstream";

    async fn reconcile(&self, pls: Arc<PodLogStream>, entry: &mut Option<Entry>) -> Result<Action, Self::Error> {
        reconcile(pls, self, entry).await;
        Ok(Action::await_change())
    }

    async fn forget(&self, entry: Entry, _: Gone) {
        entry.stop().await;
    }
}

/// Why the spec cannot be streamed as written, if it cannot.
fn invalid_spec(spec: &PodLogStreamSpec) -> Option<String> {
    if spec.pod.is_empty() {
        return Some("spec.pod is empty".into());
    }
    if !spec.cluster.is_empty() && spec.cluster != "default" {
        return Some(format!(
            "cluster {:?} is not supported: tilt streams logs from the default cluster only",
            spec.cluster
        ));
    }
    None
}

/// Makes the object's stream follow its spec.
async fn reconcile(pls: Arc<PodLogStream>, ctx: &Ctx, entry: &mut Option<Entry>) {
    let name = pls.name_any();
    if entry.as_ref().is_some_and(|e| e.spec == pls.spec) {
        return;
    }
    let mut positions = Positions::default();
    if let Some(old) = entry.take() {
        if old.spec.pod == pls.spec.pod && old.spec.namespace == pls.spec.namespace {
            positions = old.positions.clone();
        }
        old.stop().await;
    }
    let status = Arc::new(StatusCell::new(ctx.client.clone(), &name, MANAGER));
    let stop = ctx.shutdown.child_token();
    let task = match invalid_spec(&pls.spec) {
        Some(why) => {
            set_error(&status, why).await;
            tokio::spawn(async {})
        }
        None => {
            let stream = PodStream {
                cluster: ctx.cluster.clone(),
                logs: ctx.logs.clone(),
                resource: resource_of(&*pls),
                spec: pls.spec.clone(),
                positions: positions.clone(),
                status,
                stop: stop.clone(),
            };
            tokio::spawn(stream.run())
        }
    };
    *entry = Some(Entry { spec: pls.spec.clone(), positions, stop, task });
}

/// Exponential backoff between two bounds.
struct Backoff {
    first: Duration,
    longest: Duration,
    next: Duration,
}

impl Backoff {
    fn new((first, longest): (Duration, Duration)) -> Self {
        Backoff { first, longest, next: first }
    }

    fn next(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.longest);
        d
    }

    fn reset(&mut self) {
        self.next = self.first;
    }
}

/// Sleeps `d`; false if `stop` was cancelled first.
async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

/// The names of the pod's containers to stream: init containers, then containers, filtered by the spec.
fn selected_containers(pod: &Pod, only: &[String], ignore: &[String]) -> Vec<String> {
    let Some(spec) = &pod.spec else { return Vec::new() };
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .map(|c| c.name.clone())
        .filter(|n| (only.is_empty() || only.contains(n)) && !ignore.contains(n))
        .collect()
}

/// The observed state of one container, as far as its logs go.
#[derive(Debug, PartialEq)]
enum ContainerState {
    /// It has not started yet (or is between restarts): nothing to stream, not an error.
    Waiting,
    /// It runs, or exited and will be restarted.
    Live,
    /// It exited and will not run again: its logs are complete.
    Finished,
}

fn container_state(pod: &Pod, name: &str) -> ContainerState {
    let status = pod.status.as_ref();
    if matches!(status.and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed")) {
        return ContainerState::Finished;
    }
    let find = |list: Option<&Vec<ContainerStatus>>| list.and_then(|l| l.iter().find(|c| c.name == name).cloned());
    let init = find(status.and_then(|s| s.init_container_statuses.as_ref()));
    let is_init = init.is_some();
    let Some(cs) = init.or_else(|| find(status.and_then(|s| s.container_statuses.as_ref()))) else {
        return ContainerState::Waiting;
    };
    let state = cs.state.unwrap_or_default();
    if state.running.is_some() {
        return ContainerState::Live;
    }
    if let Some(t) = state.terminated {
        let policy = pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()).unwrap_or("Always");
        let done = match (is_init, policy) {
            // An init container that succeeded never runs again.
            (true, _) => t.exit_code == 0,
            (false, "Never") => true,
            (false, "OnFailure") => t.exit_code == 0,
            _ => false,
        };
        return if done { ContainerState::Finished } else { ContainerState::Live };
    }
    if cs.last_state.is_some_and(|s| s.terminated.is_some()) {
        // Waiting to be restarted (CrashLoopBackOff): its last instance's logs can still be read.
        return ContainerState::Live;
    }
    ContainerState::Waiting
}

/// Reads the next line (without its newline) into `buf`; false at the end of the stream. A line longer
/// than [`MAX_LINE`] comes out in pieces.
async fn next_line(reader: &mut (impl AsyncBufRead + Unpin), buf: &mut Vec<u8>) -> std::io::Result<bool> {
    buf.clear();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(!buf.is_empty());
        }
        let room = MAX_LINE - buf.len();
        let window = &available[..available.len().min(room)];
        if let Some(i) = window.iter().position(|b| *b == b'\n') {
            buf.extend_from_slice(&window[..i]);
            reader.consume_unpin(i + 1);
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(true);
        }
        let n = window.len();
        buf.extend_from_slice(window);
        reader.consume_unpin(n);
        if buf.len() >= MAX_LINE {
            return Ok(true);
        }
    }
}

/// The stream of one PodLogStream: finds the pod, then runs one task per container.
struct PodStream {
    cluster: Arc<ClusterConnection>,
    logs: Arc<LogStore>,
    resource: String,
    spec: PodLogStreamSpec,
    positions: Positions,
    status: Arc<StatusCell>,
    stop: CancellationToken,
}

impl PodStream {
    async fn run(self) {
        let client = match self.cluster.client().await {
            Ok(c) => c,
            Err(why) => return set_error(&self.status, why).await,
        };
        let namespace = if self.spec.namespace.is_empty() {
            client.default_namespace().to_string()
        } else {
            self.spec.namespace.clone()
        };
        let pods: Api<Pod> = Api::namespaced(client, &namespace);
        let pod_name = format!("{namespace}/{}", self.spec.pod);
        let mut backoff = Backoff::new(POD_BACKOFF);
        let pod = loop {
            let error = match pods.get_opt(&self.spec.pod).await {
                Ok(Some(pod)) => break pod,
                Ok(None) => format!("pod {pod_name} not found"),
                Err(err) => format!("reading pod {pod_name}: {}", message(&err)),
            };
            set_error(&self.status, error).await;
            if !pause(&self.stop, backoff.next()).await {
                return;
            }
        };
        let names = selected_containers(&pod, &self.spec.only_containers, &self.spec.ignore_containers);
        if names.is_empty() {
            let error = format!("no container of pod {pod_name} matches onlyContainers/ignoreContainers");
            return set_error(&self.status, error).await;
        }
        self.status
            .update(|s| {
                s.error.clear();
                s.container_statuses.retain(|c| names.contains(&c.name));
                for n in &names {
                    container_mut(s, n);
                }
            })
            .await;
        let since = self.spec.since_time.as_ref().map(|t| t.0);
        let mut tasks = JoinSet::new();
        for name in names {
            let position =
                self.positions.lock().unwrap_or_else(|e| e.into_inner()).entry(name.clone()).or_default().clone();
            tasks.spawn(
                ContainerStream {
                    pods: pods.clone(),
                    pod: self.spec.pod.clone(),
                    pod_name: pod_name.clone(),
                    source: format!("pod/{}/{name}", self.spec.pod),
                    container: name,
                    since,
                    position,
                    logs: self.logs.clone(),
                    resource: self.resource.clone(),
                    status: self.status.clone(),
                    stop: self.stop.clone(),
                }
                .run(),
            );
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// How one connection to a container's log ended.
enum Ended {
    /// The stream reached its end (the container stopped, or the server closed it).
    Eof,
    /// The request or the stream failed.
    Failed(kube::Error),
    /// The controller stopped it.
    Stopped,
}

/// The log stream of one container, reconnected until the container finishes or the object goes away.
struct ContainerStream {
    pods: Api<Pod>,
    pod: String,
    pod_name: String,
    container: String,
    source: String,
    since: Option<Timestamp>,
    position: Arc<Mutex<Position>>,
    logs: Arc<LogStore>,
    resource: String,
    status: Arc<StatusCell>,
    stop: CancellationToken,
}

impl ContainerStream {
    async fn run(self) {
        let mut backoff = Backoff::new(RECONNECT_BACKOFF);
        let mut pod_backoff = Backoff::new(POD_BACKOFF);
        loop {
            let (ended, new_lines) = self.connect_once().await;
            if new_lines > 0 {
                backoff.reset();
            }
            if let Ended::Stopped = ended {
                return;
            }
            let delay = match self.pods.get_opt(&self.pod).await {
                Ok(None) => {
                    let error = format!("pod {} not found", self.pod_name);
                    self.status
                        .update(|s| {
                            s.error = error;
                            container_mut(s, &self.container).active = false;
                        })
                        .await;
                    pod_backoff.next()
                }
                Err(err) => {
                    let error = format!("reading pod {}: {}", self.pod_name, message(&err));
                    set_container(&self.status, &self.container, |c| {
                        c.active = false;
                        c.error = error;
                    })
                    .await;
                    backoff.next()
                }
                Ok(Some(pod)) => {
                    pod_backoff.reset();
                    set_error(&self.status, String::new()).await;
                    let state = container_state(&pod, &self.container);
                    let error = match (&ended, &state) {
                        // Only a clean end after the container finished means its log is complete.
                        (Ended::Eof, ContainerState::Finished) => {
                            set_container(&self.status, &self.container, |c| {
                                c.active = false;
                                c.terminated = true;
                                c.error.clear();
                            })
                            .await;
                            return;
                        }
                        (Ended::Failed(err), ContainerState::Live | ContainerState::Finished) => format!(
                            "streaming logs of container {} of pod {}: {}",
                            self.container,
                            self.pod_name,
                            message(err)
                        ),
                        _ => String::new(),
                    };
                    set_container(&self.status, &self.container, |c| {
                        c.active = false;
                        c.terminated = false;
                        c.error = error;
                    })
                    .await;
                    backoff.next()
                }
            };
            if !pause(&self.stop, delay).await {
                return;
            }
        }
    }

    /// Streams from one connection until it ends; returns how it ended and how many new lines it brought.
    async fn connect_once(&self) -> (Ended, usize) {
        let since = self.position.lock().unwrap_or_else(|e| e.into_inner()).since(self.since);
        let params = LogParams {
            container: Some(self.container.clone()),
            follow: true,
            timestamps: true,
            since_time: since,
            ..LogParams::default()
        };
        let reader = tokio::select! {
            _ = self.stop.cancelled() => return (Ended::Stopped, 0),
            r = self.pods.log_stream(&self.pod, &params) => match r {
                Ok(reader) => reader,
                Err(err) => return (Ended::Failed(err), 0),
            },
        };
        self.status
            .update(|s| {
                // Streaming proves the pod exists.
                s.error.clear();
                let c = container_mut(s, &self.container);
                c.active = true;
                c.terminated = false;
                c.error.clear();
            })
            .await;
        let mut reader = std::pin::pin!(reader);
        let mut resume = self.position.lock().unwrap_or_else(|e| e.into_inner()).resume();
        let mut buf = Vec::new();
        let mut new_lines = 0;
        loop {
            let line = tokio::select! {
                _ = self.stop.cancelled() => return (Ended::Stopped, new_lines),
                r = next_line(&mut reader, &mut buf) => r,
            };
            match line {
                Ok(true) => {}
                Ok(false) => return (Ended::Eof, new_lines),
                Err(err) => return (Ended::Failed(kube::Error::ReadEvents(err)), new_lines),
            }
            let line = String::from_utf8_lossy(&buf);
            let text = match split_timestamp(&line) {
                Some((t, text)) => {
                    let mut position = self.position.lock().unwrap_or_else(|e| e.into_inner());
                    if !resume.admit(t, &mut position) {
                        continue;
                    }
                    text
                }
                None => &line,
            };
            new_lines += 1;
            self.logs.append(&self.resource, &self.source, text);
        }
    }
}

/// Runs the controller until `shutdown` is cancelled, then stops every stream. Pods are read from the
/// cluster `cluster` connects to; the objects through `client` (tilt's API).
pub async fn run(
    informers: Arc<Informers>,
    shutdown: CancellationToken,
    cluster: Arc<ClusterConnection>,
    logs: Arc<LogStore>,
) {
    let ctx = Arc::new(Ctx { client: informers.client().clone(), cluster, logs, shutdown: shutdown.child_token() });
    Setup::new(ctx, &informers).run(shutdown).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;
    use k8s_openapi::api::core::v1::{
        Container, ContainerState as KState, ContainerStateRunning, ContainerStateTerminated, PodSpec, PodStatus,
    };

    fn pod(policy: &str, phase: &str, statuses: Vec<ContainerStatus>, init: Vec<ContainerStatus>) -> Pod {
        let container = |n: &str| Container { name: n.into(), ..Default::default() };
        Pod {
            spec: Some(PodSpec {
                init_containers: Some(vec![container("setup")]),
                containers: vec![container("app"), container("sidecar")],
                restart_policy: Some(policy.into()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                container_statuses: Some(statuses),
                init_container_statuses: Some(init),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn running(name: &str) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            state: Some(KState { running: Some(ContainerStateRunning::default()), ..Default::default() }),
            ..Default::default()
        }
    }

    fn exited(name: &str, code: i32) -> ContainerStatus {
        ContainerStatus {
            name: name.into(),
            state: Some(KState {
                terminated: Some(ContainerStateTerminated { exit_code: code, ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn containers_are_filtered_by_the_spec() {
        let p = pod("Always", "Running", vec![], vec![]);
        assert_eq!(selected_containers(&p, &[], &[]), ["setup", "app", "sidecar"]);
        assert_eq!(selected_containers(&p, &["app".into()], &[]), ["app"]);
        assert_eq!(selected_containers(&p, &[], &["sidecar".into(), "setup".into()]), ["app"]);
        assert!(selected_containers(&p, &["nope".into()], &[]).is_empty());
    }

    #[test]
    fn container_state_follows_phase_and_restart_policy() {
        let init_done = vec![exited("setup", 0)];
        let p = pod("Always", "Running", vec![running("app"), exited("sidecar", 0)], init_done.clone());
        assert_eq!(container_state(&p, "app"), ContainerState::Live);
        // Exited under restartPolicy Always: it will be restarted, so its log goes on.
        assert_eq!(container_state(&p, "sidecar"), ContainerState::Live);
        assert_eq!(container_state(&p, "setup"), ContainerState::Finished);
        let p = pod("OnFailure", "Running", vec![exited("app", 0), exited("sidecar", 1)], init_done.clone());
        assert_eq!(container_state(&p, "app"), ContainerState::Finished);
        assert_eq!(container_state(&p, "sidecar"), ContainerState::Live);
        let p = pod("Never", "Running", vec![exited("app", 1), running("sidecar")], init_done.clone());
        assert_eq!(container_state(&p, "app"), ContainerState::Finished);
        let p = pod("Always", "Succeeded", vec![running("app")], init_done);
        assert_eq!(container_state(&p, "app"), ContainerState::Finished);
        let p = pod("Always", "Pending", vec![], vec![]);
        assert_eq!(container_state(&p, "app"), ContainerState::Waiting);
    }

    #[tokio::test]
    async fn lines_are_split_and_long_lines_cut() {
        let long = "x".repeat(MAX_LINE + 10);
        let input = format!("a\r\nb\n\n{long}\nlast");
        let mut reader = Cursor::new(input.into_bytes());
        let mut buf = Vec::new();
        let mut lines = Vec::new();
        while next_line(&mut reader, &mut buf).await.unwrap() {
            lines.push(String::from_utf8(buf.clone()).unwrap());
        }
        assert_eq!(lines.len(), 6);
        assert_eq!(&lines[..3], ["a", "b", ""]);
        assert_eq!(lines[3].len(), MAX_LINE);
        assert_eq!(lines[4], "x".repeat(10));
        assert_eq!(lines[5], "last");
    }

    #[test]
    fn bad_specs_are_explained() {
        assert_eq!(invalid_spec(&PodLogStreamSpec::default()).unwrap(), "spec.pod is empty");
        let spec = PodLogStreamSpec { pod: "p".into(), cluster: "other".into(), ..Default::default() };
        assert!(invalid_spec(&spec).unwrap().contains("\"other\""));
        let spec = PodLogStreamSpec { pod: "p".into(), cluster: "default".into(), ..Default::default() };
        assert!(invalid_spec(&spec).is_none());
    }
}
