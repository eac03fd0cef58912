//! The connection to the user's Kubernetes cluster (not tilt's own API), shared by the Kubernetes
//! controllers and made on first use, so a Tiltfile with only local resources never reads a kubeconfig.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::OnceCell;

/// Where the cluster is: the user's kubeconfig and its current context unless told otherwise.
#[derive(Debug, Clone, Default)]
pub struct ClusterConfig {
    /// A kubeconfig file; `$KUBECONFIG` or `~/.kube/config` when unset.
    pub kubeconfig: Option<PathBuf>,
    /// A context in it; its current context when unset.
    pub context: Option<String>,
}

/// A lazily made client for the cluster; the outcome of the first attempt (client or error) is kept.
pub struct ClusterConnection {
    config: ClusterConfig,
    client: OnceCell<Result<kube::Client, String>>,
}

impl ClusterConnection {
    /// A connection described by `config`, made on first use.
    pub fn new(config: ClusterConfig) -> Self {
        ClusterConnection { config, client: OnceCell::new() }
    }

    /// A connection through an existing client (tests).
    pub fn with_client(client: kube::Client) -> Self {
        ClusterConnection { config: ClusterConfig::default(), client: OnceCell::new_with(Some(Ok(client))) }
    }

    /// The client, or why there is none (a one-line message for status fields).
    pub async fn client(&self) -> Result<kube::Client, String> {
        self.client.get_or_init(|| self.connect()).await.clone()
    }

    async fn connect(&self) -> Result<kube::Client, String> {
        let kubeconfig = match &self.config.kubeconfig {
            Some(path) => Kubeconfig::read_from(path),
            None => Kubeconfig::read(),
        }
        .map_err(|e| format!("no Kubernetes cluster: reading the kubeconfig: {e}"))?;
        let options = KubeConfigOptions { context: self.config.context.clone(), ..KubeConfigOptions::default() };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| format!("no Kubernetes cluster: {e}"))?;
        kube::Client::try_from(config).map_err(|e| format!("connecting to the Kubernetes cluster: {e}"))
    }
}
