//! The file watch of one FileWatch object.
//!
//! A [`WatchedTree`] holds one non-recursive inotify watch (through `notify`) per directory that is not
//! ignored. Directories are walked top-down and ignored ones are pruned before any watch is added, so an
//! ignored `node_modules/` costs no watch at all; each directory gets its watch before its entries are
//! listed, so nothing created meanwhile is missed. Directories that appear later get watches (and their
//! contents are reported as changed); removed ones lose theirs.
//!
//! A [`WatchThread`] owns the tree on a thread of its own, since adding watches and walking directories
//! block. It turns raw events into changed paths, skipping attribute-only and access events, coalesces them
//! in a [`PendingBatch`] and sends each due batch out. A spec change reconfigures the same tree in place:
//! the inotify instance, the events queued in it and the pending batch all carry over, so an event that
//! arrives during the change is not lost.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind, RenameMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tilt_apis::{FileWatchSpec, IgnoreDef};
use tokio::sync::{mpsc as async_mpsc, oneshot};
use walkdir::WalkDir;

use super::Error;
use super::debounce::PendingBatch;
use super::ignores::{IgnoreSet, TILTIGNORE};

/// The parts of a FileWatch spec that decide what is watched.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WatchSpec {
    /// `spec.watchedPaths`.
    pub(crate) paths: Vec<PathBuf>,
    /// `spec.ignores`.
    pub(crate) ignores: Vec<IgnoreDef>,
}

impl WatchSpec {
    /// The watch a FileWatch spec asks for.
    pub(crate) fn new(spec: &FileWatchSpec) -> WatchSpec {
        WatchSpec { paths: spec.watched_paths.iter().map(PathBuf::from).collect(), ignores: spec.ignores.clone() }
    }
}

/// A watched path as found on disk when the watch was configured.
#[derive(Debug)]
struct Root {
    path: PathBuf,
    is_dir: bool,
}

impl Root {
    /// The directory whose watch sees this root's changes: itself, or a watched file's parent.
    fn anchor(&self) -> &Path {
        if self.is_dir { &self.path } else { self.path.parent().unwrap_or(&self.path) }
    }
}

/// What is watched and what is ignored, resolved from a [`WatchSpec`].
#[derive(Debug)]
struct Filter {
    roots: Vec<Root>,
    ignores: IgnoreSet,
}

impl Filter {
    fn new(spec: &WatchSpec) -> Result<Filter, Error> {
        if spec.paths.is_empty() {
            return Err(Error::InvalidSpec("spec.watchedPaths is empty".into()));
        }
        if let Some(p) = spec.paths.iter().find(|p| !p.is_absolute()) {
            return Err(Error::InvalidSpec(format!("watched path {p:?} is not absolute")));
        }
        if let Some(def) = spec.ignores.iter().find(|d| !Path::new(&d.base_path).is_absolute()) {
            return Err(Error::InvalidSpec(format!("ignore basePath {:?} is not absolute", def.base_path)));
        }
        let mut roots = Vec::new();
        for path in &spec.paths {
            let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
            roots.push(Root { path: path.clone(), is_dir: meta.is_dir() });
        }
        let ignores = IgnoreSet::new(roots.iter().filter(|r| r.is_dir).map(|r| r.path.as_path()), &spec.ignores)?;
        Ok(Filter { roots, ignores })
    }

    /// Whether a change at `path` is reported: it is a watched file or under a watched directory, and not
    /// ignored.
    fn covers(&self, path: &Path, is_dir: bool) -> bool {
        let watched = self.roots.iter().any(|r| if r.is_dir { path.starts_with(&r.path) } else { path == r.path });
        watched && !self.ignores.is_ignored(path, is_dir)
    }

    /// Whether losing directory `dir` ends (part of) the watch.
    fn is_anchor(&self, dir: &Path) -> bool {
        self.roots.iter().any(|r| r.anchor() == dir)
    }

    /// Whether `path` is the `.tiltignore` of a watched directory.
    fn is_tiltignore(&self, path: &Path) -> bool {
        path.file_name() == Some(TILTIGNORE.as_ref())
            && self.roots.iter().any(|r| r.is_dir && path.parent() == Some(r.path.as_path()))
    }
}

/// The inotify watches held, one per directory.
struct Watches {
    watcher: RecommendedWatcher,
    dirs: BTreeSet<PathBuf>,
}

