//! Reconcile controllers for tilt.dev objects.
//!
//! Each kind has its own module holding its reconciler, the helpers only it uses, and its tests. A
//! controller is a kube-runtime `Controller` that watches its objects through a `kube::Client` pointed at
//! the embedded API server, does the work, and writes `status` back. Controllers share nothing but the
//! API: one reacts to another's status changes by watching that object, never by calling it.

pub mod cluster;
pub mod cmd;
pub mod cmdimage;
pub mod dockerimage;
pub mod filewatch;
mod image;
pub mod kubernetesapply;
pub mod kubernetesdiscovery;
pub mod logs;
pub mod podlogstream;
pub mod portforward;
pub mod process;
mod references;
pub mod runtime;
pub mod session;
mod status;
pub mod tiltfile;
pub mod togglebutton;
pub mod uiresource;

use std::sync::Arc;

use kube::Client;
use tokio_util::sync::CancellationToken;

/// What the controllers of one `tilt up` share besides the API: the log store, the orphan reaper and
/// their settings.
pub struct Services {
    /// Every resource's log.
    pub logs: Arc<logs::LogStore>,
    /// Kills process groups if tilt dies.
    pub reaper: Arc<process::reaper::Reaper>,
    /// How Cmd processes are run.
    pub cmd: cmd::CmdConfig,
    /// How FileWatches debounce.
    pub filewatch: filewatch::FileWatchConfig,
    /// Evaluates Tiltfiles.
    pub loader: Arc<dyn tiltfile::Loader>,
    /// The user's Kubernetes cluster.
    pub cluster: Arc<cluster::ClusterConnection>,
    /// The Docker engine that builds images.
    pub docker: dockerimage::DockerConfig,
}

/// Runs every controller until `shutdown` is cancelled; returns once their processes are stopped. All of
/// them read objects through one set of shared informers (one watch per kind).
pub async fn run(client: Client, shutdown: CancellationToken, services: Services) {
    let informers = runtime::Informers::new(client.clone(), shutdown.clone());
    let i = &informers;
    tokio::join!(
        tiltfile::run(i.clone(), shutdown.clone(), services.loader.clone(), services.logs.clone()),
        filewatch::run(client.clone(), shutdown.clone(), services.filewatch.clone()),
        uiresource::run(i.clone(), shutdown.clone()),
        session::run(i.clone(), shutdown.clone()),
        togglebutton::run(i.clone(), shutdown.clone()),
        cmd::run(i.clone(), shutdown.clone(), services.logs.clone(), services.reaper.clone(), services.cmd.clone()),
        dockerimage::run(i.clone(), shutdown.clone(), services.logs.clone(), services.docker.clone()),
        cmdimage::run(
            i.clone(),
            shutdown.clone(),
            services.logs.clone(),
            services.reaper.clone(),
            cmdimage::CmdImageConfig { docker: services.docker.clone(), default_dir: services.cmd.default_dir.clone() },
        ),
        kubernetesapply::run(i.clone(), shutdown.clone(), services.cluster.clone(), services.logs.clone()),
        kubernetesdiscovery::run(i.clone(), shutdown.clone(), services.cluster.clone()),
        podlogstream::run(i.clone(), shutdown.clone(), services.cluster.clone(), services.logs.clone()),
        portforward::run(i.clone(), shutdown.clone(), services.cluster.clone()),
    );
}

/// A `MicroTime` for now.
pub(crate) fn now_micro() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime {
    micro(jiff::Timestamp::now())
}

/// `t` as a `MicroTime`.
pub(crate) fn micro(t: jiff::Timestamp) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(t)
}
