//! The one thread that runs every FileWatch's tree.
//!
//! A [`WatchThread`] owns the [`TreeSet`] (and with it the controller's single inotify instance) on a
//! thread of its own, since adding watches and walking directories block. It applies raw events and
//! configuration requests in the order they arrive, coalesces each tree's changed paths in that tree's
//! own [`PendingBatch`], and sends each due batch, and each fault, to that tree's channel. Between
//! messages it sleeps until one arrives or the earliest pending batch is due: no polling while idle.
//!
//! Each FileWatch holds a [`TreeHandle`], which removes its tree (letting go of its watches) when dropped,
//! and [`Configurer`]s that reconfigure the tree in place.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc as async_mpsc, oneshot};

use super::Error;
use super::debounce::PendingBatch;
use super::kernel::TreeId;
use super::watcher::{TreeSet, WatchSpec};

/// What a tree's channel receives.
#[derive(Debug)]
pub(crate) enum Output {
    /// A due batch of changed paths, sorted and deduplicated.
    Batch(Vec<PathBuf>),
    /// The watch is no longer complete; it needs reconfiguring.
    Fault(Error),
}

enum Msg {
    Event(notify::Result<notify::Event>),
    Add(TreeId, async_mpsc::UnboundedSender<Output>),
    Configure(TreeId, WatchSpec, oneshot::Sender<Result<usize, Error>>),
    Remove(TreeId),
    Stop,
}

/// The thread running every tree on one inotify instance; dropping this stops it and closes the instance.
pub(crate) struct WatchThread {
    tx: mpsc::Sender<Msg>,
    thread: std::thread::JoinHandle<()>,
    next_id: TreeId,
}

impl WatchThread {
    /// Opens the inotify instance and starts the thread, with no trees yet. Each tree's batches are flushed
    /// after `debounce` of quiet, or at the latest `max_delay` after their first change.
    pub(crate) fn spawn(debounce: Duration, max_delay: Duration) -> Result<WatchThread, Error> {
        let (tx, rx) = mpsc::channel();
        let events = tx.clone();
        let trees = TreeSet::new(move |event| {
            let _ = events.send(Msg::Event(event));
        })?;
        let thread = std::thread::Builder::new()
            .name("filewatch".into())
            .spawn(move || run(trees, rx, debounce, max_delay))
            .map_err(|source| Error::Io { path: PathBuf::new(), source })?;
        Ok(WatchThread { tx, thread, next_id: 0 })
    }

    /// Whether the thread still runs; it ends early only by panicking, taking every tree with it.
    pub(crate) fn is_running(&self) -> bool {
        !self.thread.is_finished()
    }

    /// Adds a tree watching nothing until configured, whose batches and faults go to `out`.
    pub(crate) fn add_tree(&mut self, out: async_mpsc::UnboundedSender<Output>) -> TreeHandle {
        self.next_id += 1;
        let id = self.next_id;
        let _ = self.tx.send(Msg::Add(id, out));
        TreeHandle { id, tx: self.tx.clone() }
    }
}

impl Drop for WatchThread {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
    }
}

/// One tree on a [`WatchThread`]; dropping this removes the tree and lets go of its watches.
pub(crate) struct TreeHandle {
    id: TreeId,
    tx: mpsc::Sender<Msg>,
}

impl TreeHandle {
    /// A handle that reconfigures this tree.
    pub(crate) fn configurer(&self) -> Configurer {
        Configurer { id: self.id, tx: self.tx.clone() }
    }
}

impl Drop for TreeHandle {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Remove(self.id));
    }
}

/// Reconfigures one tree of a [`WatchThread`].
#[derive(Clone)]
pub(crate) struct Configurer {
    id: TreeId,
    tx: mpsc::Sender<Msg>,
}

impl Configurer {
    /// Makes the tree follow `spec`; returns the number of directories it watches.
    pub(crate) async fn configure(&self, spec: WatchSpec) -> Result<usize, Error> {
        let (reply, result) = oneshot::channel();
        self.tx.send(Msg::Configure(self.id, spec, reply)).map_err(|_| Error::Stopped)?;
        result.await.map_err(|_| Error::Stopped)?
    }
}

/// A tree's pending changes and where they go.
struct Sink {
    batch: PendingBatch,
    out: async_mpsc::UnboundedSender<Output>,
}

