//! The FileWatch controller: watches each FileWatch's `spec.watchedPaths` and appends the changes it sees,
//! in debounced batches, to `status.fileEvents`.
//!
//! All FileWatches share one inotify instance and one thread (`thread.rs`), since Linux allows a user
//! only 128 instances by default and threads per FileWatch would not scale to hundreds of resources. Each
//! FileWatch has a tree there (`watcher.rs`) that needs a watch on every directory it does not ignore
//! (`spec.ignores`, each watched directory's `.tiltignore`, and `.git`; see `ignores.rs`); a directory
//! has one kernel watch, counted for every tree that needs it and removed when none does (`kernel.rs`).
//! Raw events are routed by path to the trees watching where they happened. Each tree's changes are
//! coalesced (`debounce.rs`) until [`FileWatchConfig::debounce`] passes without one, then appended as one
//! `FileEvent` (the newest 20 are kept) along with `status.lastEventTime`.
//!
//! The controller keeps a table from object name to its running watch and the spec that watch was set up
//! for, so reconciling an unchanged spec does nothing. A spec change reconfigures the running watch in
//! place, which keeps the events that arrive meanwhile. Deletes are seen on the watch stream that feeds
//! the controller, and remove the object's tree with the watches only it needed.
//!
//! A watched path need not exist: it is watched through its nearest existing ancestor directory until it
//! appears, and falls back to that when it is removed (see `watcher.rs`); its creation, changes and removal
//! are events like any other. Errors — permission denied, the inotify watch or instance limit — are
//! written to `status.error` and retried with backoff until watching works, which clears the error and
//! sets `status.monitorStartTime`. All status writes for one object go through one lock, so they land in order,
//! and each applies (server-side, as [`MANAGER`]) the whole status this controller owns.

mod debounce;
mod ignores;
mod kernel;
mod thread;
mod watcher;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher as kube_watcher};
use kube::{Client, ResourceExt};
use serde_json::json;
use tilt_apis::{FileEvent, FileWatch, FileWatchStatus};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use thread::{Configurer, Output, TreeHandle, WatchThread};
use watcher::WatchSpec;

/// The field manager of this controller's status writes.
pub const MANAGER: &str = "tilt-filewatch-controller";

/// How many `FileEvent`s `status.fileEvents` keeps, newest last (as Go Tilt).
const MAX_FILE_EVENTS: usize = 20;

/// How many paths `status.fileEvents` holds at most, across its events, so that a checkout touching
/// every file cannot make the status too large to write. Older events go first; a single larger batch
/// keeps its first paths in sorted order.
const MAX_SEEN_FILES: usize = 10_000;

/// First and longest wait before retrying a FileWatch that could not be watched.
const RETRY_BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// Wait before re-sending a status write the API refused.
const WRITE_RETRY: Duration = Duration::from_millis(500);

/// Settings of the FileWatch controller.
#[derive(Debug, Clone)]
pub struct FileWatchConfig {
    /// How long a burst of changes must pause before it is reported as one `FileEvent` (default 20 ms).
    pub debounce: Duration,
    /// The longest a change waits for a burst to pause; bounds the delay under constant changes
    /// (default 1 s).
    pub max_delay: Duration,
}

impl Default for FileWatchConfig {
    fn default() -> Self {
        FileWatchConfig { debounce: Duration::from_millis(20), max_delay: Duration::from_secs(1) }
    }
}