impl Watches {
    /// Adds a watch on `dir` unless it has one.
    fn add(&mut self, dir: &Path) -> Result<(), Error> {
        if !self.dirs.contains(dir) {
            self.watcher.watch(dir, RecursiveMode::NonRecursive).map_err(|e| notify_error(dir, e))?;
            self.dirs.insert(dir.to_path_buf());
        }
        Ok(())
    }

    /// Drops the watches on `path` and everything under it.
    fn remove_under(&mut self, path: &Path) {
        let gone: Vec<PathBuf> =
            self.dirs.range(path.to_path_buf()..).take_while(|d| d.starts_with(path)).cloned().collect();
        for dir in gone {
            // notify already dropped the watch of a deleted or moved-away directory; that error is expected.
            let _ = self.watcher.unwatch(&dir);
            self.dirs.remove(&dir);
        }
    }

    /// Drops every watch not in `keep`.
    fn retain(&mut self, keep: &BTreeSet<PathBuf>) {
        for dir in self.dirs.difference(keep).cloned().collect::<Vec<_>>() {
            let _ = self.watcher.unwatch(&dir);
            self.dirs.remove(&dir);
        }
    }
}

/// How a raw event counts.
#[derive(Debug, PartialEq)]
enum Change {
    /// Not a change to report: attribute-only (chmod, timestamps) or access (open, read) events.
    None,
    /// Content changed.
    Modified,
    /// Created or moved in; may be a new directory to watch.
    Appeared,
    /// Deleted or moved away; any watch under it is gone.
    Removed,
}

impl Change {
    fn of(kind: &EventKind) -> Change {
        match kind {
            // A file opened for writing and closed: written, or touched (which is meant as a change).
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => Change::Modified,
            EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) | EventKind::Other => Change::None,
            // Reported as a `From` and a `To` event as well.
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => Change::None,
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(_) => Change::Removed,
            EventKind::Modify(ModifyKind::Name(_)) | EventKind::Create(_) => Change::Appeared,
            EventKind::Modify(_) | EventKind::Any => Change::Modified,
        }
    }
}

/// The watches of one FileWatch and the filter that decides which changes count.
pub(crate) struct WatchedTree {
    watches: Watches,
    filter: Option<Filter>,
    spec: Option<WatchSpec>,
    /// Whether a fault has been reported since the last successful configuration.
    faulted: bool,
}

impl WatchedTree {
    /// A tree with no watches yet, whose raw events go to `handler`.
    pub(crate) fn new(handler: impl notify::EventHandler) -> Result<WatchedTree, Error> {
        let watcher = RecommendedWatcher::new(handler, notify::Config::default()).map_err(|e| match e.kind {
            notify::ErrorKind::Io(io) if io.raw_os_error() == Some(libc::EMFILE) => Error::InstanceLimit,
            _ => Error::Notify { path: PathBuf::new(), source: e },
        })?;
        Ok(WatchedTree {
            watches: Watches { watcher, dirs: BTreeSet::new() },
            filter: None,
            spec: None,
            faulted: false,
        })
    }

    /// Watches what `spec` asks for: adds the watches it needs, then drops those it no longer needs.
    /// Returns the number of watched directories. On error the previous filter stays in force.
    pub(crate) fn configure(&mut self, spec: &WatchSpec) -> Result<usize, Error> {
        let filter = Filter::new(spec)?;
        let mut wanted = BTreeSet::new();
        for root in &filter.roots {
            if root.is_dir {
                wanted.extend(scan(&filter, &mut self.watches, &root.path, |_, _| {})?);
            } else if filter.covers(&root.path, false) {
                self.watches.add(root.anchor())?;
                wanted.insert(root.anchor().to_path_buf());
            }
        }
        self.watches.retain(&wanted);
        self.filter = Some(filter);
        self.spec = Some(spec.clone());
        self.faulted = false;
        Ok(self.watches.dirs.len())
    }

