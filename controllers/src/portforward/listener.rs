//! One forward's listener: binds `host:localPort` (retrying while the port is taken), accepts connections,
//! and carries each one to the pod it targets when accepted, reporting failures in the forward's status.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{DIAL_TIMEOUT, StatusCell, Target};
use crate::status::{is_not_found, message};

/// First and longest wait before trying again to bind a port that could not be bound.
const BIND_BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(5));

/// How long a finished connection waits for an error message the kubelet may still be sending.
const LATE_ERROR_WAIT: Duration = Duration::from_millis(500);

/// How long a finished connection waits for its websocket to close.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// The listener task of one forward.
pub(super) struct Run {
    pub(super) id: u64,
    pub(super) host: String,
    pub(super) local_port: u16,
    pub(super) target: watch::Receiver<Target>,
    pub(super) cluster: Client,
    pub(super) status: Arc<StatusCell>,
    pub(super) stop: CancellationToken,
}

impl Run {
    /// Binds, then accepts until stopped; connections still open when it is stopped are closed.
    pub(super) async fn run(self) {
        let mut delay = BIND_BACKOFF.0;
        let listeners = loop {
            match bind(&self.host, self.local_port).await {
                Ok(listeners) => break listeners,
                Err(why) => {
                    tracing::debug!(host = %self.host, port = self.local_port, %why, "port-forward cannot listen");
                    self.status
                        .forward(self.id, |s| {
                            s.error = why;
                            s.addresses.clear();
                            s.started_at = None;
                        })
                        .await;
                }
            }
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(BIND_BACKOFF.1);
        };
        let port = listeners.first().and_then(|l| l.local_addr().ok()).map_or(self.local_port, |a| a.port());
        let addresses: Vec<String> =
            listeners.iter().filter_map(|l| l.local_addr().ok()).map(|a| a.ip().to_string()).collect();
        self.status
            .forward(self.id, |s| {
                s.local_port = i32::from(port);
                s.addresses = addresses;
                s.started_at = Some(crate::now_micro());
                s.error.clear();
            })
            .await;
        let mut accepts = futures::stream::select_all(listeners.into_iter().map(accepts));
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                accepted = accepts.next() => match accepted {
                    Some(Ok((tcp, local))) => {
                        let connection = Connection {
                            id: self.id,
                            local,
                            target: self.target.borrow().clone(),
                            cluster: self.cluster.clone(),
                            status: self.status.clone(),
                        };
                        connections.spawn(connection.run(tcp));
                    }
                    Some(Err(err)) => {
                        // Out of file descriptors and the like: pause instead of spinning.
                        tracing::warn!(host = %self.host, port, %err, "port-forward accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    None => break,
                },
            }
        }
        connections.shutdown().await;
    }
}

/// The accepted connections of one listener, with the local address each arrived on.
fn accepts(listener: TcpListener) -> BoxStream<'static, std::io::Result<(TcpStream, SocketAddr)>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.and_then(|(tcp, _)| {
            let local = tcp.local_addr()?;
            Ok((tcp, local))
        });
        Some((accepted, listener))
    })
    .boxed()
}

/// Binds `port` (0: a free one, the same on every address) on every address `host` resolves to; fails only
/// if none can be bound, as kubectl does.
async fn bind(host: &str, port: u16) -> Result<Vec<TcpListener>, String> {
    let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot listen on {host}:{port}: cannot resolve {host:?}: {e}"))?
        .collect();
    addrs.dedup();
    let mut port = port;
    let mut bound = Vec::new();
    let mut first_error = None;
    for addr in addrs {
        let addr = SocketAddr::new(addr.ip(), port);
        match TcpListener::bind(addr).await {
            Ok(listener) => {
                if port == 0 {
                    port = listener.local_addr().map_or(0, |a| a.port());
                }
                bound.push(listener);
            }
            Err(err) => {
                first_error.get_or_insert_with(|| match err.kind() {
                    std::io::ErrorKind::AddrInUse => format!("cannot listen on {addr}: address already in use"),
                    _ => format!("cannot listen on {addr}: {err}"),
                });
            }
        }
    }
    if bound.is_empty() {
        return Err(first_error.unwrap_or_else(|| format!("cannot listen on {host}:{port}: {host:?} has no address")));
    }
    Ok(bound)
}

