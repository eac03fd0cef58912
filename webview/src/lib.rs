//! The browser subscriber of tilt: the web UI's listener (`localhost:10350` by default).
//!
//! It is one more client of the API server: [`hub`] keeps the objects the page shows from one watch per
//! kind, [`socket`] streams them (and the log store's lines) to each open page as Go Tilt's `View` JSON
//! ([`view`]), and [`routes`] serves the page, Go Tilt's `/api/*` endpoints and `/proxy/*`, which forwards
//! to the API server so the browser never needs its certificate or token.
//!
//! Security, as in Go Tilt: a `Tilt-Token` cookie set on the page is required by every `/api` and `/proxy`
//! route (or an `X-Tilt-Token` header), a non-empty `Origin` must name the same host as `Host`, and the
//! socket checks the CSRF token the page got from `/api/websocket_token`.

pub mod assets;
pub mod hub;
pub mod routes;
pub mod socket;
pub mod view;

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;
use tilt_controllers::logs::LogStore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What the server shows.
pub enum Source {
    /// A running tilt: objects through `client`, logs from `logs`.
    Live {
        /// The API server's client (also the `/proxy` target).
        client: kube::Client,
        /// The log store.
        logs: Arc<LogStore>,
        /// When this tilt started (the UISession's `tiltStartTime`).
        tilt_start_time: String,
    },
    /// `tilt snapshot view FILE`: a saved snapshot (`{view, createdAt}`), read only.
    Snapshot(Value),
}

/// A running web server.
pub struct WebServer {
    addr: SocketAddr,
    hub: Option<Arc<hub::Hub>>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl WebServer {
    /// Serves `source` on `listener` until [`WebServer::shutdown`].
    pub fn start(listener: TcpListener, source: Source) -> std::io::Result<WebServer> {
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let state = routes::State::new(source, shutdown.clone());
        let hub = state.hub();
        let app = routes::router(state);
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await });
            if let Err(err) = served.await {
                tracing::warn!(%err, "the web server stopped");
            }
        });
        Ok(WebServer { addr, hub, shutdown, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The objects it shows (a live source's), for other views of them such as the terminal's.
    pub fn hub(&self) -> Option<Arc<hub::Hub>> {
        self.hub.clone()
    }

    /// Closes every socket and stops listening.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.task).await;
    }
}