/// Why a FileWatch cannot be watched, or its status not written. Each message is what `status.error` shows.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API refused a status write.
    #[error("writing FileWatch status: {0}")]
    Api(#[from] kube::Error),
    /// The spec cannot be watched as written; only a spec change fixes it.
    #[error("invalid FileWatch spec: {0}")]
    InvalidSpec(String),
    /// A path vanished while a watch was being added to it. Not a missing watched path, which is watched
    /// through its nearest existing ancestor; seen only while a watch is set up, which then resolves the
    /// path again.
    #[error("watched path {} does not exist", .0.display())]
    Missing(PathBuf),
    /// A watched path may not be read.
    #[error("permission denied watching {}", .0.display())]
    PermissionDenied(PathBuf),
    /// The kernel's limit on inotify watches is reached.
    #[error(
        "cannot watch {}: the inotify watch limit (fs.inotify.max_user_watches) is reached; raise it \
         (sudo sysctl fs.inotify.max_user_watches=524288) or ignore more directories",
        .0.display()
    )]
    WatchLimit(PathBuf),
    /// The kernel's limit on inotify instances is reached.
    #[error(
        "cannot start a file watcher: the inotify instance limit (fs.inotify.max_user_instances) is reached; \
         raise it (sudo sysctl fs.inotify.max_user_instances=1024)"
    )]
    InstanceLimit,
    /// An ignore pattern (in `spec.ignores` or a `.tiltignore`) does not parse.
    #[error("bad ignore pattern under {}: {source}", base.display())]
    Pattern {
        /// The directory the pattern is relative to.
        base: PathBuf,
        /// The parse error.
        source: ignore::Error,
    },
    /// Reading a path failed otherwise.
    #[error("watching {}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file watcher failed otherwise.
    #[error("file watcher error at {}: {source}", path.display())]
    Notify {
        /// The path, if known.
        path: PathBuf,
        /// The cause.
        source: notify::Error,
    },
    /// The watch was stopped (its FileWatch was deleted, or the controller is shutting down).
    #[error("the file watcher stopped")]
    Stopped,
}

/// What reconciles share.
struct Ctx {
    client: Client,
    config: FileWatchConfig,
    /// The controller's view of the FileWatches, to tell a live object from a deleted one.
    store: Store<FileWatch>,
    /// The running watches, by object name.
    watches: Mutex<HashMap<String, Arc<RunningWatch>>>,
    /// The thread and inotify instance every watch shares; opened with the first watch.
    thread: Mutex<Option<WatchThread>>,
    /// Consecutive failed reconciles, by object name, for backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// Asks the controller to reconcile an object again (after a watch fault).
    retry: mpsc::UnboundedSender<ObjectRef<FileWatch>>,
    shutdown: CancellationToken,
}

/// One FileWatch's watch: its tree on the shared thread, the task that writes its batches to status,
/// and the spec it is set up for.
struct RunningWatch {
    uid: Option<String>,
    /// Cancelled when the object is deleted or the controller stops; ends the task and with it the tree.
    stop: CancellationToken,
    configurer: Configurer,
    /// The spec the watch fully follows; `None` before the first success and after a fault.
    applied: Arc<Mutex<Option<WatchSpec>>>,
    status: Arc<OwnedStatus>,
}

/// The part of one object's status this controller owns, and the lock that orders its writes.
struct OwnedStatus {
    api: Api<FileWatch>,
    name: String,
    status: tokio::sync::Mutex<FileWatchStatus>,
}

impl OwnedStatus {
    fn new(client: Client, name: String, current: Option<&FileWatchStatus>) -> OwnedStatus {
        let mut status = current.cloned().unwrap_or_default();
        status.disable_status = None;
        OwnedStatus { api: Api::all(client), name, status: tokio::sync::Mutex::new(status) }
    }

