//! The table of what a controller runs for each of its objects (a log stream, a set of listeners), kept in
//! step with the objects: started by reconciles, stopped when the object is deleted or tilt shuts down.
//!
//! kube-runtime never reconciles a deleted object, so the table watches the objects itself: its stream
//! feeds the `Controller` and stops an object's task when the watch sees the object go (a delete event, or
//! a re-list without it). Each name has a slot, locked while a reconcile or a stop works on it; a reconcile
//! checks under that lock that its object still exists ([`TaskTable::lock_live`]), so a delete seen after
//! the check finds (and stops) what the reconcile started. Slots of deleted objects are dropped, so the
//! table holds only live names however many objects come and go.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::{Stream, TryStreamExt};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::OwnedMutexGuard;

/// What runs for one object.
pub(crate) trait Task: Sized + Send + 'static {
    /// The UID of the object it runs for.
    fn uid(&self) -> Option<&str>;
    /// Stops it, returning once it has stopped.
    fn stop(self) -> impl Future<Output = ()> + Send;
    /// Stops it because its object is gone, undoing what it made for the object; by default, [`Task::stop`].
    fn delete(self) -> impl Future<Output = ()> + Send {
        self.stop()
    }
}

type Slot<T> = Arc<tokio::sync::Mutex<Option<T>>>;

/// The task of each object of kind `K`, by name.
pub(crate) struct TaskTable<K: Resource<DynamicType = ()> + 'static, T> {
    store: Store<K>,
    slots: Mutex<HashMap<String, Slot<T>>>,
}

impl<K, T> TaskTable<K, T>
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    T: Task,
{
    /// A table for every `K`, and the stream of applied objects that feeds the controller; deletes seen on
    /// it stop tasks. Use [`TaskTable::store`] as the controller's store.
    pub(crate) fn watch(client: &Client) -> (Arc<Self>, impl Stream<Item = Result<K, watcher::Error>> + Send + 'static) {
        let (store, writer) = reflector::store();
        let table = Arc::new(TaskTable { store, slots: Mutex::default() });
        let observer = table.clone();
        let objects = watcher(Api::<K>::all(client.clone()), watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .inspect_ok(move |event| observer.observe(event))
            .applied_objects();
        (table, objects)
    }

    /// The objects as the table's watch last saw them.
    pub(crate) fn store(&self) -> Store<K> {
        self.store.clone()
    }

    fn slot(&self, name: &str) -> Slot<T> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner()).entry(name.to_string()).or_default().clone()
    }

    /// Drops the slot of `name` if it is empty and nobody else holds it (a new holder needs the map lock).
    fn release(&self, name: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if slots.get(name).is_some_and(|s| Arc::strong_count(s) == 1 && s.try_lock().is_ok_and(|t| t.is_none())) {
            slots.remove(name);
        }
    }

    fn is_live(&self, name: &str, uid: Option<&str>) -> bool {
        self.store
            .get(&ObjectRef::new(name))
            .is_some_and(|o| o.meta().uid.as_deref() == uid && o.meta().deletion_timestamp.is_none())
    }

    /// The slot of the object `name` with `uid`, locked; `None` if that object is gone or being deleted, after
    /// stopping what ran for it.
    pub(crate) async fn lock_live(&self, name: &str, uid: Option<&str>) -> Option<OwnedMutexGuard<Option<T>>> {
        let mut slot = self.slot(name).lock_owned().await;
        if self.is_live(name, uid) {
            return Some(slot);
        }
        if let Some(task) = slot.take_if(|t| t.uid() == uid) {
            task.delete().await;
        }
        drop(slot);
        self.release(name);
        None
    }

    /// Stops the task of `name` if it runs for the object with `uid` (any object when `None`); `deleted`
    /// when the object is gone.
    async fn end(&self, name: &str, uid: Option<&str>, deleted: bool) {
        let slot = self.slot(name);
        let mut task = slot.lock().await;
        if let Some(t) = task.take_if(|t| uid.is_none_or(|u| t.uid() == Some(u))) {
            if deleted { t.delete().await } else { t.stop().await }
        }
        drop(task);
        drop(slot);
        self.release(name);
    }

    /// Stops every task (tilt is shutting down).
    pub(crate) async fn stop_all(&self) {
        let names: Vec<String> = self.slots.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        futures::future::join_all(names.iter().map(|n| self.end(n, None, false))).await;
    }

    /// Reacts to deletes on the watch stream, which reconciles never see.
    fn observe(self: &Arc<Self>, event: &watcher::Event<K>) {
        let gone: Vec<(String, Option<String>)> = match event {
            watcher::Event::Delete(o) => vec![(o.name_any(), o.meta().uid.clone())],
            // A re-list replaces the store without a delete event for what vanished meanwhile.
            watcher::Event::InitDone => {
                let names: Vec<String> = self.slots.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
                names.into_iter().filter(|n| self.store.get(&ObjectRef::new(n)).is_none()).map(|n| (n, None)).collect()
            }
            _ => return,
        };
        for (name, uid) in gone {
            let table = self.clone();
            tokio::spawn(async move {
                match uid {
                    Some(uid) => table.end(&name, Some(&uid), true).await,
                    None if table.store.get(&ObjectRef::new(&name)).is_none() => table.end(&name, None, true).await,
                    None => {}
                }
            });
        }
    }

    #[cfg(test)]
    fn slot_count(&self) -> usize {
        self.slots.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tilt_apis::{PodLogStream, PodLogStreamSpec};

    struct Counted(Option<String>, Arc<AtomicUsize>);

    impl Task for Counted {
        fn uid(&self) -> Option<&str> {
            self.0.as_deref()
        }
        async fn stop(self) {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn object(name: &str, uid: &str) -> PodLogStream {
        let mut o = PodLogStream::new(name, PodLogStreamSpec::default());
        o.metadata.uid = Some(uid.into());
        o
    }

    #[tokio::test]
    async fn slots_of_deleted_objects_are_dropped_and_their_tasks_stopped() {
        let (reader, mut writer) = reflector::store::<PodLogStream>();
        let table: TaskTable<PodLogStream, Counted> = TaskTable { store: reader, slots: Mutex::default() };
        let stopped = Arc::new(AtomicUsize::new(0));
        for i in 0..100 {
            let (name, uid) = (format!("pod-{i}"), format!("u{i}"));
            writer.apply_watcher_event(&watcher::Event::Apply(object(&name, &uid)));
            let mut slot = table.lock_live(&name, Some(&uid)).await.expect("live");
            *slot = Some(Counted(Some(uid.clone()), stopped.clone()));
            drop(slot);
            writer.apply_watcher_event(&watcher::Event::Delete(object(&name, &uid)));
            // A stop for another object of the same name leaves the task alone.
            table.end(&name, Some("someone-else"), true).await;
            assert_eq!(table.slot_count(), 1);
            table.end(&name, Some(&uid), true).await;
        }
        assert_eq!(stopped.load(Ordering::SeqCst), 100);
        assert_eq!(table.slot_count(), 0, "a long session must not keep a slot per pod it ever saw");

        // A reconcile for an object already deleted stops what ran for it and leaves nothing behind.
        writer.apply_watcher_event(&watcher::Event::Apply(object("late", "u-late")));
        *table.lock_live("late", Some("u-late")).await.unwrap() = Some(Counted(Some("u-late".into()), stopped.clone()));
        writer.apply_watcher_event(&watcher::Event::Delete(object("late", "u-late")));
        assert!(table.lock_live("late", Some("u-late")).await.is_none());
        assert_eq!(stopped.load(Ordering::SeqCst), 101);
        assert_eq!(table.slot_count(), 0);
    }
}