/// One accepted connection and the pod it goes to.
struct Connection {
    id: u64,
    local: SocketAddr,
    target: Target,
    cluster: Client,
    status: Arc<StatusCell>,
}

impl Connection {
    async fn run(self, tcp: TcpStream) {
        let Target { pod, namespace, container_port: port } = &self.target;
        let what = format!("forwarding {} to pod {namespace}/{pod} port {port}", self.local);
        let pods: Api<Pod> = Api::namespaced(self.cluster.clone(), namespace);
        let mut forwarder = match tokio::time::timeout(DIAL_TIMEOUT, pods.portforward(pod, &[*port])).await {
            Err(_) => return self.fail(format!("{what}: no answer within {}s", DIAL_TIMEOUT.as_secs())).await,
            Ok(Err(err)) if is_not_found(&err) => {
                return self.fail(format!("{what}: pod not found ({})", message(&err))).await;
            }
            Ok(Err(err)) => return self.fail(format!("{what}: {}", message(&err))).await,
            Ok(Ok(forwarder)) => forwarder,
        };
        let (Some(upstream), Some(errors)) = (forwarder.take_stream(*port), forwarder.take_error(*port)) else {
            forwarder.abort();
            return self.fail(format!("{what}: the port-forward stream has no channel for the port")).await;
        };
        let status = self.status.clone();
        let id = self.id;
        let pumped = pump(tcp, upstream, errors, || async move { status.forward(id, |s| s.error.clear()).await }).await;
        let mut error = pumped.error;
        // The websocket closes once both directions are done; its outcome tells a broken connection apart.
        match tokio::time::timeout(CLOSE_WAIT, forwarder.join()).await {
            Ok(Err(err)) if error.is_none() && !pumped.client_closed_first && is_breakage(&err) => {
                error = Some(format!("the connection broke: {err}"));
            }
            Ok(_) => {}
            Err(_) => tracing::debug!(%what, "port-forward websocket did not close in time"),
        }
        if let Some(error) = error {
            self.fail(format!("{what}: {error}")).await;
        }
    }

    async fn fail(&self, error: String) {
        tracing::debug!(%error, "port-forward connection failed");
        self.status.forward(self.id, |s| s.error = error).await;
    }
}

/// Whether a port-forward stream error means the connection to the pod broke, rather than our own close
/// racing the server's. kube-client does not export the error type, so its messages are matched.
fn is_breakage(err: &impl std::fmt::Display) -> bool {
    let text = err.to_string();
    !["failed to send a WebSocket message", "failed to shutdown", "failed to complete the background task"]
        .iter()
        .any(|p| text.starts_with(p))
}

/// How a connection's copying ended.
struct Pumped {
    /// The message the kubelet sent on the error channel, if any.
    error: Option<String>,
    /// Whether the client closed its side before the pod did.
    client_closed_first: bool,
}

