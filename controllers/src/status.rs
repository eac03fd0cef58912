//! Writing the `status` of tilt's objects, and reading errors of the API: what every controller does the same.
//!
//! A controller owns its objects' status whole, so it writes it with a forced server-side apply through
//! `/status` ([`apply_status`]); fields it leaves out are removed. Work that reports while it runs (a
//! build, a log stream, a listener) keeps the status in a [`StatusCell`], which serializes the writes of
//! one object so they land in the order they were made, and skips writes that change nothing.

use kube::api::{Api, Patch, PatchParams};
use kube::core::object::HasStatus;
use kube::{Client, Resource};
use serde::Serialize;
use serde_json::json;

/// Whether the API answered 404 (the object, or the kind, does not exist).
pub(crate) fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(s) if s.code == 404)
}

/// A one-line message for an API error: the server's own message when it sent one, without kube's wrapping.
pub(crate) fn message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(s) if !s.message.is_empty() => s.message.clone(),
        other => other.to_string(),
    }
}

/// Writes `status` as the whole status of object `name` that `manager` owns; an object already deleted is
/// not an error (its deletion stops whatever reports on it).
pub(crate) async fn apply_status<K>(
    api: &Api<K>,
    name: &str,
    manager: &str,
    status: &impl Serialize,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()), "status": status});
    match api
        .patch_status(&tilt_apis::path_name(name), &PatchParams::apply(manager).force(), &Patch::Apply(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err),
    }
}

/// The status of one object as the work running for it knows it.
pub(crate) struct StatusCell<K: HasStatus> {
    api: Api<K>,
    name: String,
    manager: &'static str,
    status: tokio::sync::Mutex<Written<K::Status>>,
}

struct Written<S> {
    status: S,
    /// What the API last accepted; `None` before the first write and after a failed one.
    written: Option<S>,
}

impl<K> StatusCell<K>
where
    K: HasStatus + Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K::Status: Serialize + Clone + PartialEq + Default + Send,
{
    /// The status of object `name`, empty until the first change, written by `manager`.
    pub(crate) fn new(client: Client, name: &str, manager: &'static str) -> Self {
        StatusCell {
            api: Api::all(client),
            name: name.to_string(),
            manager,
            status: tokio::sync::Mutex::new(Written { status: K::Status::default(), written: None }),
        }
    }

    /// The status as last changed.
    pub(crate) async fn get(&self) -> K::Status {
        self.status.lock().await.status.clone()
    }

    /// Applies `change` and writes the status if it differs from what was last written. A failed write is
    /// retried with backoff until it lands (later changes wait behind it, so writes stay in order), unless the
    /// API refuses it for good (a 4xx other than a conflict or throttling), which is logged.
    pub(crate) async fn update<R>(&self, change: impl FnOnce(&mut K::Status) -> R) -> R {
        let mut cell = self.status.lock().await;
        let out = change(&mut cell.status);
        if cell.written.as_ref() == Some(&cell.status) {
            return out;
        }
        let mut failures = 0;
        loop {
            match apply_status(&self.api, &self.name, self.manager, &cell.status).await {
                Ok(()) => {
                    cell.written = Some(cell.status.clone());
                    break;
                }
                Err(err) => {
                    cell.written = None;
                    failures += 1;
                    let lasting = matches!(&err, kube::Error::Api(s) if s.code < 500 && s.code != 409 && s.code != 429);
                    if lasting {
                        tracing::warn!(kind = %K::kind(&()), name = %self.name, %err, "the API refused a status write");
                        break;
                    }
                    if failures == 1 {
                        tracing::warn!(kind = %K::kind(&()), name = %self.name, %err, "writing status; retrying");
                    }
                    tokio::time::sleep(crate::runtime::controller::backoff(failures)).await;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_prefer_the_servers_words() {
        let api = |code: u16, message: &str| {
            kube::Error::Api(kube::core::Status::failure(message, "NotFound").with_code(code).boxed())
        };
        assert!(is_not_found(&api(404, "pods \"p\" not found")));
        assert!(!is_not_found(&api(409, "conflict")));
        assert_eq!(message(&api(404, "pods \"p\" not found")), "pods \"p\" not found");
        assert!(!message(&api(500, "")).is_empty(), "an empty message falls back to the error's text");
    }
}
