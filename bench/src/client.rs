//! The measuring client: HTTP/1.1 over keep-alive connections (one per simulated client), over TLS
//! (rustls with ring, trusting only the server's CA) or plain TCP, plus latency statistics.
//!
//! Every request is timed from just before it is handed to hyper to the moment its whole body has been read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

/// A byte stream a connection can run over: TLS or plain TCP.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// Where and how to connect: address, TLS (or not) and the bearer token to send (if any).
#[derive(Clone)]
pub struct Endpoint {
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsConnector>,
    host: HeaderValue,
    auth: Option<HeaderValue>,
}

impl Endpoint {
    /// HTTPS to `url` (`https://IP:PORT`), trusting only `ca_pem`, sending `token` as a bearer token.
    pub fn https(url: &str, ca_pem: &str, token: Option<&str>) -> Result<Endpoint> {
        let addr = parse_addr(url, "https://")?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(cert.context("parsing the CA PEM")?).context("adding the CA")?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let auth = token.map(|t| HeaderValue::from_str(&format!("Bearer {t}"))).transpose()?;
        Ok(Endpoint {
            addr,
            tls: Some(tokio_rustls::TlsConnector::from(Arc::new(config))),
            host: HeaderValue::from_str(&addr.to_string())?,
            auth,
        })
    }

    /// Plain HTTP to `addr`, without authentication.
    pub fn http(addr: SocketAddr) -> Endpoint {
        Endpoint {
            addr,
            tls: None,
            host: HeaderValue::from_str(&addr.to_string()).expect("a socket address is a valid header"),
            auth: None,
        }
    }

    /// Opens one keep-alive HTTP/1.1 connection.
    pub async fn connect(&self) -> Result<Conn> {
        let tcp = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(self.addr))
            .await
            .context("connect timed out")?
            .with_context(|| format!("connecting to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        let io: Box<dyn Io> = match &self.tls {
            Some(tls) => Box::new(tls.connect(ServerName::IpAddress(self.addr.ip().into()), tcp).await?),
            None => Box::new(tcp),
        };
        let (sender, conn) = http1::handshake(TokioIo::new(io)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender, host: self.host.clone(), auth: self.auth.clone() })
    }
}

fn parse_addr(url: &str, scheme: &str) -> Result<SocketAddr> {
    let rest = url.strip_prefix(scheme).with_context(|| format!("{url:?} does not start with {scheme}"))?;
    rest.trim_end_matches('/').parse().with_context(|| format!("{url:?} is not {scheme}IP:PORT"))
}

/// One request, reusable (the body is reference-counted).
#[derive(Clone, Debug)]
pub struct Req {
    /// The method.
    pub method: Method,
    /// Path and query.
    pub uri: String,
    /// The body (empty for none).
    pub body: Bytes,
    /// `Content-Type`, when there is a body.
    pub content_type: Option<&'static str>,
}

impl Req {
    /// A GET of `uri`.
    pub fn get(uri: impl Into<String>) -> Req {
        Req { method: Method::GET, uri: uri.into(), body: Bytes::new(), content_type: None }
    }

    /// A request with a JSON (or other `content_type`) body.
    pub fn with_body(
        method: Method,
        uri: impl Into<String>,
        content_type: &'static str,
        body: impl Into<Bytes>,
    ) -> Req {
        Req { method, uri: uri.into(), body: body.into(), content_type: Some(content_type) }
    }
}

/// One open connection.
pub struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    host: HeaderValue,
    auth: Option<HeaderValue>,
}

impl Conn {
    fn request(&self, req: &Req) -> Result<Request<Full<Bytes>>> {
        let mut builder = Request::builder().method(req.method.clone()).uri(req.uri.as_str());
        let headers = builder.headers_mut().context("building a request")?;
        headers.insert(header::HOST, self.host.clone());
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(auth) = &self.auth {
            headers.insert(header::AUTHORIZATION, auth.clone());
        }
        if let Some(ct) = req.content_type {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        Ok(builder.body(Full::new(req.body.clone()))?)
    }

    /// Sends `req` and reads the whole response body; a non-2xx status is an error.
    pub async fn send(&mut self, req: &Req) -> Result<Bytes> {
        let request = self.request(req)?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(request).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("{} {} → {status}: {}", req.method, req.uri, String::from_utf8_lossy(&body[..body.len().min(400)]));
        }
        Ok(body)
    }