    /// Applies one raw event: pushes the changed paths it reports to `changed` and keeps the watches in step
    /// (new directories get watches, removed ones lose them). An error means the watch is no longer
    /// complete: a watched directory was removed, or the watch limit stopped a new directory being watched.
    pub(crate) fn handle(&mut self, event: notify::Event, changed: &mut Vec<PathBuf>) -> Result<(), Error> {
        let Some(filter) = &self.filter else { return Ok(()) };
        if event.need_rescan() {
            // The kernel queue overflowed and events were lost: report the roots and re-walk.
            changed.extend(filter.roots.iter().map(|r| r.path.clone()));
            return self.reconfigure();
        }
        let change = Change::of(&event.kind);
        if change == Change::None {
            return Ok(());
        }
        let mut fault = None;
        let mut reload = false;
        for path in event.paths {
            let is_dir = match event.kind {
                EventKind::Create(CreateKind::Folder) | EventKind::Remove(RemoveKind::Folder) => true,
                EventKind::Create(CreateKind::File) | EventKind::Remove(RemoveKind::File) => false,
                _ if change == Change::Removed => self.watches.dirs.contains(&path),
                _ => std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()),
            };
            if change == Change::Removed {
                self.watches.remove_under(&path);
                if filter.is_anchor(&path) && !self.faulted {
                    fault = Some(Error::Removed(path.clone()));
                }
            }
            if !filter.covers(&path, is_dir) {
                continue;
            }
            reload |= filter.is_tiltignore(&path);
            if change == Change::Appeared && is_dir {
                match scan(filter, &mut self.watches, &path, |p, _| changed.push(p.to_path_buf())) {
                    Ok(_) => {}
                    Err(e @ Error::WatchLimit(_)) => fault = Some(e),
                    // Gone again already, or unreadable: nothing to watch.
                    Err(e) => tracing::debug!(%e, "not watching a new directory"),
                }
            }
            changed.push(path);
        }
        if let Some(e) = fault {
            self.faulted = true;
            return Err(e);
        }
        if reload { self.reconfigure() } else { Ok(()) }
    }

    fn reconfigure(&mut self) -> Result<(), Error> {
        match self.spec.clone() {
            Some(spec) => self.configure(&spec).map(drop),
            None => Ok(()),
        }
    }

    /// How many directories are watched.
    #[cfg(test)]
    pub(crate) fn watched_dirs(&self) -> usize {
        self.watches.dirs.len()
    }
}

/// Walks `top` top-down, pruning ignored entries, adding a watch to each directory before listing it, and
/// calling `found` with each entry below `top`. Returns the watched directories. Failing to watch or read
/// `top` is an error, as is reaching the watch limit; an unreadable directory below `top` is skipped.
fn scan(
    filter: &Filter,
    watches: &mut Watches,
    top: &Path,
    mut found: impl FnMut(&Path, bool),
) -> Result<Vec<PathBuf>, Error> {
    let mut dirs = Vec::new();
    let mut walk = WalkDir::new(top)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| !filter.ignores.is_ignored(e.path(), e.file_type().is_dir()));
    while let Some(entry) = walk.next() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if e.depth() == 0 => {
                let path = e.path().unwrap_or(top).to_path_buf();
                return Err(match e.into_io_error() {
                    Some(io) => io_error(&path, io),
                    None => Error::Io { path, source: std::io::Error::other("symbolic link loop") },
                });
            }
            Err(e) => {
                tracing::warn!(%e, "skipping an unreadable directory");
                continue;
            }
        };
        let is_dir = entry.file_type().is_dir();
        if entry.depth() > 0 {
            found(entry.path(), is_dir);
        }
        if !is_dir {
            continue;
        }
        match watches.add(entry.path()) {
            Ok(()) => dirs.push(entry.into_path()),
            Err(e) if entry.depth() == 0 || matches!(e, Error::WatchLimit(_)) => return Err(e),
            Err(e) => {
                tracing::warn!(%e, "skipping a directory that cannot be watched");
                walk.skip_current_dir();
            }
        }
    }
    Ok(dirs)
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    let path = path.to_path_buf();
    match source.kind() {
        std::io::ErrorKind::NotFound => Error::Missing(path),
        std::io::ErrorKind::PermissionDenied => Error::PermissionDenied(path),
        _ if source.raw_os_error() == Some(libc::ENOSPC) => Error::WatchLimit(path),
        _ => Error::Io { path, source },
    }
}

fn notify_error(path: &Path, e: notify::Error) -> Error {
    match e.kind {
        notify::ErrorKind::MaxFilesWatch => Error::WatchLimit(path.to_path_buf()),
        notify::ErrorKind::PathNotFound => Error::Missing(path.to_path_buf()),
        notify::ErrorKind::Io(io) => io_error(path, io),
        _ => Error::Notify { path: path.to_path_buf(), source: e },
    }
}

