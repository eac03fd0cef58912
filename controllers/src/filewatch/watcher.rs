//! What each FileWatch watches, and the routing of raw events to the FileWatches they concern.
//!
//! A [`WatchedTree`] is one FileWatch's share of the [`KernelWatches`]. A watched directory gets a
//! non-recursive watch on itself and on each directory below it that is not ignored. Directories are
//! walked top-down and ignored ones are pruned before any watch is added, so an ignored `node_modules/`
//! costs no watch at all; each directory gets its watch before its entries are listed, so nothing created
//! meanwhile is missed. Directories that appear later get watches (and their contents are reported as
//! changed); removed ones lose theirs.
//!
//! A watched file, or a watched path that does not exist (yet), is seen through the watch on the nearest
//! existing directory above it (its anchor; a file's parent), which is watched non-recursively: a missing
//! `tilt_config.json` costs one watch on the Tiltfile's directory, and a missing `a/b/c.txt` one on the
//! deepest of its ancestors that exists. Every change on the way to a path (a directory toward it
//! appearing, the path itself appearing or vanishing, the anchor vanishing) re-resolves it: the watch
//! moves down as intermediate directories appear, moves to the path itself once it exists (recursively,
//! for a directory), and falls back to the nearest existing ancestor when it is removed. So a missing path
//! is not an error, and its creation, changes and removal are reported like any other change.
//!
//! A [`TreeSet`] holds every FileWatch's tree and the one inotify instance they share. It routes each raw
//! event by path to the trees that watch the directory the event came from (or the directory itself, for
//! its own deletion), and each tree turns it into changed paths, skipping attribute-only and access events.
//! Watches are kept under real paths (symbolic links resolved, see `kernel.rs`), and changes are reported
//! under the paths the spec names. A spec change reconfigures a tree in place: the inotify instance and
//! the events queued in it carry over, so an event that arrives during the change is not lost.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use notify::EventKind;
use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind, RenameMode};
use tilt_apis::{FileWatchSpec, IgnoreDef};
use walkdir::WalkDir;

use super::Error;
use super::ignores::{IgnoreSet, TILTIGNORE};
use super::kernel::{KernelWatches, TreeId};

/// How often one root is resolved again while directories on its way keep appearing or vanishing as its
/// watch is added, before the configuration fails (and is retried with backoff).
const MAX_SETTLE: usize = 32;

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

/// What a watched path is on disk, and so how it is watched.
#[derive(Debug, Clone, PartialEq)]
enum Found {
    /// An existing directory: watched with every directory below it that is not ignored.
    Dir,
    /// A file, or nothing (yet): seen through the non-recursive watch on `anchor`, the real path of the
    /// nearest existing directory above it (a file's parent).
    Leaf {
        /// The directory whose watch sees this path's changes, or those on the way to it.
        anchor: PathBuf,
        /// Whether the path exists.
        exists: bool,
    },
}

/// A watched path as last found on disk.
#[derive(Debug, Clone, PartialEq)]
struct Root {
    /// As the spec names it: changes are reported, and ignores matched, under this path.
    path: PathBuf,
    /// With symbolic links resolved (as far as it exists): where the watches are, and how raw events name
    /// it.
    real: PathBuf,
    found: Found,
}

impl Root {
    /// Finds `path` on disk. Only what keeps it from being watched is an error (permission denied on the
    /// way, say); a path that does not exist is a [`Found::Leaf`] under its nearest existing ancestor.
    fn resolve(path: &Path) -> Result<Root, Error> {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => match std::fs::canonicalize(path) {
                Ok(real) => Ok(Root { path: path.to_path_buf(), real, found: Found::Dir }),
                // Removed just now.
                Err(e) if is_absent(&e) => Root::leaf(path, false),
                Err(e) => Err(io_error(path, e)),
            },
            Ok(_) => Root::leaf(path, true),
            Err(e) if is_absent(&e) => Root::leaf(path, false),
            Err(e) => Err(io_error(path, e)),
        }
    }

    /// `path` as seen from its nearest existing ancestor directory.
    fn leaf(path: &Path, exists: bool) -> Result<Root, Error> {
        for dir in path.ancestors().skip(1) {
            // A file in the way is skipped like a missing directory: the path appears only once it is
            // replaced by one, which its own parent's watch sees.
            let real = match std::fs::metadata(dir) {
                Ok(meta) if meta.is_dir() => std::fs::canonicalize(dir),
                Ok(_) => continue,
                Err(e) => Err(e),
            };
            match real {
                Ok(anchor) => {
                    let rest = path.strip_prefix(dir).unwrap_or(path);
                    let real = anchor.join(rest);
                    return Ok(Root { path: path.to_path_buf(), real, found: Found::Leaf { anchor, exists } });
                }
                Err(e) if is_absent(&e) => continue,
                Err(e) => return Err(io_error(dir, e)),
            }
        }
        Err(Error::Missing(path.to_path_buf()))
    }

    fn is_dir(&self) -> bool {
        self.found == Found::Dir
    }

    fn exists(&self) -> bool {
        match self.found {
            Found::Dir => true,
            Found::Leaf { exists, .. } => exists,
        }
    }

    /// Whether a `change` at real path `path` can change what this root is on disk: the root itself, or a
    /// directory on its way (an ancestor, which for a missing path includes its anchor and the directory
    /// toward it), appeared or vanished.
    fn moved_by(&self, change: &Change, path: &Path) -> bool {
        matches!(change, Change::Appeared | Change::Removed) && self.real.starts_with(path)
    }
}