    /// Sends `req` and returns the response body unread (for watch streams) once the headers have arrived.
    pub async fn stream(&mut self, req: &Req) -> Result<Incoming> {
        let request = self.request(req)?;
        self.sender.ready().await?;
        let resp = self.sender.send_request(request).await?;
        if !resp.status().is_success() {
            bail!("{} {} → {}", req.method, req.uri, resp.status());
        }
        Ok(resp.into_body())
    }

    /// Sends `req` and returns how long the whole exchange took.
    pub async fn timed(&mut self, req: &Req) -> Result<Duration> {
        let t0 = Instant::now();
        self.send(req).await?;
        Ok(t0.elapsed())
    }
}

/// What a closed-loop load run measured.
pub struct Load {
    /// Latency of every request that started and ended inside the measuring window.
    pub latencies: Vec<Duration>,
    /// Requests completed inside the window.
    pub completed: u64,
    /// The window's length.
    pub window: Duration,
}

impl Load {
    /// Completed requests per second.
    pub fn rate(&self) -> f64 {
        self.completed as f64 / self.window.as_secs_f64()
    }
}

/// A set of closed-loop clients, each with its own connection, kept open across measuring windows so that
/// systems can take turns in short windows without reconnecting.
pub struct Clients {
    conns: Vec<Conn>,
}

impl Clients {
    /// Opens `n` connections to `ep`.
    pub async fn connect(ep: &Endpoint, n: usize) -> Result<Clients> {
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            conns.push(ep.connect().await?);
        }
        Ok(Clients { conns })
    }

    /// Every client sends `req` back to back for `warmup` (discarded) and then `window` (measured), then stops.
    pub async fn run(&mut self, req: &Req, warmup: Duration, window: Duration) -> Result<Load> {
        let n = self.conns.len();
        let barrier = Arc::new(Barrier::new(n + 1));
        let mut tasks = Vec::with_capacity(n);
        for mut conn in self.conns.drain(..) {
            let barrier = barrier.clone();
            let req = req.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let start = Instant::now();
                let (measure_from, end) = (start + warmup, start + warmup + window);
                let mut latencies = Vec::with_capacity(1 << 14);
                let mut completed = 0u64;
                loop {
                    let t0 = Instant::now();
                    if t0 >= end {
                        break;
                    }
                    conn.send(&req).await?;
                    let t1 = Instant::now();
                    if t1 <= end && t0 >= measure_from {
                        latencies.push(t1 - t0);
                    }
                    if t1 <= end && t1 >= measure_from {
                        completed += 1;
                    }
                }
                anyhow::Ok((conn, latencies, completed))
            }));
        }
        barrier.wait().await;
        let mut load = Load { latencies: Vec::new(), completed: 0, window };
        for task in tasks {
            let (conn, latencies, completed) = task.await??;
            self.conns.push(conn);
            load.latencies.extend(latencies);
            load.completed += completed;
        }
        Ok(load)
    }
}

/// Sends every request of `reqs` over `conns` connections at once (request `i` on connection `i % conns`),
/// e.g. to fill a store quickly; returns nothing but the first error.
pub async fn fan_out(ep: &Endpoint, conns: usize, reqs: Vec<Req>) -> Result<()> {
    let mut buckets: Vec<Vec<Req>> = (0..conns).map(|_| Vec::new()).collect();
    for (i, r) in reqs.into_iter().enumerate() {
        buckets[i % conns].push(r);
    }
    let mut tasks = Vec::new();
    for bucket in buckets {
        let mut conn = ep.connect().await?;
        tasks.push(tokio::spawn(async move {
            for r in &bucket {
                conn.send(r).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// The nearest-rank `p`-quantile (0 < p ≤ 1) of sorted `v`; zero for an empty slice.
pub fn quantile(v: &[Duration], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_millis(50));
        assert_eq!(quantile(&v, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&v, 1.0), Duration::from_millis(100));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