    /// Applies `change`, and writes the whole owned status if `change` says it changed anything.
    async fn update(&self, change: impl FnOnce(&mut FileWatchStatus) -> bool) -> Result<(), kube::Error> {
        let mut status = self.status.lock().await;
        if !change(&mut status) {
            return Ok(());
        }
        let mut owned = json!(*status);
        // Sent even when empty, so that clearing it also works on a server that keeps the fields a manager
        // stops applying to /status (the embedded one did).
        owned["error"] = json!(status.error);
        let patch = json!({"apiVersion": tilt_apis::API_VERSION, "kind": "FileWatch", "status": owned});
        self.api
            .patch_status(
                &tilt_apis::path_name(&self.name),
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await?;
        Ok(())
    }
}

/// Sets `status.error`; returns whether it changed.
fn set_error(status: &mut FileWatchStatus, error: String) -> bool {
    let changed = status.error != error;
    status.error = error;
    changed
}

/// Appends a batch of changed paths as a `FileEvent` at `time`, keeping the event list bounded.
fn push_event(status: &mut FileWatchStatus, paths: Vec<PathBuf>, time: MicroTime) {
    let mut seen: Vec<String> = paths.into_iter().map(|p| p.to_string_lossy().into_owned()).collect();
    seen.sort();
    seen.dedup();
    seen.truncate(MAX_SEEN_FILES);
    status.file_events.push(FileEvent { time: Some(time.clone()), seen_files: seen });
    status.last_event_time = Some(time);
    let mut files = 0;
    let keep = status
        .file_events
        .iter()
        .rev()
        .take_while(|e| {
            files += e.seen_files.len();
            files <= MAX_SEEN_FILES
        })
        .count()
        .clamp(1, MAX_FILE_EVENTS);
    let excess = status.file_events.len() - keep;
    status.file_events.drain(..excess);
}

impl Ctx {
    fn is_live(&self, name: &str, uid: &Option<String>) -> bool {
        self.store.get(&ObjectRef::new(name)).is_some_and(|fw| fw.uid() == *uid)
    }

    /// The running watch for `fw`, started if needed; `None` if `fw` has been deleted meanwhile.
    fn watch_for(&self, fw: &FileWatch) -> Result<Option<Arc<RunningWatch>>, Error> {
        let (name, uid) = (fw.name_any(), fw.uid());
        let mut watches = self.watches.lock().unwrap();
        // Checked under the table lock: a delete seen after this finds (and stops) what is inserted here.
        if !self.is_live(&name, &uid) {
            return Ok(None);
        }
        if let Some(watch) = watches.get(&name) {
            if watch.uid == uid {
                return Ok(Some(watch.clone()));
            }
            watch.stop.cancel();
        }
        let status = Arc::new(OwnedStatus::new(self.client.clone(), name.clone(), fw.status.as_ref()));
        let (out, outputs) = mpsc::unbounded_channel();
        let tree = {
            let mut thread = self.thread.lock().unwrap();
            // A thread that ended by itself panicked and took its trees with it: start a new one.
            if thread.as_ref().is_some_and(|t| !t.is_running()) {
                *thread = None;
            }
            let thread = match &mut *thread {
                Some(thread) => thread,
                None => thread.insert(WatchThread::spawn(self.config.debounce, self.config.max_delay)?),
            };
            thread.add_tree(out)
        };
        let watch = Arc::new(RunningWatch {
            uid,
            stop: self.shutdown.child_token(),
            configurer: tree.configurer(),
            applied: Arc::new(Mutex::new(None)),
            status,
        });
        tokio::spawn(report(tree, outputs, watch.clone(), self.retry.clone()));
        watches.insert(name, watch.clone());
        Ok(Some(watch))
    }

    /// Stops the watch of a deleted object.
    fn forget(&self, name: &str, uid: &Option<String>) {
        let mut watches = self.watches.lock().unwrap();
        if watches.get(name).is_some_and(|w| w.uid == *uid) {
            watches.remove(name).inspect(|w| w.stop.cancel());
            self.failures.lock().unwrap().remove(name);
        }
    }

    /// Stops and drops `watch`, if it is still `name`'s, keeping the failure count for backoff.
    fn discard(&self, name: &str, watch: &Arc<RunningWatch>) {
        let mut watches = self.watches.lock().unwrap();
        if watches.get(name).is_some_and(|w| Arc::ptr_eq(w, watch)) {
            watches.remove(name).inspect(|w| w.stop.cancel());
        }
    }