/// Whether an I/O error means the path is not there: it, or a directory on its way, does not exist (or is
/// a file).
fn is_absent(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

/// What is watched and what is ignored, resolved from a [`WatchSpec`].
#[derive(Debug)]
struct Filter {
    roots: Vec<Root>,
    ignores: IgnoreSet,
    /// `spec.ignores`, for rebuilding `ignores` when a root becomes or stops being a directory (whose
    /// `.tiltignore` counts).
    defs: Vec<IgnoreDef>,
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
        let roots = spec.paths.iter().map(|p| Root::resolve(p)).collect::<Result<Vec<_>, _>>()?;
        let ignores = ignore_set(&roots, &spec.ignores)?;
        Ok(Filter { roots, ignores, defs: spec.ignores.clone() })
    }

    /// Puts `root` in place of root `i`, re-reading the ignores if it became or stopped being a directory.
    fn set_root(&mut self, i: usize, root: Root) -> Result<(), Error> {
        let rebuild = root.is_dir() != self.roots[i].is_dir();
        self.roots[i] = root;
        if rebuild {
            self.ignores = ignore_set(&self.roots, &self.defs)?;
        }
        Ok(())
    }

    /// The paths, as the spec names them, under which a change at real path `real` is reported: one for
    /// each root that `real` is, or is under if the root is a directory, and that does not ignore it.
    /// Usually one; none if `real` is not watched or is ignored.
    fn reported(&self, real: &Path, is_dir: bool) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        for root in &self.roots {
            let path = match real.strip_prefix(&root.real) {
                Ok(rest) if rest.as_os_str().is_empty() => root.path.clone(),
                Ok(rest) if root.is_dir() => root.path.join(rest),
                _ => continue,
            };
            if !paths.contains(&path) && !self.ignores.is_ignored(&path, is_dir) {
                paths.push(path);
            }
        }
        paths
    }

    /// Whether some root needs the watch on real directory `dir`: it is a leaf's anchor, or a directory
    /// root's own or one below it that is not ignored.
    fn needs(&self, dir: &Path) -> bool {
        self.roots.iter().any(|r| match &r.found {
            Found::Leaf { anchor, .. } => anchor == dir,
            Found::Dir => dir.starts_with(&r.real) && !self.reported(dir, true).is_empty(),
        })
    }

    /// Whether `path` (as the spec names it) is the `.tiltignore` of a watched directory.
    fn is_tiltignore(&self, path: &Path) -> bool {
        path.file_name() == Some(TILTIGNORE.as_ref())
            && self.roots.iter().any(|r| r.is_dir() && path.parent() == Some(r.path.as_path()))
    }
}