/// What a [`WatchThread`] reports.
#[derive(Debug)]
pub(crate) enum Output {
    /// A due batch of changed paths, sorted and deduplicated.
    Batch(Vec<PathBuf>),
    /// The watch is no longer complete; it needs reconfiguring.
    Fault(Error),
}

enum Msg {
    Event(notify::Result<notify::Event>),
    Configure(WatchSpec, oneshot::Sender<Result<usize, Error>>),
    Stop,
}

/// A thread running one [`WatchedTree`]; dropping this stops it.
pub(crate) struct WatchThread {
    tx: mpsc::Sender<Msg>,
}

impl WatchThread {
    /// Starts a thread with no watches yet, whose batches (flushed after `debounce` of quiet, or at the
    /// latest `max_delay` after their first change) and faults go to `out`.
    pub(crate) fn spawn(
        debounce: Duration,
        max_delay: Duration,
        out: async_mpsc::UnboundedSender<Output>,
    ) -> Result<WatchThread, Error> {
        let (tx, rx) = mpsc::channel();
        let events = tx.clone();
        let tree = WatchedTree::new(move |event| {
            let _ = events.send(Msg::Event(event));
        })?;
        let batch = PendingBatch::new(debounce, max_delay);
        std::thread::Builder::new()
            .name("filewatch".into())
            .spawn(move || run_thread(tree, rx, batch, out))
            .map_err(|source| Error::Io { path: PathBuf::new(), source })?;
        Ok(WatchThread { tx })
    }

    /// A handle that reconfigures this thread's watch.
    pub(crate) fn configurer(&self) -> Configurer {
        Configurer(self.tx.clone())
    }
}

impl Drop for WatchThread {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Stop);
    }
}

/// Reconfigures a [`WatchThread`]'s watch.
#[derive(Clone)]
pub(crate) struct Configurer(mpsc::Sender<Msg>);

impl Configurer {
    /// Makes the watch follow `spec`; returns the number of watched directories.
    pub(crate) async fn configure(&self, spec: WatchSpec) -> Result<usize, Error> {
        let (reply, result) = oneshot::channel();
        self.0.send(Msg::Configure(spec, reply)).map_err(|_| Error::Stopped)?;
        result.await.map_err(|_| Error::Stopped)?
    }
}

