//! The inotify watches of every FileWatch, held on one inotify instance.
//!
//! Linux allows few inotify instances per user (`fs.inotify.max_user_instances`, 128 by default), so the
//! controller opens one (one `notify` watcher) and [`KernelWatches`] shares its watches between the trees
//! of all FileWatches: a directory has one non-recursive kernel watch however many trees need it, each
//! tree is recorded as a user of it, and the watch is removed when its last user lets go.
//!
//! Trees name directories by their real path (symbolic links resolved), so two names for one directory
//! cannot share its single kernel watch under different names, where removing one would silently end
//! the other.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::Error;
use super::watcher::notify_error;

/// Identifies one FileWatch's tree among those sharing the watches.
pub(crate) type TreeId = u64;

/// One inotify instance's watches, one per directory, each with the trees that use it.
pub(crate) struct KernelWatches {
    watcher: RecommendedWatcher,
    /// Each watched directory and the trees using its watch; never an empty set.
    users: BTreeMap<PathBuf, BTreeSet<TreeId>>,
    /// Each tree's directories: the same relation as `users`, by tree.
    owned: HashMap<TreeId, BTreeSet<PathBuf>>,
}

impl KernelWatches {
    /// Opens the inotify instance, whose raw events go to `handler`.
    pub(crate) fn new(handler: impl notify::EventHandler) -> Result<KernelWatches, Error> {
        let watcher = RecommendedWatcher::new(handler, notify::Config::default()).map_err(|e| match e.kind {
            notify::ErrorKind::Io(io) if io.raw_os_error() == Some(libc::EMFILE) => Error::InstanceLimit,
            _ => Error::Notify { path: PathBuf::new(), source: e },
        })?;
        Ok(KernelWatches { watcher, users: BTreeMap::new(), owned: HashMap::new() })
    }

    /// Makes tree `id` a user of the watch on `dir`, adding the kernel watch if it is the first.
    pub(crate) fn add(&mut self, id: TreeId, dir: &Path) -> Result<(), Error> {
        match self.users.get_mut(dir) {
            Some(users) => {
                users.insert(id);
            }
            None => {
                self.watcher.watch(dir, RecursiveMode::NonRecursive).map_err(|e| notify_error(dir, e))?;
                self.users.insert(dir.to_path_buf(), BTreeSet::from([id]));
            }
        }
        self.owned.entry(id).or_default().insert(dir.to_path_buf());
        Ok(())
    }

    /// Lets tree `id` go of every watch not in `keep`.
    pub(crate) fn retain(&mut self, id: TreeId, keep: &BTreeSet<PathBuf>) {
        let Some(owned) = self.owned.get_mut(&id) else { return };
        let gone: Vec<PathBuf> = owned.difference(keep).cloned().collect();
        for dir in gone {
            owned.remove(&dir);
            release(&mut self.watcher, &mut self.users, id, &dir);
        }
        if owned.is_empty() {
            self.owned.remove(&id);
        }
    }

    /// Lets tree `id` go of the watch on `dir`.
    pub(crate) fn release(&mut self, id: TreeId, dir: &Path) {
        let Some(owned) = self.owned.get_mut(&id) else { return };
        if owned.remove(dir) {
            release(&mut self.watcher, &mut self.users, id, dir);
        }
        if owned.is_empty() {
            self.owned.remove(&id);
        }
    }

    /// Lets tree `id` go of all its watches.
    pub(crate) fn release_all(&mut self, id: TreeId) {
        for dir in self.owned.remove(&id).unwrap_or_default() {
            release(&mut self.watcher, &mut self.users, id, &dir);
        }
    }