/// The ignores of `roots`: `defs`, plus `.git` and the `.tiltignore` of each directory root.
fn ignore_set(roots: &[Root], defs: &[IgnoreDef]) -> Result<IgnoreSet, Error> {
    IgnoreSet::new(roots.iter().filter(|r| r.is_dir()).map(|r| r.path.as_path()), defs)
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

/// One FileWatch's watches and the filter that decides which changes count.
struct WatchedTree {
    id: TreeId,
    filter: Option<Filter>,
    spec: Option<WatchSpec>,
}

impl WatchedTree {
    /// Watches what `spec` asks for: adds the watches it needs, then lets go of those it no longer needs.
    /// Returns the number of watched directories. On error the previous filter stays in force.
    fn configure(&mut self, kernel: &mut KernelWatches, spec: &WatchSpec) -> Result<usize, Error> {
        let mut filter = Filter::new(spec)?;
        let mut wanted = BTreeSet::new();
        for i in 0..filter.roots.len() {
            wanted.extend(settle(&mut filter, kernel, self.id, i, &mut Vec::new(), |_| {})?);
        }
        kernel.retain(self.id, &wanted);
        self.filter = Some(filter);
        self.spec = Some(spec.clone());
        Ok(kernel.dirs_of(self.id))
    }

    fn reconfigure(&mut self, kernel: &mut KernelWatches) -> Result<(), Error> {
        match self.spec.clone() {
            Some(spec) => self.configure(kernel, &spec).map(drop),
            None => Ok(()),
        }
    }

    /// Applies a `change` at real path `path`, seen through one of this tree's watches (the shared watches
    /// under a removed path are already forgotten): re-resolves the roots it can move, pushes the changed
    /// paths it reports to `changed`, and watches a new directory. Returns whether a `.tiltignore` of the
    /// tree changed, which the caller reapplies. An error means the watch is no longer complete: the watch
    /// limit or a permission stopped a new directory being watched.
    fn apply(
        &mut self,
        kernel: &mut KernelWatches,
        change: &Change,
        path: &Path,
        is_dir: bool,
        changed: &mut Vec<PathBuf>,
    ) -> Result<bool, Error> {
        let Some(filter) = &mut self.filter else { return Ok(false) };
        let mut fault = None;
        for i in 0..filter.roots.len() {
            if filter.roots[i].moved_by(change, path)
                && let Err(e) = relocate(filter, kernel, self.id, i, changed)
            {
                fault = Some(e);
            }
        }
        let reported = filter.reported(path, is_dir);
        let reload = reported.iter().any(|p| filter.is_tiltignore(p));
        // A root that appeared was scanned when it was relocated.
        let is_root = filter.roots.iter().any(|r| r.real == path);
        if *change == Change::Appeared && is_dir && !reported.is_empty() && !is_root {
            match scan(filter, kernel, self.id, path, |paths| changed.extend(paths)) {
                Ok(_) => {}
                Err(e @ Error::WatchLimit(_)) => fault = Some(e),
                // Gone again already, or unreadable: nothing to watch.
                Err(e) => tracing::debug!(%e, "not watching a new directory"),
            }
        }
        changed.extend(reported);
        match fault {
            Some(e) => Err(e),
            None => Ok(reload),
        }
    }
}

/// Resolves root `i` of `filter` afresh and adds the watches it needs for tree `id`, until what is on disk
/// holds still while they are added. A directory on the way to a missing path may appear just before its
/// parent's watch is in place, where no event will tell of it, so after watching a leaf's anchor the path
/// is resolved again; a directory that vanishes before its scan is resolved again too. Returns the
/// directories the root now needs; each anchor watched on the way is also pushed to `tried`, for the
/// caller to let go of those no longer needed. `found` gets the paths below a directory root.
fn settle(
    filter: &mut Filter,
    kernel: &mut KernelWatches,
    id: TreeId,
    i: usize,
    tried: &mut Vec<PathBuf>,
    mut found: impl FnMut(Vec<PathBuf>),
) -> Result<Vec<PathBuf>, Error> {
    let path = filter.roots[i].path.clone();
    for _ in 0..MAX_SETTLE {
        let root = Root::resolve(&path)?;
        filter.set_root(i, root.clone())?;
        match &root.found {
            Found::Dir => match scan(filter, kernel, id, &root.real, &mut found) {
                Ok(dirs) => return Ok(dirs),
                Err(Error::Missing(_)) => continue,
                Err(e) => return Err(e),
            },
            Found::Leaf { anchor, .. } => {
                if filter.reported(&root.real, false).is_empty() {
                    return Ok(Vec::new());
                }
                match kernel.add(id, anchor) {
                    Ok(()) => tried.push(anchor.clone()),
                    Err(Error::Missing(_)) => continue,
                    Err(e) => return Err(e),
                }
                if Root::resolve(&path)? == root {
                    return Ok(vec![anchor.clone()]);
                }
            }
        }
    }
    let source = std::io::Error::other("the directories on its way kept appearing and vanishing");
    Err(Error::Io { path, source })
}

/// Re-resolves root `i` of `filter` after a change on its way: watches it where it now is, lets go of the
/// anchors it no longer needs, and reports the root if it appeared or vanished (and the contents of a
/// directory that appeared).
fn relocate(
    filter: &mut Filter,
    kernel: &mut KernelWatches,
    id: TreeId,
    i: usize,
    changed: &mut Vec<PathBuf>,
) -> Result<(), Error> {
    let old = filter.roots[i].clone();
    // The watches it held: a leaf's anchor, or a directory's own (unless forgotten with the directory).
    let mut tried = match &old.found {
        Found::Leaf { anchor, .. } => vec![anchor.clone()],
        Found::Dir => kernel.owned_under(id, &old.real),
    };
    let settled = settle(filter, kernel, id, i, &mut tried, |paths| changed.extend(paths));
    for dir in tried {
        if !filter.needs(&dir) {
            kernel.release(id, &dir);
        }
    }
    settled?;
    let new = &filter.roots[i];
    tracing::debug!(path = %new.path.display(), found = ?new.found, "watched path moved");
    if old.exists() != new.exists() {
        changed.extend(filter.reported(&new.real, new.is_dir()));
    }
    Ok(())
}

/// What one raw event means for one tree.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// The changed paths to report, as the tree's spec names them.
    pub(crate) changed: Vec<PathBuf>,
    /// Why the tree's watch is no longer complete and needs reconfiguring.
    pub(crate) fault: Option<Error>,
}