/// Copies between the client and the pod until the pod's side ends, the client's side fails, or the kubelet
/// reports an error; `on_first_byte` runs when the pod first sends something (the connection works).
async fn pump<F: Future<Output = ()>>(
    tcp: TcpStream,
    upstream: DuplexStream,
    errors: impl Future<Output = Option<String>>,
    on_first_byte: impl FnOnce() -> F,
) -> Pumped {
    let (mut client_read, mut client_write) = tcp.into_split();
    let (mut pod_read, mut pod_write) = tokio::io::split(upstream);
    let (first_tx, first_rx) = oneshot::channel::<()>();
    let mut up = Box::pin(async move {
        let copied = tokio::io::copy(&mut client_read, &mut pod_write).await;
        let _ = pod_write.shutdown().await;
        copied
    });
    let mut down = Box::pin(async move {
        let mut first = Some(first_tx);
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = pod_read.read(&mut buf).await?;
            if n == 0 {
                let _ = client_write.shutdown().await;
                return Ok::<(), std::io::Error>(());
            }
            if let Some(tx) = first.take() {
                let _ = tx.send(());
            }
            client_write.write_all(&buf[..n]).await?;
        }
    });
    let mut errors = Box::pin(errors);
    let mut first_rx = Some(first_rx);
    let mut on_first_byte = Some(on_first_byte);
    let (mut up_done, mut errors_done) = (false, false);
    let mut pumped = Pumped { error: None, client_closed_first: false };
    loop {
        tokio::select! {
            _ = &mut down => break,
            copied = &mut up, if !up_done => {
                up_done = true;
                pumped.client_closed_first = true;
                if copied.is_err() {
                    break;
                }
            }
            error = &mut errors, if !errors_done => {
                errors_done = true;
                if error.is_some() {
                    pumped.error = error;
                    break;
                }
            }
            got = async { first_rx.as_mut().expect("guarded").await }, if first_rx.is_some() => {
                first_rx = None;
                if got.is_ok() && let Some(f) = on_first_byte.take() {
                    f().await;
                }
            }
        }
    }
    // Dropping both directions closes the stream, which lets the websocket finish.
    drop(up);
    drop(down);
    if pumped.error.is_none() && !errors_done {
        pumped.error = tokio::time::timeout(LATE_ERROR_WAIT, errors).await.ok().flatten();
    }
    // The pod's first bytes may have come with its end, before the loop saw them.
    if pumped.error.is_none()
        && first_rx.is_some_and(|mut rx| rx.try_recv().is_ok())
        && let Some(f) = on_first_byte.take()
    {
        f().await;
    }
    pumped
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_busy_port_is_reported() {
        let busy = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = busy.local_addr().unwrap().port();
        let err = bind("127.0.0.1", port).await.unwrap_err();
        assert_eq!(err, format!("cannot listen on 127.0.0.1:{port}: address already in use"));
        drop(busy);
        assert_eq!(bind("127.0.0.1", port).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn port_zero_picks_one_port_for_every_address() {
        let listeners = bind("localhost", 0).await.unwrap();
        let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        assert!(addrs.iter().any(|a| a.ip().is_loopback()));
        assert!(addrs.iter().all(|a| a.port() == addrs[0].port() && a.port() != 0), "{addrs:?}");
    }

    /// A connected (client, accepted) TCP pair on loopback.
    async fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        (client, accepted)
    }

    #[tokio::test]
    async fn bytes_flow_both_ways_and_the_first_reply_counts_as_success() {
        let (mut client, accepted) = tcp_pair().await;
        let (upstream, mut pod) = tokio::io::duplex(1024);
        let worked = Arc::new(AtomicBool::new(false));
        let flag = worked.clone();
        let pumping = tokio::spawn(pump(accepted, upstream, std::future::pending(), move || async move {
            flag.store(true, Ordering::SeqCst);
        }));
        client.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        pod.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        pod.write_all(b"pong").await.unwrap();
        drop(pod);
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"pong");
        let pumped = pumping.await.unwrap();
        assert!(pumped.error.is_none());
        assert!(!pumped.client_closed_first);
        assert!(worked.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_kubelet_error_ends_the_connection_and_is_returned() {
        let (mut client, accepted) = tcp_pair().await;
        let (upstream, _pod) = tokio::io::duplex(1024);
        let (tx, rx) = oneshot::channel::<String>();
        let errors = async move { rx.await.ok() };
        let pumping = tokio::spawn(pump(accepted, upstream, errors, || async { panic!("nothing came from the pod") }));
        tx.send("dial tcp 127.0.0.1:80: connect: connection refused".into()).unwrap();
        let pumped = pumping.await.unwrap();
        assert_eq!(pumped.error.as_deref(), Some("dial tcp 127.0.0.1:80: connect: connection refused"));
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }

    #[test]
    fn our_own_close_is_not_a_breakage() {
        assert!(!is_breakage(&"failed to send a WebSocket message: Trying to work with closed connection"));
        assert!(is_breakage(&"failed to receive a WebSocket message: Connection reset without closing handshake"));
    }
}
