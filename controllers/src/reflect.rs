//! Reflector stores: a controller's in-memory view of another kind's objects, filled by one watch.
//!
//! A controller that reads objects it does not own (a Cmd's FileWatches, a Session's UIResources) keeps
//! them in a [`Store`] instead of sending a GET or LIST per reconcile, and is triggered by the same watch
//! stream, which updates the store before it yields an object: a reconcile triggered by a change always
//! sees that change. Until a store has listed once ([`Store::wait_until_ready`]), a missing object cannot
//! be told from one not yet seen, so readers wait for it before deciding anything.

use futures::Stream;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};

/// A store of every `K` and the stream of changes that fills it (deletes included), for
/// `Controller::watches_stream`. The store fills only while the stream is polled.
pub(crate) fn reflect<K>(client: &Client) -> (Store<K>, impl Stream<Item = Result<K, watcher::Error>> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    reflect_modified(client, |_: &mut K| {})
}

/// [`reflect`], with `modify` applied to every object before the store keeps it (and before the stream
/// yields it): to drop what the reader never looks at, so that the store does not hold a second full copy
/// of every object the API server already holds.
pub(crate) fn reflect_modified<K>(
    client: &Client,
    modify: impl FnMut(&mut K) + Send + 'static,
) -> (Store<K>, impl Stream<Item = Result<K, watcher::Error>> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = watcher(Api::<K>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .modify(modify)
        .reflect(writer)
        .touched_objects();
    (reader, stream)
}