/// Every FileWatch's tree, on one shared set of [`KernelWatches`].
pub(crate) struct TreeSet {
    kernel: KernelWatches,
    trees: HashMap<TreeId, WatchedTree>,
}

impl TreeSet {
    /// No trees yet; the raw events of the shared inotify instance go to `handler`.
    pub(crate) fn new(handler: impl notify::EventHandler) -> Result<TreeSet, Error> {
        Ok(TreeSet { kernel: KernelWatches::new(handler)?, trees: HashMap::new() })
    }

    /// Adds tree `id`, watching nothing until configured.
    pub(crate) fn insert(&mut self, id: TreeId) {
        self.trees.entry(id).or_insert(WatchedTree { id, filter: None, spec: None });
    }

    /// Removes tree `id`, letting go of its watches.
    pub(crate) fn remove(&mut self, id: TreeId) {
        self.trees.remove(&id);
        self.kernel.release_all(id);
    }

    /// Makes tree `id` watch what `spec` asks for; returns the number of directories it watches.
    pub(crate) fn configure(&mut self, id: TreeId, spec: &WatchSpec) -> Result<usize, Error> {
        self.trees.get_mut(&id).ok_or(Error::Stopped)?.configure(&mut self.kernel, spec)
    }

    /// Applies one raw event to the trees it concerns, keeping the watches in step (new directories get
    /// watches, removed ones lose them), and returns what it means for each of them.
    pub(crate) fn handle(&mut self, event: notify::Result<notify::Event>) -> BTreeMap<TreeId, Outcome> {
        let mut outcomes = BTreeMap::<TreeId, Outcome>::new();
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                // An error about no path in particular (reading the instance failed) concerns every tree.
                let ids: BTreeSet<TreeId> = match &e.paths[..] {
                    [] => self.trees.keys().copied().collect(),
                    paths => paths.iter().flat_map(|p| self.kernel.users_near(p)).collect(),
                };
                let path = e.paths.first().cloned().unwrap_or_default();
                for id in ids {
                    outcomes.entry(id).or_default().fault = Some(notify_error(&path, copy_notify_error(&e)));
                }
                return outcomes;
            }
        };
        if event.need_rescan() {
            // The kernel queue overflowed and events were lost: every tree reports its roots and re-walks.
            for (id, tree) in &mut self.trees {
                let outcome = outcomes.entry(*id).or_default();
                outcome.changed.extend(tree.filter.iter().flat_map(|f| f.roots.iter().map(|r| r.path.clone())));
                outcome.fault = tree.reconfigure(&mut self.kernel).err();
            }
            return outcomes;
        }
        let change = Change::of(&event.kind);
        if change == Change::None {
            return outcomes;
        }
        let mut reload = BTreeSet::new();
        for path in event.paths {
            let is_dir = match event.kind {
                EventKind::Create(CreateKind::Folder) | EventKind::Remove(RemoveKind::Folder) => true,
                EventKind::Create(CreateKind::File) | EventKind::Remove(RemoveKind::File) => false,
                _ if change == Change::Removed => self.kernel.is_watched(&path),
                _ => std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()),
            };
            let mut ids = self.kernel.users_near(&path);
            if change == Change::Removed {
                // Also the trees that watched only below it (a directory moved away tells only its own
                // watch): their roots there are gone too.
                ids.extend(self.kernel.forget_under(&path));
            }
            for id in ids {
                let Some(tree) = self.trees.get_mut(&id) else { continue };
                let outcome = outcomes.entry(id).or_default();
                match tree.apply(&mut self.kernel, &change, &path, is_dir, &mut outcome.changed) {
                    Ok(true) => {
                        reload.insert(id);
                    }
                    Ok(false) => {}
                    Err(e) => outcome.fault = Some(e),
                }
            }
        }
        for (id, outcome) in &mut outcomes {
            let Some(tree) = self.trees.get_mut(id) else { continue };
            if outcome.fault.is_none() && reload.contains(id) {
                outcome.fault = tree.reconfigure(&mut self.kernel).err();
            }
        }
        outcomes
    }

    /// How many directories tree `id` watches.
    #[cfg(test)]
    pub(crate) fn watched_dirs(&self, id: TreeId) -> usize {
        self.kernel.dirs_of(id)
    }

    /// How many kernel watches all trees hold together.
    #[cfg(test)]
    pub(crate) fn kernel_watches(&self) -> usize {
        self.kernel.len()
    }
}

