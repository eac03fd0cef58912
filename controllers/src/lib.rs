//! Reconcile controllers for tilt.dev objects.
//!
//! Each kind has its own module holding its reconciler, the helpers only it uses, and its tests. A
//! controller is a kube-runtime `Controller` that watches its objects through a `kube::Client` pointed at
//! the embedded API server, does the work, and writes `status` back. Controllers share nothing but the
//! API: one reacts to another's status changes by watching that object, never by calling it.

pub mod tiltfile;

use kube::Client;
use tokio_util::sync::CancellationToken;

/// Runs every controller until `shutdown` is cancelled.
pub async fn run(client: Client, shutdown: CancellationToken) {
    tokio::join!(tiltfile::run(client.clone(), shutdown.clone()));
}

/// A `MicroTime` for now.
pub(crate) fn now_micro() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(jiff::Timestamp::now())
}