fn run(mut trees: TreeSet, rx: mpsc::Receiver<Msg>, debounce: Duration, max_delay: Duration) {
    let mut sinks: HashMap<TreeId, Sink> = HashMap::new();
    // The trees with changes waiting in their batch.
    let mut pending: BTreeSet<TreeId> = BTreeSet::new();
    loop {
        // Block until a message arrives or a pending batch is due: no polling while idle.
        let deadline = pending.iter().filter_map(|id| sinks.get(id)?.batch.deadline()).min();
        let msg = match deadline {
            None => match rx.recv() {
                Ok(msg) => Some(msg),
                Err(mpsc::RecvError) => return,
            },
            Some(deadline) => match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(msg) => Some(msg),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            },
        };
        let mut faults = Vec::new();
        match msg {
            None => {}
            Some(Msg::Stop) => return,
            Some(Msg::Add(id, out)) => {
                trees.insert(id);
                sinks.insert(id, Sink { batch: PendingBatch::new(debounce, max_delay), out });
            }
            Some(Msg::Configure(id, spec, reply)) => {
                let _ = reply.send(trees.configure(id, &spec));
            }
            Some(Msg::Remove(id)) => {
                trees.remove(id);
                sinks.remove(&id);
                pending.remove(&id);
            }
            Some(Msg::Event(event)) => {
                let now = Instant::now();
                for (id, outcome) in trees.handle(event) {
                    let Some(sink) = sinks.get_mut(&id) else { continue };
                    if !outcome.changed.is_empty() {
                        pending.insert(id);
                    }
                    for path in outcome.changed {
                        sink.batch.add(path, now);
                    }
                    faults.extend(outcome.fault.map(|e| (id, e)));
                }
            }
        }
        let now = Instant::now();
        pending.retain(|id| {
            let Some(sink) = sinks.get_mut(id) else { return false };
            if let Some(paths) = sink.batch.take_due(now) {
                // A closed channel means the FileWatch is going away; its handle's drop removes the tree.
                let _ = sink.out.send(Output::Batch(paths));
            }
            sink.batch.deadline().is_some()
        });
        for (id, e) in faults {
            if let Some(sink) = sinks.get(&id) {
                let _ = sink.out.send(Output::Fault(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;

    fn spec(paths: &[&Path]) -> WatchSpec {
        WatchSpec { paths: paths.iter().map(|p| p.to_path_buf()).collect(), ignores: vec![] }
    }

    async fn next(outputs: &mut async_mpsc::UnboundedReceiver<Output>) -> Output {
        tokio::time::timeout(Duration::from_secs(5), outputs.recv()).await.unwrap().unwrap()
    }

    #[tokio::test]
    async fn the_thread_batches_and_keeps_pending_changes_across_a_reconfigure() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::create_dir(&a).unwrap();
        fs::create_dir(&b).unwrap();
        let (out, mut batches) = async_mpsc::unbounded_channel();
        let mut thread = WatchThread::spawn(Duration::from_millis(300), Duration::from_secs(5)).unwrap();
        let tree = thread.add_tree(out);
        let configurer = tree.configurer();
        assert_eq!(configurer.configure(spec(&[&a])).await.unwrap(), 1);
        for i in 0..10 {
            fs::write(a.join(format!("f{i}")), "x").unwrap();
        }
        // Reconfigure while the batch is pending; the new path's changes join the same batch.
        assert_eq!(configurer.configure(spec(&[&a, &b])).await.unwrap(), 2);
        fs::write(b.join("g"), "x").unwrap();
        let got = next(&mut batches).await;
        let Output::Batch(paths) = got else { panic!("{got:?}") };
        let mut want: Vec<PathBuf> = (0..10).map(|i| a.join(format!("f{i}"))).collect();
        want.push(b.join("g"));
        assert_eq!(paths, want);
        drop(tree);
        assert!(matches!(configurer.configure(spec(&[&a])).await, Err(Error::Stopped)));
        drop(thread);
        assert!(matches!(configurer.configure(spec(&[&a])).await, Err(Error::Stopped)));
    }

    #[tokio::test]
    async fn each_tree_gets_its_own_batches() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::create_dir(&a).unwrap();
        fs::create_dir(&b).unwrap();
        let mut thread = WatchThread::spawn(Duration::from_millis(20), Duration::from_secs(1)).unwrap();
        let (out_a, mut from_a) = async_mpsc::unbounded_channel();
        let (out_both, mut from_both) = async_mpsc::unbounded_channel();
        let tree_a = thread.add_tree(out_a);
        let tree_both = thread.add_tree(out_both);
        tree_a.configurer().configure(spec(&[&a])).await.unwrap();
        tree_both.configurer().configure(spec(&[&a, &b])).await.unwrap();

        fs::write(b.join("g"), "x").unwrap();
        let got = next(&mut from_both).await;
        assert!(matches!(&got, Output::Batch(paths) if *paths == [b.join("g")]), "{got:?}");
        fs::write(a.join("f"), "x").unwrap();
        let got = next(&mut from_a).await;
        assert!(matches!(&got, Output::Batch(paths) if *paths == [a.join("f")]), "only its own paths: {got:?}");
        let got = next(&mut from_both).await;
        assert!(matches!(&got, Output::Batch(paths) if *paths == [a.join("f")]), "{got:?}");

        // Removing `b` is a change only for the tree that watches it.
        fs::remove_dir_all(&b).unwrap();
        let mut outputs = vec![next(&mut from_both).await];
        tokio::time::sleep(Duration::from_millis(200)).await;
        while let Ok(output) = from_both.try_recv() {
            outputs.push(output);
        }
        assert!(outputs.iter().any(|o| matches!(o, Output::Batch(paths) if paths.contains(&b))), "{outputs:?}");
        assert!(!outputs.iter().any(|o| matches!(o, Output::Fault(_))), "{outputs:?}");
        assert!(from_a.try_recv().is_err());
    }
}
