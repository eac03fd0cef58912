//! Readiness probes (exec, HTTP GET, TCP), with Kubernetes' thresholds and timing.

use std::time::Duration;

use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tilt_apis::Probe;
use tokio::net::TcpStream;

/// Probes run this often until the first success, so a server is marked ready as soon as it listens,
/// instead of one `periodSeconds` (default 10 s) after a failed first try.
const STARTUP_PERIOD: Duration = Duration::from_millis(50);

fn seconds(v: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(v.filter(|s| *s > 0).unwrap_or(default) as u64)
}

fn host(h: &str) -> &str {
    if h.is_empty() { "127.0.0.1" } else { h }
}

/// Runs one probe; `Err` says why it failed.
pub async fn check(probe: &Probe) -> Result<(), String> {
    let timeout = seconds(probe.timeout_seconds, 1);
    let attempt = async {
        if let Some(exec) = &probe.exec {
            let (program, args) = exec.command.split_first().ok_or("exec probe has an empty command")?;
            let status = tokio::process::Command::new(program)
                .args(args)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .status()
                .await
                .map_err(|e| format!("exec {program:?}: {e}"))?;
            return if status.success() { Ok(()) } else { Err(format!("exec probe exited with {status}")) };
        }
        if let Some(get) = &probe.http_get {
            if !get.scheme.is_empty() && !get.scheme.eq_ignore_ascii_case("http") {
                return Err(format!("HTTP probe scheme {:?} is not supported (only HTTP)", get.scheme));
            }
            let addr = format!("{}:{}", host(&get.host), get.port);
            let tcp = TcpStream::connect(&addr).await.map_err(|e| format!("GET {addr}: {e}"))?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            let path = if get.path.is_empty() { "/".to_string() } else { get.path.clone() };
            let mut req = http::Request::get(&path).header(http::header::HOST, &addr);
            for h in &get.http_headers {
                req = req.header(&h.name, &h.value);
            }
            let req = req.body(Empty::<bytes::Bytes>::new()).map_err(|e| e.to_string())?;
            let resp = sender.send_request(req).await.map_err(|e| format!("GET {addr}{path}: {e}"))?;
            let code = resp.status().as_u16();
            return if (200..400).contains(&code) { Ok(()) } else { Err(format!("GET {addr}{path}: HTTP {code}")) };
        }
        if let Some(tcp) = &probe.tcp_socket {
            let addr = format!("{}:{}", host(&tcp.host), tcp.port);
            return TcpStream::connect(&addr).await.map(drop).map_err(|e| format!("connect {addr}: {e}"));
        }
        Err("probe has no exec, httpGet or tcpSocket action".to_string())
    };
    tokio::time::timeout(timeout, attempt).await.unwrap_or_else(|_| Err(format!("probe timed out after {timeout:?}")))
}

/// Probes forever, calling `on_change(ready)` whenever readiness flips (per successThreshold and
/// failureThreshold). Cancel by dropping the future.
pub async fn run(probe: Probe, mut on_change: impl FnMut(bool, Option<String>)) {
    let period = seconds(probe.period_seconds, 10);
    let success_threshold = probe.success_threshold.filter(|v| *v > 0).unwrap_or(1);
    let failure_threshold = probe.failure_threshold.filter(|v| *v > 0).unwrap_or(3);
    tokio::time::sleep(seconds(probe.initial_delay_seconds, 0)).await;
    let (mut ready, mut ever_ready) = (false, false);
    let (mut successes, mut failures) = (0, 0);
    loop {
        match check(&probe).await {
            Ok(()) => {
                successes += 1;
                failures = 0;
                if !ready && successes >= success_threshold {
                    ready = true;
                    ever_ready = true;
                    on_change(true, None);
                }
            }
            Err(why) => {
                failures += 1;
                successes = 0;
                if ready && failures >= failure_threshold {
                    ready = false;
                    on_change(false, Some(why));
                }
            }
        }
        tokio::time::sleep(if ever_ready { period } else { STARTUP_PERIOD.min(period) }).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tilt_apis::{ExecAction, HttpGetAction, TcpSocketAction};

    #[tokio::test]
    async fn tcp_http_and_exec_probes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port() as i32;
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 1024];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let status =
                        if String::from_utf8_lossy(&buf[..n]).starts_with("GET /bad") { "500 Oops" } else { "200 OK" };
                    let _ = s.write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n").as_bytes()).await;
                });
            }
        });
        let tcp = Probe { tcp_socket: Some(TcpSocketAction { port, ..Default::default() }), ..Default::default() };
        assert!(check(&tcp).await.is_ok());
        let http = |path: &str| Probe {
            http_get: Some(HttpGetAction { port, path: path.into(), ..Default::default() }),
            ..Default::default()
        };
        assert!(check(&http("/ok")).await.is_ok());
        assert!(check(&http("/bad")).await.unwrap_err().contains("500"));
        let exec = |cmd: &str| Probe {
            exec: Some(ExecAction { command: vec!["sh".into(), "-c".into(), cmd.into()] }),
            ..Default::default()
        };
        assert!(check(&exec("exit 0")).await.is_ok());
        assert!(check(&exec("exit 1")).await.is_err());
        let closed =
            Probe { tcp_socket: Some(TcpSocketAction { port: 1, ..Default::default() }), ..Default::default() };
        assert!(check(&closed).await.is_err());
    }
}