    /// Forgets, for every tree, the watches on `path` and everything under it, which was deleted or moved
    /// away. Returns the trees that used them.
    pub(crate) fn forget_under(&mut self, path: &Path) -> BTreeSet<TreeId> {
        let mut ids = BTreeSet::new();
        let gone: Vec<PathBuf> = self
            .users
            .range(path.to_path_buf()..)
            .take_while(|(d, _)| d.starts_with(path))
            .map(|(d, _)| d.clone())
            .collect();
        for dir in gone {
            for id in self.users.remove(&dir).unwrap_or_default() {
                ids.insert(id);
                if let Some(owned) = self.owned.get_mut(&id) {
                    owned.remove(&dir);
                    if owned.is_empty() {
                        self.owned.remove(&id);
                    }
                }
            }
            // notify already dropped the watch of a deleted or moved-away directory; that error is expected.
            let _ = self.watcher.unwatch(&dir);
        }
        ids
    }

    /// The trees an event at `path` can concern: those watching `path` itself, or the directory holding it.
    pub(crate) fn users_near(&self, path: &Path) -> BTreeSet<TreeId> {
        let mut ids = BTreeSet::new();
        for dir in std::iter::once(path).chain(path.parent()) {
            ids.extend(self.users.get(dir).into_iter().flatten());
        }
        ids
    }

    /// Whether some tree watches `dir`.
    pub(crate) fn is_watched(&self, dir: &Path) -> bool {
        self.users.contains_key(dir)
    }

    /// The directories tree `id` watches at or under `path`.
    pub(crate) fn owned_under(&self, id: TreeId, path: &Path) -> Vec<PathBuf> {
        let Some(owned) = self.owned.get(&id) else { return Vec::new() };
        owned.range(path.to_path_buf()..).take_while(|d| d.starts_with(path)).cloned().collect()
    }

    /// How many directories tree `id` watches.
    pub(crate) fn dirs_of(&self, id: TreeId) -> usize {
        self.owned.get(&id).map_or(0, BTreeSet::len)
    }

    /// How many kernel watches are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.users.len()
    }
}

/// Removes tree `id` from the users of `dir`'s watch, and the kernel watch with its last user.
fn release(watcher: &mut RecommendedWatcher, users: &mut BTreeMap<PathBuf, BTreeSet<TreeId>>, id: TreeId, dir: &Path) {
    let Some(ids) = users.get_mut(dir) else { return };
    ids.remove(&id);
    if ids.is_empty() {
        users.remove(dir);
        // Fails only if notify already dropped the watch (the directory is gone): nothing left to remove.
        let _ = watcher.unwatch(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_watch_lives_while_any_tree_uses_it() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        let (tx, rx) = mpsc::channel();
        let mut k = KernelWatches::new(tx).unwrap();
        k.add(1, &a).unwrap();
        k.add(2, &a).unwrap();
        k.add(2, &b).unwrap();
        assert_eq!((k.len(), k.dirs_of(1), k.dirs_of(2)), (2, 1, 2));
        assert_eq!(k.users_near(&a.join("f")), BTreeSet::from([1, 2]));

        k.release_all(2);
        assert_eq!((k.len(), k.dirs_of(2)), (1, 0));
        assert!(!k.is_watched(&b));
        std::fs::write(a.join("f"), "x").unwrap();
        let event = rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap().unwrap();
        assert_eq!(event.paths, [a.join("f")], "the shared watch survives one user leaving");

        k.add(1, &b).unwrap();
        k.release(1, &a);
        assert!(!k.is_watched(&a) && k.is_watched(&b));
        k.retain(1, &BTreeSet::new());
        assert_eq!(k.len(), 0);
    }

    #[test]
    fn forgetting_a_removed_directory_drops_it_for_every_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["x/y", "x-z"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let (tx, _rx) = mpsc::channel();
        let mut k = KernelWatches::new(tx).unwrap();
        for id in [1, 2] {
            for d in ["x", "x/y", "x-z"] {
                k.add(id, &root.join(d)).unwrap();
            }
        }
        assert_eq!(k.forget_under(&root.join("x")), BTreeSet::from([1, 2]));
        assert_eq!((k.len(), k.dirs_of(1), k.dirs_of(2)), (1, 1, 1));
        assert!(k.is_watched(&root.join("x-z")));
    }
}