    /// Reacts to deletes on the controller's watch stream, which reconciles never see.
    fn observe(&self, event: &kube_watcher::Event<FileWatch>) {
        match event {
            kube_watcher::Event::Delete(fw) => self.forget(&fw.name_any(), &fw.uid()),
            // A re-list replaces the store without a delete event for what vanished meanwhile.
            kube_watcher::Event::InitDone => {
                let mut watches = self.watches.lock().unwrap();
                let mut failures = self.failures.lock().unwrap();
                watches.retain(|name, watch| {
                    let live = self.is_live(name, &watch.uid);
                    if !live {
                        watch.stop.cancel();
                        failures.remove(name);
                    }
                    live
                });
            }
            _ => {}
        }
    }
}

/// Writes one object's batches and faults to its status until its watch is stopped.
async fn report(
    tree: TreeHandle,
    mut outputs: mpsc::UnboundedReceiver<Output>,
    watch: Arc<RunningWatch>,
    retry: mpsc::UnboundedSender<ObjectRef<FileWatch>>,
) {
    let _tree = tree; // dropped when this task ends, which removes the tree and the watches only it needs
    let mut unwritten = false;
    loop {
        let output = tokio::select! {
            _ = watch.stop.cancelled() => return,
            _ = tokio::time::sleep(WRITE_RETRY), if unwritten => None,
            output = outputs.recv() => match output {
                Some(output) => Some(output),
                None => {
                    // The shared watch thread is gone; a reconcile starts this watch afresh on a new one.
                    *watch.applied.lock().unwrap() = None;
                    let _ = retry.send(ObjectRef::new(&watch.status.name));
                    return;
                }
            },
        };
        let written = match output {
            Some(Output::Batch(paths)) => {
                watch
                    .status
                    .update(|s| {
                        push_event(s, paths, crate::now_micro());
                        true
                    })
                    .await
            }
            Some(Output::Fault(err)) => {
                tracing::warn!(name = %watch.status.name, %err, "file watch failed; retrying");
                *watch.applied.lock().unwrap() = None;
                let written = watch.status.update(|s| set_error(s, err.to_string())).await;
                let _ = retry.send(ObjectRef::new(&watch.status.name));
                written
            }
            None => watch.status.update(|_| true).await,
        };
        unwritten = match written {
            Ok(()) => false,
            // Deleted: the delete stops this task.
            Err(kube::Error::Api(e)) if e.code == 404 => false,
            Err(err) => {
                tracing::warn!(name = %watch.status.name, %err, "writing FileWatch status failed; will retry");
                true
            }
        };
    }
}

/// Makes the object's watch follow its spec, and reports the outcome in status.
async fn reconcile(fw: Arc<FileWatch>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let watch = match ctx.watch_for(&fw) {
        Ok(Some(watch)) => watch,
        Ok(None) => return Ok(Action::await_change()),
        Err(err) => {
            let status = OwnedStatus::new(ctx.client.clone(), fw.name_any(), fw.status.as_ref());
            status.update(|s| set_error(s, err.to_string())).await?;
            return Err(err);
        }
    };
    let spec = WatchSpec::new(&fw.spec);
    if watch.applied.lock().unwrap().as_ref() == Some(&spec) {
        return Ok(Action::await_change());
    }
    match watch.configurer.configure(spec.clone()).await {
        Ok(dirs) => {
            tracing::debug!(name = %fw.name_any(), dirs, "watching");
            *watch.applied.lock().unwrap() = Some(spec);
            ctx.failures.lock().unwrap().remove(&fw.name_any());
            watch
                .status
                .update(|s| {
                    s.error.clear();
                    s.monitor_start_time = Some(crate::now_micro());
                    true
                })
                .await?;
            Ok(Action::await_change())
        }
        Err(err) => {
            *watch.applied.lock().unwrap() = None;
            if matches!(err, Error::Stopped) {
                // The shared watch thread is gone: drop this watch so that the retry starts a new one.
                ctx.discard(&fw.name_any(), &watch);
            }
            watch.status.update(|s| set_error(s, err.to_string())).await?;
            Err(err)
        }
    }
}

/// Retries with exponential backoff, except a spec only a spec change can fix.
fn error_policy(fw: Arc<FileWatch>, err: &Error, ctx: Arc<Ctx>) -> Action {
    if matches!(err, Error::InvalidSpec(_)) {
        tracing::warn!(name = %fw.name_any(), %err, "FileWatch not watched");
        return Action::await_change();
    }
    let mut failures = ctx.failures.lock().unwrap();
    let n = failures.entry(fw.name_any()).or_default();
    *n += 1;
    let (first, longest) = RETRY_BACKOFF;
    let delay = first.saturating_mul(1 << (*n - 1).min(16)).min(longest);
    if *n == 1 {
        tracing::warn!(name = %fw.name_any(), %err, "FileWatch not watched; retrying");
    } else {
        tracing::debug!(name = %fw.name_any(), %err, retry_in = ?delay, "FileWatch still not watched");
    }
    Action::requeue(delay)
}

/// Runs the FileWatch controller until `shutdown` is cancelled, then stops every watch and closes the
/// inotify instance.
pub async fn run(client: Client, shutdown: CancellationToken, config: FileWatchConfig) {
    let api: Api<FileWatch> = Api::all(client.clone());
    let (store, writer) = reflector::store();
    let (retry, mut retries) = mpsc::unbounded_channel();
    let ctx = Arc::new(Ctx {
        client,
        config,
        store: store.clone(),
        watches: Mutex::default(),
        thread: Mutex::default(),
        failures: Mutex::default(),
        retry,
        shutdown: shutdown.clone(),
    });
    let observer = ctx.clone();
    let objects = kube_watcher(api, kube_watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .inspect_ok(move |event| observer.observe(event))
        .applied_objects();
    let stopping = shutdown.clone();
    Controller::for_stream(objects, store)
        .reconcile_on(futures::stream::poll_fn(move |cx| retries.poll_recv(cx)))
        .graceful_shutdown_on(async move { stopping.cancelled().await })
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|_| async {})
        .await;
    for (_, watch) in ctx.watches.lock().unwrap().drain() {
        watch.stop.cancel();
    }
    ctx.thread.lock().unwrap().take();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time() -> MicroTime {
        crate::now_micro()
    }

    #[test]
    fn events_are_sorted_and_bounded() {
        let mut status = FileWatchStatus::default();
        push_event(&mut status, vec!["/w/b".into(), "/w/a-b".into(), "/w/a/c".into()], time());
        assert_eq!(status.file_events[0].seen_files, ["/w/a-b", "/w/a/c", "/w/b"]);
        assert_eq!(status.last_event_time, status.file_events[0].time);
        for i in 0..30 {
            push_event(&mut status, vec![format!("/w/{i}").into()], time());
        }
        assert_eq!(status.file_events.len(), MAX_FILE_EVENTS);
        assert_eq!(status.file_events.last().unwrap().seen_files, ["/w/29"]);
        assert_eq!(status.file_events[0].seen_files, ["/w/10"]);
    }

    #[test]
    fn a_huge_batch_pushes_out_older_events_and_is_truncated() {
        let mut status = FileWatchStatus::default();
        push_event(&mut status, vec!["/w/old".into()], time());
        let many: Vec<PathBuf> = (0..MAX_SEEN_FILES + 5).map(|i| format!("/w/{i:06}").into()).collect();
        push_event(&mut status, many, time());
        assert_eq!(status.file_events.len(), 1);
        assert_eq!(status.file_events[0].seen_files.len(), MAX_SEEN_FILES);
        assert_eq!(status.file_events[0].seen_files[0], "/w/000000");
    }

    #[test]
    fn default_debounce_is_at_most_20ms() {
        assert!(FileWatchConfig::default().debounce <= Duration::from_millis(20));
    }
}
