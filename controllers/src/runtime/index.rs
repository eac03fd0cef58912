//! The reference index: which objects of a controller's kind name a given object (a Cmd's `restartOn` naming
//! FileWatch `x`), so that a change of `x` reconciles exactly those, without scanning every object.
//!
//! The controller skeleton keeps the index in step with its own informer: each change of a referrer replaces
//! what it refers to, a delete removes it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use kube::runtime::reflector::ObjectRef;

use super::informer::Kind;

/// One reference: an object of `kind` named `name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Reference {
    /// The referred object's kind, as in `apiVersion`/`kind` (`FileWatch`).
    pub kind: &'static str,
    /// Its name.
    pub name: String,
}

impl Reference {
    /// A reference to the object of `kind` named `name`.
    pub(crate) fn new(kind: &'static str, name: impl Into<String>) -> Self {
        Reference { kind, name: name.into() }
    }
}

/// How many objects, of every controller's kind, refer to each object: what the informers must keep whole.
#[derive(Default)]
pub(crate) struct Interest(Mutex<HashMap<Reference, usize>>);

impl Interest {
    /// Whether some object refers to the object of `kind` named `name`.
    pub(crate) fn contains(&self, kind: &'static str, name: &str) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&Reference::new(kind, name))
    }

    fn add(&self, r: &Reference) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()).entry(r.clone()).or_default() += 1;
    }

    fn remove(&self, r: &Reference) {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(r) {
            *n -= 1;
            if *n == 0 {
                counts.remove(r);
            }
        }
    }
}

/// What each object of kind `K` refers to, and its reverse.
pub(crate) struct ReferenceIndex<K: Kind> {
    refs: fn(&K) -> Vec<Reference>,
    interest: Arc<Interest>,
    inner: Mutex<Inner>,
    _kind: std::marker::PhantomData<fn(K)>,
}

#[derive(Default)]
struct Inner {
    /// Referrer names by what they refer to.
    referrers: HashMap<Reference, HashSet<String>>,
    /// What each referrer refers to.
    references: HashMap<String, Vec<Reference>>,
}

impl<K: Kind> ReferenceIndex<K> {
    /// An empty index of the references `refs` finds in an object, counted in `interest` too.
    pub(crate) fn new(refs: fn(&K) -> Vec<Reference>, interest: Arc<Interest>) -> Self {
        ReferenceIndex { refs, interest, inner: Mutex::default(), _kind: std::marker::PhantomData }
    }

    /// Records what `referrer` (named `name`) refers to now; `None` when it is gone.
    pub(crate) fn update(&self, name: &str, referrer: Option<&K>) {
        let new: Vec<Reference> = referrer.map(self.refs).unwrap_or_default();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let old = if new.is_empty() {
            inner.references.remove(name).unwrap_or_default()
        } else {
            inner.references.insert(name.to_string(), new.clone()).unwrap_or_default()
        };
        for r in old.iter().filter(|r| !new.contains(r)) {
            self.interest.remove(r);
            if let Some(set) = inner.referrers.get_mut(r) {
                set.remove(name);
                if set.is_empty() {
                    inner.referrers.remove(r);
                }
            }
        }
        for r in new.into_iter().filter(|r| !old.contains(r)) {
            self.interest.add(&r);
            inner.referrers.entry(r).or_default().insert(name.to_string());
        }
    }

    /// The objects that refer to the object of `kind` named `name`.
    pub(crate) fn referrers(&self, kind: &'static str, name: &str) -> Vec<ObjectRef<K>> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = Reference::new(kind, name);
        inner.referrers.get(&key).map(|set| set.iter().map(|n| ObjectRef::new(n)).collect()).unwrap_or_default()
    }

    #[cfg(test)]
    fn len(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap();
        (inner.referrers.len(), inner.references.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tilt_apis::{Cmd, CmdSpec, RestartOnSpec};

    fn cmd(name: &str, watches: &[&str]) -> Cmd {
        let restart_on =
            RestartOnSpec { file_watches: watches.iter().map(|s| s.to_string()).collect(), ..Default::default() };
        Cmd::new(name, CmdSpec { restart_on: Some(restart_on), ..Default::default() })
    }

    fn refs(c: &Cmd) -> Vec<Reference> {
        c.spec.restart_on.iter().flat_map(|r| r.file_watches.iter().map(|n| Reference::new("FileWatch", n))).collect()
    }

    fn names(v: Vec<ObjectRef<Cmd>>) -> Vec<String> {
        let mut v: Vec<String> = v.into_iter().map(|r| r.name).collect();
        v.sort();
        v
    }

    #[test]
    fn referrers_follow_updates_and_deletes() {
        let interest = Arc::new(Interest::default());
        let index = ReferenceIndex::new(refs, interest.clone());
        index.update("a", Some(&cmd("a", &["src", "lib"])));
        index.update("b", Some(&cmd("b", &["src"])));
        assert_eq!(names(index.referrers("FileWatch", "src")), ["a", "b"]);
        assert!(interest.contains("FileWatch", "lib") && !interest.contains("FileWatch", "docs"));
        assert_eq!(names(index.referrers("FileWatch", "lib")), ["a"]);
        assert!(index.referrers("UIButton", "src").is_empty(), "kinds are kept apart");

        index.update("a", Some(&cmd("a", &["docs"])));
        assert_eq!(names(index.referrers("FileWatch", "src")), ["b"]);
        assert!(index.referrers("FileWatch", "lib").is_empty());
        assert_eq!(names(index.referrers("FileWatch", "docs")), ["a"]);

        index.update("a", None);
        index.update("b", Some(&cmd("b", &[])));
        assert!(index.referrers("FileWatch", "docs").is_empty());
        assert_eq!(index.len(), (0, 0), "nothing stays behind for objects that refer to nothing");
        assert!(!interest.contains("FileWatch", "src"), "interest ends with the last reference");
    }
}
