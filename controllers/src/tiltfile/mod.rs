//! The Tiltfile controller: loads the Tiltfile named by each `Tiltfile` object and reports the outcome in
//! its status. Until Starlark evaluation lands, a Tiltfile that exists is reported as not loadable (with
//! the reason), and a missing one as missing; either way the server and other objects keep running.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;
use tilt_apis::{Tiltfile, TiltfileStateTerminated, TiltfileStatus};
use tokio_util::sync::CancellationToken;

/// The field manager of this controller's status writes.
pub const MANAGER: &str = "tilt-tiltfile-controller";

/// Errors of one reconcile; retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API refused a write.
    #[error("writing Tiltfile status: {0}")]
    Api(#[from] kube::Error),
}

/// What a reconcile needs.
pub struct Ctx {
    /// The API client.
    pub client: Client,
}

/// Why the Tiltfile at `path` cannot be loaded.
pub fn load_error(path: &str) -> String {
    if path.is_empty() {
        "Tiltfile object has no spec.path".to_string()
    } else if !Path::new(path).is_file() {
        format!("No Tiltfile found at path {path:?}. Check out https://docs.tilt.dev/tutorial.html")
    } else {
        format!("Tiltfile {path:?} was not loaded: Starlark evaluation is not supported by this tilt-rs build yet")
    }
}

/// Writes the load outcome into status, once per distinct outcome.
pub async fn reconcile(tf: Arc<Tiltfile>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let error = load_error(&tf.spec.path);
    let current = tf.status.as_ref().and_then(|s| s.terminated.as_ref()).map(|t| t.error.as_str());
    if current == Some(error.as_str()) {
        return Ok(Action::await_change());
    }
    let now = crate::now_micro();
    let status = TiltfileStatus {
        terminated: Some(TiltfileStateTerminated {
            error,
            started_at: Some(now.clone()),
            finished_at: Some(now),
            ..Default::default()
        }),
        ..Default::default()
    };
    let api: Api<Tiltfile> = Api::all(ctx.client.clone());
    let patch = json!({"apiVersion": tilt_apis::API_VERSION, "kind": "Tiltfile", "status": status});
    api.patch_status(&tf.name_any(), &PatchParams::apply(MANAGER).force(), &Patch::Apply(&patch)).await?;
    Ok(Action::await_change())
}

fn error_policy(_tf: Arc<Tiltfile>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(%err, "Tiltfile reconcile failed");
    Action::requeue(Duration::from_secs(1))
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(client: Client, shutdown: CancellationToken) {
    let api: Api<Tiltfile> = Api::all(client.clone());
    Controller::new(api, watcher::Config::default())
        .graceful_shutdown_on(async move { shutdown.cancelled().await })
        .run(reconcile, error_policy, Arc::new(Ctx { client }))
        .for_each(|_| async {})
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_errors_say_why() {
        assert!(load_error("/definitely/not/here/Tiltfile").contains("No Tiltfile found"));
        let f = tempfile_path();
        assert!(load_error(&f).contains("not supported"));
        assert!(load_error("").contains("no spec.path"));
    }

    fn tempfile_path() -> String {
        let p = std::env::temp_dir().join(format!("tilt-rs-test-{}-Tiltfile", std::process::id()));
        std::fs::write(&p, "print('hi')\n").unwrap();
        p.to_string_lossy().into_owned()
    }
}
