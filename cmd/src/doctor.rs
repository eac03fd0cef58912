//! `tilt doctor`: what tilt sees, for bug reports — its version, the kubeconfig files and the current
//! context with whether its cluster answers `/version`, whether a Docker daemon answers `/_ping` on
//! `$DOCKER_HOST` (or `/var/run/docker.sock`), and whether a `tilt up` is reachable. Problems are
//! reported in the output, never as a failure: it always exits 0.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{client, kubeconfig, view};

/// How long each check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Flags of `tilt doctor`.
#[derive(clap::Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    target: client::Target,
}

/// Runs `tilt doctor`.
pub async fn doctor(args: DoctorArgs) -> Result<()> {
    view::say(&format!("Tilt: tilt-rs v{}", env!("CARGO_PKG_VERSION")));
    view::say(&format!("System: {}-{}", std::env::consts::OS, std::env::consts::ARCH));
    view::say("---");
    view::say("Kubernetes");
    let files = std::env::var_os("KUBECONFIG")
        .map(|list| {
            std::env::split_paths(&list)
                .filter(|p| !p.as_os_str().is_empty())
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|files| !files.is_empty())
        .unwrap_or_else(|| vec![kubeconfig::user_kubeconfig_path().display().to_string()]);
    view::say(&format!("- Kubeconfig: {}", files.join(":")));
    for line in cluster_lines().await {
        view::say(&format!("- {line}"));
    }
    view::say("---");
    view::say("Docker");
    let host = std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into());
    view::say(&format!("- Host: {host}"));
    view::say(&format!("- Daemon: {}", docker_line(&host).await));
    view::say("---");
    view::say("Tilt up");
    view::say(&format!("- Tilt kubeconfig: {}", kubeconfig::tilt_config_path().display()));
    match tokio::time::timeout(CHECK_TIMEOUT, client::connect(&args.target)).await {
        Ok(Ok(client)) => {
            let version = client.apiserver_version().await.map(|v| v.git_version).unwrap_or_default();
            view::say(&format!("- API server: reachable ({version})"));
        }
        Ok(Err(e)) => view::say(&format!("- API server: not reachable: {e:#}")),
        Err(_) => view::say("- API server: not reachable: timed out"),
    }
    view::say("---");
    view::say("Thanks for seeing the Tilt Doctor!");
    Ok(())
}

/// The current context of the user's kubeconfig and whether its cluster answers.
async fn cluster_lines() -> Vec<String> {
    let config = match Kubeconfig::read() {
        Ok(c) => c,
        Err(e) => return vec![format!("Context: none (the kubeconfig cannot be read: {e})")],
    };
    let Some(context) = config.current_context.clone().filter(|c| !c.is_empty()) else {
        return vec!["Context: none (current-context is not set)".into()];
    };
    let cluster_name =
        config.contexts.iter().find(|c| c.name == context).and_then(|c| c.context.as_ref()).map(|c| c.cluster.clone());
    let server = cluster_name
        .as_ref()
        .and_then(|name| config.clusters.iter().find(|c| &c.name == name))
        .and_then(|c| c.cluster.as_ref()?.server.clone())
        .unwrap_or_else(|| "(unknown)".into());
    let check = async {
        let config = kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default()).await?;
        let version = kube::Client::try_from(config)?.apiserver_version().await?;
        anyhow::Ok(version.git_version)
    };
    let status = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(version)) => format!("reachable (Kubernetes {version})"),
        Ok(Err(e)) => format!("not reachable: {e:#}"),
        Err(_) => "not reachable: timed out".into(),
    };
    vec![
        format!("Context: {context}"),
        format!("Cluster: {} at {server}", cluster_name.unwrap_or_default()),
        format!("Cluster status: {status}"),
    ]
}

/// Whether the Docker daemon at `host` answers `/_ping`, with its version when it does.
async fn docker_line(host: &str) -> String {
    match tokio::time::timeout(CHECK_TIMEOUT, async {
        (docker_get(host, "/_ping").await, docker_get(host, "/version").await)
    })
    .await
    {
        Ok((Ok((200, _)), version)) => {
            let v: serde_json::Value =
                version.ok().and_then(|(_, body)| serde_json::from_str(&body).ok()).unwrap_or_default();
            format!(
                "reachable (server {}, API {})",
                v["Version"].as_str().unwrap_or("?"),
                v["ApiVersion"].as_str().unwrap_or("?")
            )
        }
        Ok((Ok((code, body)), _)) => format!("not healthy: /_ping answered {code} {}", body.trim()),
        Ok((Err(e), _)) => format!("not reachable: {e:#}"),
        Err(_) => "not reachable: timed out".into(),
    }
}

/// A plain HTTP/1.0 GET to the daemon (unix socket or tcp): the status code and body.
async fn docker_get(host: &str, path: &str) -> Result<(u16, String)> {
    let request = format!("GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n");
    let response = if let Some(socket) = host.strip_prefix("unix://") {
        let stream =
            tokio::net::UnixStream::connect(socket).await.with_context(|| format!("connecting to {socket}"))?;
        exchange(stream, &request).await?
    } else if let Some(addr) = host.strip_prefix("tcp://") {
        let stream = tokio::net::TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        exchange(stream, &request).await?
    } else {
        bail!("unsupported DOCKER_HOST {host:?} (expected unix:// or tcp://)");
    };
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).context("not an HTTP response")?;
    Ok((code, body.to_string()))
}

async fn exchange(mut stream: impl AsyncRead + AsyncWrite + Unpin, request: &str) -> Result<String> {
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    Ok(String::from_utf8_lossy(&response).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn docker_ping_over_a_unix_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap();
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let body = if req.starts_with("GET /_ping") {
                    "OK".to_string()
                } else {
                    r#"{"Version":"27.1","ApiVersion":"1.46"}"#.to_string()
                };
                let _ = s
                    .write_all(format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).as_bytes())
                    .await;
            }
        });
        let host = format!("unix://{}", path.display());
        assert_eq!(docker_line(&host).await, "reachable (server 27.1, API 1.46)");
        assert!(docker_line("unix:///nonexistent.sock").await.starts_with("not reachable"));
        assert!(docker_line("ssh://x").await.contains("unsupported DOCKER_HOST"));
    }
}