fn run_thread(
    mut tree: WatchedTree,
    rx: mpsc::Receiver<Msg>,
    mut batch: PendingBatch,
    out: async_mpsc::UnboundedSender<Output>,
) {
    loop {
        // Block until a message arrives or the pending batch is due: no polling while idle.
        let msg = match batch.deadline() {
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
        let fault = match msg {
            None => None,
            Some(Msg::Stop) => return,
            Some(Msg::Configure(spec, reply)) => {
                let _ = reply.send(tree.configure(&spec));
                None
            }
            Some(Msg::Event(Ok(event))) => {
                let mut changed = Vec::new();
                let result = tree.handle(event, &mut changed);
                let now = Instant::now();
                for path in changed {
                    batch.add(path, now);
                }
                result.err()
            }
            Some(Msg::Event(Err(e))) => Some(notify_error(Path::new(""), e)),
        };
        if let Some(paths) = batch.take_due(Instant::now())
            && out.send(Output::Batch(paths)).is_err()
        {
            return;
        }
        if let Some(e) = fault
            && out.send(Output::Fault(e)).is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    /// A tree fed by a channel the test drains by hand, so each step is deterministic.
    struct Harness {
        tree: WatchedTree,
        rx: mpsc::Receiver<notify::Result<notify::Event>>,
    }

    impl Harness {
        fn new() -> Harness {
            let (tx, rx) = mpsc::channel();
            Harness { tree: WatchedTree::new(tx).unwrap(), rx }
        }

        /// Applies events until none has arrived for 200 ms; returns the changed paths and errors.
        fn drain(&mut self) -> (BTreeSet<PathBuf>, Vec<Error>) {
            let (mut changed, mut errors) = (Vec::new(), Vec::new());
            while let Ok(event) = self.rx.recv_timeout(Duration::from_millis(200)) {
                if let Err(e) = self.tree.handle(event.unwrap(), &mut changed) {
                    errors.push(e);
                }
            }
            (changed.into_iter().collect(), errors)
        }
    }

    fn spec(paths: &[&Path], ignores: &[(&Path, &[&str])]) -> WatchSpec {
        WatchSpec {
            paths: paths.iter().map(|p| p.to_path_buf()).collect(),
            ignores: ignores
                .iter()
                .map(|(base, patterns)| IgnoreDef {
                    base_path: base.to_string_lossy().into_owned(),
                    patterns: patterns.iter().map(|p| p.to_string()).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn kinds_that_are_not_changes() {
        use notify::event::MetadataKind;
        assert_eq!(Change::of(&EventKind::Modify(ModifyKind::Metadata(MetadataKind::Permissions))), Change::None);
        assert_eq!(Change::of(&EventKind::Access(AccessKind::Open(AccessMode::Any))), Change::None);
        assert_eq!(Change::of(&EventKind::Access(AccessKind::Close(AccessMode::Read))), Change::None);
        assert_eq!(Change::of(&EventKind::Access(AccessKind::Close(AccessMode::Write))), Change::Modified);
        assert_eq!(Change::of(&EventKind::Modify(ModifyKind::Name(RenameMode::Both))), Change::None);
        assert_eq!(Change::of(&EventKind::Modify(ModifyKind::Name(RenameMode::To))), Change::Appeared);
        assert_eq!(Change::of(&EventKind::Modify(ModifyKind::Name(RenameMode::From))), Change::Removed);
    }

    #[test]
    fn kernel_limits_and_permissions_have_clear_errors() {
        let p = Path::new("/w/deep");
        let limit = notify_error(p, notify::Error::new(notify::ErrorKind::MaxFilesWatch));
        assert!(matches!(limit, Error::WatchLimit(_)), "{limit:?}");
        assert!(limit.to_string().contains("fs.inotify.max_user_watches"), "{limit}");
        let enospc = io_error(p, std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(matches!(enospc, Error::WatchLimit(_)), "{enospc:?}");
        let denied = notify_error(p, notify::Error::io(std::io::Error::from_raw_os_error(libc::EACCES)));
        assert_eq!(denied.to_string(), "permission denied watching /w/deep");
        let missing = notify_error(p, notify::Error::path_not_found());
        assert_eq!(missing.to_string(), "watched path /w/deep does not exist");
    }

    #[test]
    fn ignored_directories_get_no_watch() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["src/a", "src/b", ".git/objects/ab"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        for i in 0..50 {
            fs::create_dir_all(root.join(format!("node_modules/p{i}/lib"))).unwrap();
        }
        fs::write(root.join(TILTIGNORE), "build/\n").unwrap();
        fs::create_dir_all(root.join("build/x")).unwrap();
        let mut h = Harness::new();
        let n = h.tree.configure(&spec(&[root], &[(root, &["node_modules"])])).unwrap();
        assert_eq!(n, 4, "root, src, src/a, src/b");
        assert_eq!(h.tree.watched_dirs(), 4);

        // Un-ignoring node_modules in place adds its 101 directories; ignoring it again drops them.
        assert_eq!(h.tree.configure(&spec(&[root], &[])).unwrap(), 4 + 101);
        assert_eq!(h.tree.configure(&spec(&[root], &[(root, &["node_modules"])])).unwrap(), 4);
    }

    #[test]
    fn new_directories_are_watched_and_their_contents_reported() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut h = Harness::new();
        h.tree.configure(&spec(&[root], &[(root, &["*.tmp"])])).unwrap();
        fs::create_dir_all(root.join("new/deep")).unwrap();
        fs::write(root.join("new/deep/f.txt"), "x").unwrap();
        fs::write(root.join("new/deep/skip.tmp"), "x").unwrap();
        let (changed, errors) = h.drain();
        assert!(errors.is_empty(), "{errors:?}");
        assert!(changed.contains(&root.join("new/deep/f.txt")), "{changed:?}");
        assert!(!changed.contains(&root.join("new/deep/skip.tmp")), "{changed:?}");
        assert_eq!(h.tree.watched_dirs(), 3);

        // Later writes in the new directory are seen through its own watch.
        fs::write(root.join("new/deep/g.txt"), "x").unwrap();
        assert!(h.drain().0.contains(&root.join("new/deep/g.txt")));

        fs::remove_dir_all(root.join("new")).unwrap();
        let (changed, errors) = h.drain();
        assert!(errors.is_empty(), "{errors:?}");
        assert!(changed.contains(&root.join("new")), "{changed:?}");
        assert_eq!(h.tree.watched_dirs(), 1);
    }

    #[test]
    fn chmod_and_reads_are_not_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, "x").unwrap();
        let mut h = Harness::new();
        h.tree.configure(&spec(&[dir.path()], &[])).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
        fs::read(&file).unwrap();
        let (changed, errors) = h.drain();
        assert!(changed.is_empty() && errors.is_empty(), "{changed:?} {errors:?}");
        fs::write(&file, "y").unwrap();
        assert_eq!(h.drain().0, BTreeSet::from([file]));
    }

    #[test]
    fn a_watched_file_is_seen_through_its_parent_without_its_siblings() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("Tiltfile");
        fs::write(&file, "x").unwrap();
        let mut h = Harness::new();
        h.tree.configure(&spec(&[&file], &[])).unwrap();
        fs::write(dir.path().join("sibling"), "x").unwrap();
        // Editors save by writing a temporary file and renaming it over the original.
        fs::write(dir.path().join("tmp"), "y").unwrap();
        fs::rename(dir.path().join("tmp"), &file).unwrap();
        assert_eq!(h.drain().0, BTreeSet::from([file]));
    }

    #[test]
    fn removing_a_watched_directory_is_a_fault_and_missing_paths_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("w");
        fs::create_dir(&root).unwrap();
        let mut h = Harness::new();
        h.tree.configure(&spec(&[&root], &[])).unwrap();
        fs::remove_dir(&root).unwrap();
        let (changed, errors) = h.drain();
        assert!(changed.contains(&root));
        assert!(matches!(&errors[..], [Error::Removed(p)] if *p == root), "{errors:?}");
        let err = h.tree.configure(&spec(&[&root], &[])).unwrap_err();
        assert!(matches!(err, Error::Missing(ref p) if *p == root), "{err:?}");
        assert!(err.to_string().contains("does not exist"), "{err}");
        let err = h.tree.configure(&spec(&[Path::new("relative")], &[])).unwrap_err();
        assert!(matches!(err, Error::InvalidSpec(_)), "{err:?}");
    }

    #[test]
    fn a_changed_tiltignore_is_applied() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("out/x")).unwrap();
        let mut h = Harness::new();
        h.tree.configure(&spec(&[root], &[])).unwrap();
        assert_eq!(h.tree.watched_dirs(), 3);
        fs::write(root.join(TILTIGNORE), "out/\n*.log\n").unwrap();
        assert!(h.drain().0.contains(&root.join(TILTIGNORE)));
        assert_eq!(h.tree.watched_dirs(), 1);
        fs::write(root.join("a.log"), "x").unwrap();
        fs::write(root.join("out/b"), "x").unwrap();
        fs::write(root.join("c"), "x").unwrap();
        assert_eq!(h.drain().0, BTreeSet::from([root.join("c")]));
    }

    #[tokio::test]
    async fn the_thread_batches_and_keeps_pending_changes_across_a_reconfigure() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs::create_dir(&a).unwrap();
        fs::create_dir(&b).unwrap();
        let (out, mut batches) = async_mpsc::unbounded_channel();
        let thread = WatchThread::spawn(Duration::from_millis(300), Duration::from_secs(5), out).unwrap();
        let configurer = thread.configurer();
        assert_eq!(configurer.configure(spec(&[&a], &[])).await.unwrap(), 1);
        for i in 0..10 {
            fs::write(a.join(format!("f{i}")), "x").unwrap();
        }
        // Reconfigure while the batch is pending; the new path's changes join the same batch.
        assert_eq!(configurer.configure(spec(&[&a, &b], &[])).await.unwrap(), 2);
        fs::write(b.join("g"), "x").unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), batches.recv()).await.unwrap().unwrap();
        let Output::Batch(paths) = got else { panic!("{got:?}") };
        let mut want: Vec<PathBuf> = (0..10).map(|i| a.join(format!("f{i}"))).collect();
        want.push(b.join("g"));
        assert_eq!(paths, want);
        drop(thread);
        assert!(matches!(configurer.configure(spec(&[&a], &[])).await, Err(Error::Stopped)));
    }
}