/// Walks real directory `top` top-down, pruning ignored entries, adding a watch for tree `id` to each
/// directory before listing it, and calling `found` with the reported paths of each entry below `top`.
/// Returns the watched directories. Failing to watch or read `top` is an error, as is reaching the watch
/// limit; an unreadable directory below `top` is skipped.
fn scan(
    filter: &Filter,
    kernel: &mut KernelWatches,
    id: TreeId,
    top: &Path,
    mut found: impl FnMut(Vec<PathBuf>),
) -> Result<Vec<PathBuf>, Error> {
    let mut dirs = Vec::new();
    let mut walk = WalkDir::new(top)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| !filter.reported(e.path(), e.file_type().is_dir()).is_empty());
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
            found(filter.reported(entry.path(), is_dir));
        }
        if !is_dir {
            continue;
        }
        match kernel.add(id, entry.path()) {
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

/// The [`Error`] for a failure of `notify` at `path`.
pub(crate) fn notify_error(path: &Path, e: notify::Error) -> Error {
    match e.kind {
        notify::ErrorKind::MaxFilesWatch => Error::WatchLimit(path.to_path_buf()),
        notify::ErrorKind::PathNotFound => Error::Missing(path.to_path_buf()),
        notify::ErrorKind::Io(io) => io_error(path, io),
        _ => Error::Notify { path: path.to_path_buf(), source: e },
    }
}

/// A copy of `e` (which is not `Clone`), for reporting one error to several trees.
fn copy_notify_error(e: &notify::Error) -> notify::Error {
    use notify::ErrorKind;
    let kind = match &e.kind {
        ErrorKind::Generic(message) => ErrorKind::Generic(message.clone()),
        ErrorKind::Io(io) => ErrorKind::Io(match io.raw_os_error() {
            Some(code) => std::io::Error::from_raw_os_error(code),
            None => std::io::Error::new(io.kind(), io.to_string()),
        }),
        ErrorKind::PathNotFound => ErrorKind::PathNotFound,
        ErrorKind::WatchNotFound => ErrorKind::WatchNotFound,
        ErrorKind::InvalidConfig(config) => ErrorKind::InvalidConfig(*config),
        ErrorKind::MaxFilesWatch => ErrorKind::MaxFilesWatch,
    };
    notify::Error::new(kind).set_paths(e.paths.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::mpsc;
    use std::time::Duration;

    /// The tree the single-tree tests use.
    const T: TreeId = 1;

    /// Trees fed by a channel the test drains by hand, so each step is deterministic.
    struct Harness {
        set: TreeSet,
        rx: mpsc::Receiver<notify::Result<notify::Event>>,
    }

    impl Harness {
        /// A set with trees `1..=trees`.
        fn new(trees: TreeId) -> Harness {
            let (tx, rx) = mpsc::channel();
            let mut set = TreeSet::new(tx).unwrap();
            for id in 1..=trees {
                set.insert(id);
            }
            Harness { set, rx }
        }

        /// Applies events until none has arrived for 200 ms; returns each tree's changed paths and errors.
        fn drain_all(&mut self) -> BTreeMap<TreeId, (BTreeSet<PathBuf>, Vec<Error>)> {
            let mut all = BTreeMap::<TreeId, (BTreeSet<PathBuf>, Vec<Error>)>::new();
            while let Ok(event) = self.rx.recv_timeout(Duration::from_millis(200)) {
                for (id, outcome) in self.set.handle(event) {
                    let (changed, errors) = all.entry(id).or_default();
                    changed.extend(outcome.changed);
                    errors.extend(outcome.fault);
                }
            }
            all
        }

        /// [`Harness::drain_all`] for tree `T`.
        fn drain(&mut self) -> (BTreeSet<PathBuf>, Vec<Error>) {
            self.drain_all().remove(&T).unwrap_or_default()
        }

        /// Drains tree `T`'s changes, which must be just `path`, with no error.
        fn expect_only(&mut self, path: &Path) {
            let (changed, errors) = self.drain();
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(changed, BTreeSet::from([path.to_path_buf()]));
        }

        fn configure(&mut self, spec: &WatchSpec) -> Result<usize, Error> {
            self.set.configure(T, spec)
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
        let copied = copy_notify_error(&notify::Error::io(std::io::Error::from_raw_os_error(libc::ENOSPC)));
        assert!(matches!(notify_error(p, copied), Error::WatchLimit(_)));
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
        let mut h = Harness::new(1);
        let n = h.configure(&spec(&[root], &[(root, &["node_modules"])])).unwrap();
        assert_eq!(n, 4, "root, src, src/a, src/b");
        assert_eq!(h.set.watched_dirs(T), 4);
        assert_eq!(h.set.kernel_watches(), 4);

        // Un-ignoring node_modules in place adds its 101 directories; ignoring it again drops them.
        assert_eq!(h.configure(&spec(&[root], &[])).unwrap(), 4 + 101);
        assert_eq!(h.configure(&spec(&[root], &[(root, &["node_modules"])])).unwrap(), 4);
        assert_eq!(h.set.kernel_watches(), 4);
    }

    #[test]
    fn new_directories_are_watched_and_their_contents_reported() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut h = Harness::new(1);
        h.configure(&spec(&[root], &[(root, &["*.tmp"])])).unwrap();
        fs::create_dir_all(root.join("new/deep")).unwrap();
        fs::write(root.join("new/deep/f.txt"), "x").unwrap();
        fs::write(root.join("new/deep/skip.tmp"), "x").unwrap();
        let (changed, errors) = h.drain();
        assert!(errors.is_empty(), "{errors:?}");
        assert!(changed.contains(&root.join("new/deep/f.txt")), "{changed:?}");
        assert!(!changed.contains(&root.join("new/deep/skip.tmp")), "{changed:?}");
        assert_eq!(h.set.watched_dirs(T), 3);

        // Later writes in the new directory are seen through its own watch.
        fs::write(root.join("new/deep/g.txt"), "x").unwrap();
        assert!(h.drain().0.contains(&root.join("new/deep/g.txt")));

        fs::remove_dir_all(root.join("new")).unwrap();
        let (changed, errors) = h.drain();
        assert!(errors.is_empty(), "{errors:?}");
        assert!(changed.contains(&root.join("new")), "{changed:?}");
        assert_eq!(h.set.watched_dirs(T), 1);
        assert_eq!(h.set.kernel_watches(), 1);
    }

    #[test]
    fn chmod_and_reads_are_not_changes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, "x").unwrap();
        let mut h = Harness::new(1);
        h.configure(&spec(&[dir.path()], &[])).unwrap();
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
        let mut h = Harness::new(1);
        h.configure(&spec(&[&file], &[])).unwrap();
        fs::write(dir.path().join("sibling"), "x").unwrap();
        // Editors save by writing a temporary file and renaming it over the original.
        fs::write(dir.path().join("tmp"), "y").unwrap();
        fs::rename(dir.path().join("tmp"), &file).unwrap();
        assert_eq!(h.drain().0, BTreeSet::from([file]));
    }

    /// The real path of `path`, which exists.
    fn real(path: &Path) -> PathBuf {
        fs::canonicalize(path).unwrap()
    }

    #[test]
    fn a_missing_file_is_watched_through_its_nearest_ancestor_which_moves_down_as_directories_appear() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let file = root.join("a/b/c.txt");
        let mut h = Harness::new(1);
        assert_eq!(h.configure(&spec(&[&file], &[])).unwrap(), 1, "a missing path is no error");
        assert!(h.set.kernel.is_watched(&real(root)));

        // Intermediate directories are not the path: no event, but the watch moves down to the deepest.
        fs::create_dir_all(root.join("a/b")).unwrap();
        let (changed, errors) = h.drain();
        assert!(changed.is_empty() && errors.is_empty(), "{changed:?} {errors:?}");
        assert_eq!(h.set.kernel_watches(), 1);
        assert!(h.set.kernel.is_watched(&real(&root.join("a/b"))), "not recursive: one watch, on a/b");

        fs::write(&file, "x").unwrap();
        h.expect_only(&file);
        fs::write(&file, "y").unwrap();
        assert_eq!(h.drain().0, BTreeSet::from([file.clone()]));
        fs::write(root.join("a/b/sibling"), "x").unwrap();
        assert!(h.drain().0.is_empty(), "siblings are not reported");
        fs::remove_file(&file).unwrap();
        h.expect_only(&file);

        // Removing the directories on its way moves the watch back up.
        fs::remove_dir_all(root.join("a")).unwrap();
        let (_, errors) = h.drain();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(h.set.kernel_watches(), 1);
        assert!(h.set.kernel.is_watched(&real(root)));

        // Everything created at once, faster than the watch can follow: the path is still reported.
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(&file, "z").unwrap();
        h.expect_only(&file);
        assert_eq!(h.set.kernel_watches(), 1);
        assert!(h.set.kernel.is_watched(&real(&root.join("a/b"))));
    }

    #[test]
    fn a_missing_directory_is_watched_recursively_once_it_appears_and_again_after_removal() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let watched = root.join("w");
        let mut h = Harness::new(1);
        h.configure(&spec(&[&watched], &[])).unwrap();
        fs::create_dir_all(watched.join("deep")).unwrap();
        fs::write(watched.join("deep/f"), "x").unwrap();
        let (changed, errors) = h.drain();
        assert!(errors.is_empty(), "{errors:?}");
        assert!(changed.contains(&watched) && changed.contains(&watched.join("deep/f")), "{changed:?}");
        assert_eq!(h.set.watched_dirs(T), 2, "w and w/deep; the parent's watch is let go");
        assert!(!h.set.kernel.is_watched(&real(root)));

        // Removed: reported, no error, and watched through the parent again.
        fs::remove_dir_all(&watched).unwrap();
        let (changed, errors) = h.drain();
        assert!(errors.is_empty(), "{errors:?}");
        assert!(changed.contains(&watched), "{changed:?}");
        assert_eq!(h.set.kernel_watches(), 1);
        assert!(h.set.kernel.is_watched(&real(root)));

        // Re-created, as a populated directory moved in.
        fs::create_dir_all(root.join("tmp/sub")).unwrap();
        fs::write(root.join("tmp/sub/g"), "x").unwrap();
        let _ = h.drain();
        fs::rename(root.join("tmp"), &watched).unwrap();
        let (changed, errors) = h.drain();
        assert!(errors.is_empty(), "{errors:?}");
        assert!(changed.contains(&watched) && changed.contains(&watched.join("sub/g")), "{changed:?}");
        fs::write(watched.join("sub/h"), "x").unwrap();
        assert_eq!(h.drain().0, BTreeSet::from([watched.join("sub/h")]));

        // Moved away: the same as removed.
        fs::rename(&watched, root.join("gone")).unwrap();
        let (changed, errors) = h.drain();
        assert!(errors.is_empty() && changed.contains(&watched), "{changed:?} {errors:?}");
        assert_eq!((h.set.watched_dirs(T), h.set.kernel_watches()), (1, 1));
        fs::write(root.join("gone/sub/i"), "x").unwrap();
        assert!(h.drain().0.is_empty(), "what moved away is no longer watched");
    }

    #[test]
    fn a_file_replaced_by_a_directory_is_watched_as_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        fs::write(&path, "x").unwrap();
        let mut h = Harness::new(1);
        h.configure(&spec(&[&path], &[])).unwrap();
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        assert!(h.drain().0.contains(&path));
        fs::write(path.join("inside"), "x").unwrap();
        assert_eq!(h.drain().0, BTreeSet::from([path.join("inside")]));
    }

    #[test]
    fn an_ignored_missing_path_gets_no_watch_and_bad_specs_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut h = Harness::new(1);
        assert_eq!(h.configure(&spec(&[&root.join("x.log")], &[(root, &["*.log"])])).unwrap(), 0);
        let err = h.configure(&spec(&[Path::new("relative")], &[])).unwrap_err();
        assert!(matches!(err, Error::InvalidSpec(_)), "{err:?}");
    }

    #[test]
    fn trees_watching_below_a_moved_directory_follow_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("top/mid")).unwrap();
        let (missing, sub) = (root.join("top/mid/later.txt"), root.join("top/mid"));
        let mut h = Harness::new(3);
        h.set.configure(1, &spec(&[&missing], &[])).unwrap();
        h.set.configure(2, &spec(&[&sub], &[])).unwrap();
        h.set.configure(3, &spec(&[root], &[])).unwrap();
        // Moving `top` away is seen only through the watch on root, which trees 1 and 2 do not use; the
        // watches they do use, on top/mid, are gone with it, so they fall back to what exists.
        fs::rename(root.join("top"), root.join("moved")).unwrap();
        let got = h.drain_all();
        assert!(got.values().all(|(_, errors)| errors.is_empty()), "{got:?}");
        assert!(got[&2].0.contains(&sub), "{got:?}");
        assert_eq!((h.set.watched_dirs(1), h.set.watched_dirs(2)), (1, 1));
        fs::create_dir_all(&sub).unwrap();
        fs::write(&missing, "x").unwrap();
        fs::write(sub.join("f"), "x").unwrap();
        let got = h.drain_all();
        assert!(got[&1].0.contains(&missing), "{got:?}");
        assert!(got[&2].0.contains(&sub.join("f")), "{got:?}");
    }

    #[test]
    fn a_changed_tiltignore_is_applied() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("out/x")).unwrap();
        let mut h = Harness::new(1);
        h.configure(&spec(&[root], &[])).unwrap();
        assert_eq!(h.set.watched_dirs(T), 3);
        fs::write(root.join(TILTIGNORE), "out/\n*.log\n").unwrap();
        assert!(h.drain().0.contains(&root.join(TILTIGNORE)));
        assert_eq!(h.set.watched_dirs(T), 1);
        fs::write(root.join("a.log"), "x").unwrap();
        fs::write(root.join("out/b"), "x").unwrap();
        fs::write(root.join("c"), "x").unwrap();
        assert_eq!(h.drain().0, BTreeSet::from([root.join("c")]));
    }

    #[test]
    fn trees_on_one_directory_share_its_watches_and_keep_their_own_ignores() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("src/lib")).unwrap();
        let mut h = Harness::new(2);
        assert_eq!(h.set.configure(1, &spec(&[root], &[(root, &["*.log"])])).unwrap(), 3);
        assert_eq!(h.set.configure(2, &spec(&[root], &[])).unwrap(), 3);
        assert_eq!(h.set.kernel_watches(), 3, "one kernel watch per directory, not per tree");

        fs::write(root.join("src/lib/a.log"), "x").unwrap();
        fs::write(root.join("src/b.rs"), "x").unwrap();
        let got = h.drain_all();
        assert_eq!(got[&1].0, BTreeSet::from([root.join("src/b.rs")]));
        assert_eq!(got[&2].0, BTreeSet::from([root.join("src/lib/a.log"), root.join("src/b.rs")]));

        // A new directory is watched once, for both.
        fs::create_dir(root.join("new")).unwrap();
        fs::write(root.join("new/c"), "x").unwrap();
        let got = h.drain_all();
        assert!(got[&1].0.contains(&root.join("new/c")) && got[&2].0.contains(&root.join("new/c")), "{got:?}");
        assert_eq!((h.set.watched_dirs(1), h.set.watched_dirs(2), h.set.kernel_watches()), (4, 4, 4));

        // Removing one tree keeps the watches the other still uses.
        h.set.remove(2);
        assert_eq!(h.set.kernel_watches(), 4);
        fs::write(root.join("new/d"), "x").unwrap();
        let got = h.drain_all();
        assert_eq!(got.keys().collect::<Vec<_>>(), [&1]);
        assert_eq!(got[&1].0, BTreeSet::from([root.join("new/d")]));
        h.set.remove(1);
        assert_eq!(h.set.kernel_watches(), 0);
    }

    #[test]
    fn overlapping_trees_keep_the_watches_the_other_needs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let sub = root.join("sub");
        fs::create_dir_all(sub.join("deep")).unwrap();
        let mut h = Harness::new(2);
        assert_eq!(h.set.configure(1, &spec(&[root], &[])).unwrap(), 3);
        assert_eq!(h.set.configure(2, &spec(&[&sub], &[])).unwrap(), 2);
        assert_eq!(h.set.kernel_watches(), 3);

        // Tree 1 stops watching sub/ in place; tree 2 keeps its watches.
        assert_eq!(h.set.configure(1, &spec(&[root], &[(root, &["sub"])])).unwrap(), 1);
        assert_eq!(h.set.kernel_watches(), 3);
        fs::write(sub.join("deep/f"), "x").unwrap();
        fs::write(root.join("g"), "x").unwrap();
        let got = h.drain_all();
        assert_eq!(got[&1].0, BTreeSet::from([root.join("g")]));
        assert_eq!(got[&2].0, BTreeSet::from([sub.join("deep/f")]));

        // Deleting sub/ is reported to the tree rooted there, which falls back to watching root.
        fs::remove_dir_all(&sub).unwrap();
        let got = h.drain_all();
        assert!(got.values().all(|(_, errors)| errors.is_empty()), "{got:?}");
        assert!(got[&2].0.contains(&sub), "{got:?}");
        assert_eq!((h.set.watched_dirs(2), h.set.kernel_watches()), (1, 1));
    }

    #[test]
    fn a_linked_root_shares_the_real_directory_and_reports_its_own_paths() {
        let dir = tempfile::tempdir().unwrap();
        let (real, link) = (dir.path().join("real"), dir.path().join("link"));
        fs::create_dir_all(real.join("sub")).unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut h = Harness::new(2);
        h.set.configure(1, &spec(&[&link], &[(&link, &["*.log"])])).unwrap();
        h.set.configure(2, &spec(&[&real], &[])).unwrap();
        assert_eq!(h.set.kernel_watches(), 2, "one watch per directory, under its real path");

        fs::write(real.join("sub/f"), "x").unwrap();
        fs::write(real.join("a.log"), "x").unwrap();
        let got = h.drain_all();
        assert_eq!(got[&1].0, BTreeSet::from([link.join("sub/f")]));
        assert_eq!(got[&2].0, BTreeSet::from([real.join("a.log"), real.join("sub/f")]));

        // Removing the tree on the real path leaves the linked one watching.
        h.set.remove(2);
        fs::write(real.join("sub/g"), "x").unwrap();
        assert_eq!(h.drain_all()[&1].0, BTreeSet::from([link.join("sub/g")]));
    }
}
