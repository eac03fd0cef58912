//! An embedded API server that speaks the Kubernetes REST protocol for the `tilt.dev/v1alpha1` kinds, and
//! for built-in Kubernetes kinds (core/v1, apps/v1, namespaced or not; see [`ResourceKind::native`]) when a
//! test fixture cluster registers them.
//!
//! Storage ([`store`]) and HTTP (`http`) are separate: the store keeps each kind's objects as serialized
//! JSON with one global resourceVersion clock and a bounded watch history, and knows nothing of HTTP; the
//! HTTP layer parses requests, validates bodies against each kind's Rust type ([`kind`]), applies patches and
//! server-side apply ([`fields`]), and turns every refusal into a Kubernetes `Status` ([`error`]).
//! Discovery and OpenAPI documents are generated from the kinds' CRDs, never written by hand.
//!
//! Deletion follows kube-apiserver ([`deletion`]: finalizers, `propagationPolicy`), and a garbage collector
//! inside the server (`gc`, fed by the store's change feed) deletes objects whose owners are gone and carries
//! out foreground and orphan deletion, as kube-controller-manager's does.
//!
//! The server listens on loopback over TLS (a fresh rcgen CA and certificate per start) and requires a
//! bearer token; [`ApiServer::kubeconfig`] describes how to reach it.

pub mod deletion;
pub mod error;
pub mod fields;
mod gc;
pub mod http;
pub mod kind;
pub mod selector;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use crate::http::{
    Body, Endpoint, EndpointFuture, Subresource, bytes_response, error_response, json_response, subresource_object,
};
pub use crate::kind::{Registry, ResourceKind};

/// How to run the server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free port.
    pub addr: SocketAddr,
    /// The bearer token clients must send; random when `None`.
    pub token: Option<String>,
    /// Events kept per kind for watch replay.
    pub history: usize,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Serve plain HTTP instead of TLS (benchmarks only).
    pub plain_http: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            token: None,
            history: 4096,
            body_limit: 3 * 1024 * 1024,
            plain_http: false,
        }
    }
}

/// A running server.
pub struct ApiServer {
    addr: SocketAddr,
    token: String,
    ca_pem: String,
    plain_http: bool,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    collector: tokio::task::JoinHandle<()>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Binding the listen address failed.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Generating the certificate or TLS configuration failed.
    #[error("setting up TLS: {0}")]
    Tls(String),
}

struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    ca_pem: String,
}

fn tls() -> Result<Tls, StartError> {
    let err = |e: &dyn std::fmt::Display| StartError::Tls(e.to_string());
    let ca_key = rcgen::KeyPair::generate().map_err(|e| err(&e))?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| err(&e))?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "tilt-rs CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(|e| err(&e))?;
    let key = rcgen::KeyPair::generate().map_err(|e| err(&e))?;
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()])
            .map_err(|e| err(&e))?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "tilt-rs apiserver");
    let cert = params.signed_by(&key, &ca).map_err(|e| err(&e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| err(&e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| err(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone(), ca.der().clone()], key_der)
        .map_err(|e| err(&e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Tls { acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca_pem: ca.pem() })
}

fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Stores the registry's seed objects, stamped as a create stamps them.
fn store_seeds(store: &store::Store, registry: &Registry) {
    let now = jiff::Timestamp::now().round(jiff::Unit::Second).unwrap_or_else(|_| jiff::Timestamp::now()).to_string();
    for (kind, object) in registry.seeds() {
        let Some(kind_store) = store.kind(&kind.group, &kind.plural) else { continue };
        let mut object = object.clone();
        object["apiVersion"] = json!(kind.api_version());
        object["kind"] = json!(kind.kind);
        let meta = &mut object["metadata"];
        meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
        meta["creationTimestamp"] = json!(now);
        meta["generation"] = json!(1);
        let namespace = meta["namespace"].as_str().unwrap_or_default().to_string();
        let name = meta["name"].as_str().unwrap_or_default().to_string();
        if let Err(err) = kind_store.put(&namespace, &name, store::Precondition::Absent, object) {
            tracing::warn!(?err, kind = %kind.kind, %name, "a seed object was not stored");
        }
    }
}

impl ApiServer {
    /// Binds and starts serving `registry`'s kinds in the background.
    pub async fn start(registry: Registry, config: Config) -> Result<ApiServer, StartError> {
        Self::start_with(registry, config, Vec::new()).await
    }

    /// Like [`ApiServer::start`], also serving each `(path prefix, endpoint)` (e.g. `/tilt/v1/logs`).
    pub async fn start_with(
        registry: Registry,
        config: Config,
        endpoints: Vec<(String, Endpoint)>,
    ) -> Result<ApiServer, StartError> {
        Self::start_with_subresources(registry, config, endpoints, Vec::new()).await
    }

    /// Like [`ApiServer::start_with`], also serving each [`Subresource`] (e.g. `pods/log`) of its kind.
    pub async fn start_with_subresources(
        registry: Registry,
        config: Config,
        endpoints: Vec<(String, Endpoint)>,
        subresources: Vec<Subresource>,
    ) -> Result<ApiServer, StartError> {
        let listener =
            TcpListener::bind(config.addr).await.map_err(|source| StartError::Bind { addr: config.addr, source })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind { addr: config.addr, source })?;
        let (acceptor, ca_pem) = if config.plain_http {
            (None, String::new())
        } else {
            let tls = tls()?;
            (Some(tls.acceptor), tls.ca_pem)
        };
        let token = config.token.clone().unwrap_or_else(random_token);
        let store = Arc::new(store::Store::new(&registry, config.history));
        store_seeds(&store, &registry);
        let changes = store.changes().expect("a new store's change feed is free");
        let shutdown = CancellationToken::new();
        let collector =
            tokio::spawn(gc::Collector::new(store.clone(), registry.clone()).run(changes, shutdown.clone()));
        let state = Arc::new(http::State {
            store,
            openapi: Default::default(),
            registry,
            token: token.clone(),
            body_limit: config.body_limit,
            endpoints,
            subresources,
        });
        let task = tokio::spawn(http::serve(state, listener, acceptor, shutdown.clone()));
        Ok(ApiServer { addr, token, ca_pem, plain_http: config.plain_http, shutdown, task, collector })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.plain_http { "http" } else { "https" }, self.addr)
    }

    /// The bearer token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The PEM of the CA that signed the server certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A kubeconfig (as a JSON value, a subset of YAML) whose cluster, user and context are all named
    /// `name`, with that context current.
    pub fn kubeconfig(&self, name: &str) -> Value {
        let mut cluster = json!({"server": self.url()});
        if !self.ca_pem.is_empty() {
            cluster["certificate-authority-data"] =
                json!(base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes()));
        }
        json!({
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": name,
            "preferences": {},
            "clusters": [{"name": name, "cluster": cluster}],
            "users": [{"name": name, "user": {"token": self.token}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        })
    }

    /// Stops accepting, ends every connection and watch and the garbage collector, and waits for them.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
        let _ = self.collector.await;
    }
}
