//! The two server subcommands the benchmark re-executes itself as, each in its own process.
//!
//! - `serve`: the tilt-rs API server (`ApiServer::start(Registry::tilt(), Config::default())`, i.e. what
//!   `tilt up` runs: TLS with a per-run CA, bearer token, default watch history).
//! - `floor`: a bare hyper hello-world with the same transport — rustls with ring behind the same kind of
//!   rcgen CA-signed certificate, hyper-util's auto (HTTP/1.1 + h2) connection builder, `TCP_NODELAY`, one
//!   task per connection, the same Tokio runtime — but no routing, no token check and no storage. It answers
//!   every request with a fixed JSON body of `?bytes=N` bytes (64 by default), after reading the request
//!   body; `GET /watch` streams every body later `POST`ed to `/write` (plus a newline) to every watcher: the
//!   transport floor for watch fan-out.
//!
//! Both print one JSON line `{"url", "ca_pem", "token"?}` on stdout, then serve until their stdin closes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tilt_apiserver::{ApiServer, Config, Registry};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// The runtime both servers run on: what `#[tokio::main]` gives `tilt up`.
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// Resolves when stdin reaches end-of-file (the parent closed it or died).
async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while let Ok(n) = stdin.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

fn handshake(info: serde_json::Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{info}")?;
    out.flush()?;
    Ok(())
}

/// `apiserver-bench serve`: runs the tilt-rs API server until stdin closes.
pub fn serve() -> Result<()> {
    runtime()?.block_on(async {
        let server = ApiServer::start(Registry::tilt(), Config::default()).await?;
        handshake(json!({"url": server.url(), "token": server.token(), "ca_pem": server.ca_pem()}))?;
        stdin_closed().await;
        server.shutdown().await;
        Ok(())
    })
}

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The floor's state: cached bodies by size, and the watch fan-out channel.
struct Floor {
    bodies: Mutex<HashMap<usize, Bytes>>,
    events: broadcast::Sender<Bytes>,
}

impl Floor {
    /// A JSON document of exactly `n` bytes (at least 16), built once per size.
    fn body(&self, n: usize) -> Bytes {
        let mut cache = self.bodies.lock().expect("floor body cache");
        cache
            .entry(n)
            .or_insert_with(|| {
                let n = n.max(16);
                let mut s = String::with_capacity(n);
                s.push_str(r#"{"kind":"Floor","pad":""#);
                s.extend(std::iter::repeat_n('x', n.saturating_sub(s.len() + 2)));
                s.push_str("\"}");
                Bytes::from(s)
            })
            .clone()
    }

    async fn handle(self: Arc<Floor>, req: Request<Incoming>) -> Response<Body> {
        let size = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("bytes=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(64usize);
        if req.method() == Method::GET && req.uri().path() == "/watch" {
            let rx = self.events.subscribe();
            let stream = futures::stream::unfold(rx, |mut rx| async move {
                loop {
                    match rx.recv().await {
                        Ok(b) => return Some((Ok(Frame::data(b)), rx)),
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            });
            return json_response(StreamBody::new(stream).boxed_unsync());
        }
        let path_is_write = req.uri().path() == "/write";
        let body = req.into_body().collect().await.map(|c| c.to_bytes()).unwrap_or_default();
        if path_is_write {
            let mut line = Vec::with_capacity(body.len() + 1);
            line.extend_from_slice(&body);
            line.push(b'\n');
            let _ = self.events.send(Bytes::from(line));
        }
        json_response(Full::new(self.body(size)).boxed_unsync())
    }
}

fn json_response(body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// A CA and a certificate for `127.0.0.1` signed by it, as the API server makes its own.
fn floor_tls() -> Result<(tokio_rustls::TlsAcceptor, String)> {
    let ca_key = rcgen::KeyPair::generate()?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "floor CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key)?;
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into(), "::1".into()])?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "floor");
    let cert = params.signed_by(&key, &ca)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).map_err(anyhow::Error::msg)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone(), ca.der().clone()], key_der)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca.pem()))
}

/// `apiserver-bench floor`: runs the hyper hello-world floor until stdin closes.
pub fn floor() -> Result<()> {
    runtime()?.block_on(async {
        let (acceptor, ca_pem) = floor_tls()?;
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the floor")?;
        let addr = listener.local_addr()?;
        let floor = Arc::new(Floor { bodies: Mutex::new(HashMap::new()), events: broadcast::channel(4096).0 });
        handshake(json!({"url": format!("https://{addr}"), "ca_pem": ca_pem}))?;
        let accept = async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let (acceptor, floor) = (acceptor.clone(), floor.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let service = hyper::service::service_fn(move |req| {
                        let floor = floor.clone();
                        async move { Ok::<_, Infallible>(floor.handle(req).await) }
                    });
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                });
            }
        };
        tokio::select! {
            _ = accept => {}
            _ = stdin_closed() => {}
        }
        Ok(())
    })
}
