//! What the image builders (the DockerImage and CmdImage controllers) share: when to build ([`next_build`]),
//! how the Docker daemon is reached, the content-based tag tilt gives images, and publishing a built image into
//! its ImageMap, whose status the KubernetesApply controller injects into the objects it deploys.

use std::time::Duration;

use bollard::Docker;
use jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tilt_apis::{FileWatch, ImageMap, RestartOnSpec};

use crate::references::Lookup;

/// What an image controller knows of one object between reconciles, for [`next_build`].
pub(crate) struct BuildHistory<'a, S> {
    /// The spec the current or last build was started for (the object's, before any build).
    pub last_spec: &'a S,
    /// The newest restartOn/startOn event the current or last build started for.
    pub last_trigger: Option<Timestamp>,
    /// Whether a build was started for this object before.
    pub built_before: bool,
    /// Whether the last build stands (it finished or runs); false after a cancel or a wait.
    pub has_build: bool,
    /// Whether a build runs now.
    pub building: bool,
}

/// Whether to (cancel what runs and) start a build now, and why: the first build; a changed spec; a restartOn
/// event newer than the last build's, or no standing build. `None`: the last build stands, or a newer event
/// came during a build, whose end requeues the object to build again (an event queues a build rather than
/// cancelling the running one, as Go Tilt does; a spec change cancels it).
pub(crate) async fn next_build<S: PartialEq>(
    lookup: &impl Lookup,
    history: BuildHistory<'_, S>,
    spec: &S,
    restart_on: Option<&RestartOnSpec>,
    newest: Option<Timestamp>,
) -> Option<&'static str> {
    let spec_changed = history.last_spec != spec;
    let newer = newest.is_some() && newest > history.last_trigger;
    let reason = if !history.built_before {
        "Initial Build"
    } else if spec_changed {
        "Config Changed"
    } else if !history.has_build || newer {
        trigger_reason(lookup, restart_on, newest).await
    } else {
        return None;
    };
    (spec_changed || !history.building).then_some(reason)
}

/// Why a build that `newest` triggered runs: a file change when a restartOn FileWatch saw it, else a click.
async fn trigger_reason(
    lookup: &impl Lookup,
    restart_on: Option<&RestartOnSpec>,
    newest: Option<Timestamp>,
) -> &'static str {
    let Some(newest) = newest else { return "Initial Build" };
    for name in restart_on.iter().flat_map(|r| &r.file_watches) {
        let fw = lookup.get::<FileWatch>(name).await;
        if fw.and_then(|f| f.status.clone()?.last_event_time).is_some_and(|t| t.0 == newest) {
            return "Changed Files";
        }
    }
    "Manual Trigger"
}

/// How long one request (a whole build included) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3600);

/// Where the daemon listens when `DOCKER_HOST` is unset.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// How the image controllers reach the Docker daemon.
#[derive(Debug, Clone, PartialEq)]
pub struct DockerConfig {
    /// The daemon's address, `unix:///path/to/docker.sock`.
    pub host: String,
}

impl DockerConfig {
    /// `DOCKER_HOST`, or the default socket when it is unset or empty.
    pub fn from_env() -> DockerConfig {
        let host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
        DockerConfig { host: host.unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_owned()) }
    }
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig::from_env()
    }
}

/// `name` of `name[:tag][@digest]`; a colon before the last `/` is a registry port.
pub(crate) fn repository(reference: &str) -> &str {
    let reference = reference.split('@').next().unwrap_or(reference);
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => &reference[..last_slash + i],
        None => reference,
    }
}

/// The tag tilt gives an image: `tilt-` and the first 16 hex digits of its ID.
pub(crate) fn content_tag(image_id: &str) -> Option<String> {
    let hex = image_id.strip_prefix("sha256:").unwrap_or(image_id);
    (hex.len() >= 16 && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| format!("tilt-{}", &hex[..16]))
}

/// Connects to the daemon at `host` (`unix://…` or a socket path).
pub(crate) fn connect(host: &str) -> Result<Docker, String> {
    let path = match host.strip_prefix("unix://") {
        Some(p) => p,
        None if host.starts_with('/') => host,
        None => {
            return Err(format!(
                "DOCKER_HOST {host:?} is not supported: tilt-rs talks to the Docker daemon over a unix socket (unix://…)"
            ));
        }
    };
    Docker::connect_with_unix(path, REQUEST_TIMEOUT.as_secs(), bollard::API_DEFAULT_VERSION)
        .map_err(|e| unreachable_daemon(host, &e.to_string()))
}

fn unreachable_daemon(host: &str, why: &str) -> String {
    let host = if host.starts_with('/') { format!("unix://{host}") } else { host.to_owned() };
    format!("Cannot connect to the Docker daemon at {host}. Is the docker daemon running? ({why})")
}

/// The daemon's own message for an error, without bollard's wrapping.
pub(crate) fn daemon_message(host: &str, err: bollard::errors::Error) -> String {
    use bollard::errors::Error as E;
    match err {
        E::DockerStreamError { error } => error,
        E::DockerResponseServerError { message, .. } if !message.is_empty() => message,
        E::HyperResponseError { .. } | E::HyperLegacyError { .. } | E::IOError { .. } | E::SocketNotFoundError(_) => {
            unreachable_daemon(host, &err.to_string())
        }
        other => other.to_string(),
    }
}

/// Writes the built image `reference` into the status of ImageMap `image_map`, as field manager `manager`.
pub(crate) async fn publish(
    client: &Client,
    manager: &str,
    image_map: &str,
    reference: &str,
    started: Timestamp,
) -> Result<(), kube::Error> {
    let maps: Api<ImageMap> = Api::all(client.clone());
    let patch = json!({
        "apiVersion": tilt_apis::API_VERSION,
        "kind": "ImageMap",
        "status": {
            "image": reference,
            "imageFromLocal": reference,
            "imageFromCluster": reference,
            "buildStartTime": crate::micro(started),
        },
    });
    maps.patch_status(image_map, &PatchParams::apply(manager).force(), &Patch::Apply(&patch)).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_strips_tag_and_digest_but_not_port() {
        assert_eq!(repository("app"), "app");
        assert_eq!(repository("app:v1"), "app");
        assert_eq!(repository("localhost:5000/app"), "localhost:5000/app");
        assert_eq!(repository("localhost:5000/app:v2@sha256:ab"), "localhost:5000/app");
    }

    #[test]
    fn content_tag_is_the_first_16_hex_digits() {
        let id = format!("sha256:{}", "0123456789abcdef".repeat(4));
        assert_eq!(content_tag(&id).unwrap(), "tilt-0123456789abcdef");
        assert!(content_tag("sha256:xyz").is_none());
    }

    #[test]
    fn non_unix_hosts_are_refused_clearly() {
        let err = connect("tcp://127.0.0.1:2375").unwrap_err();
        assert!(err.contains("unix socket"), "{err}");
        let err = connect("unix:///nonexistent/docker.sock").unwrap_err();
        assert!(err.starts_with("Cannot connect to the Docker daemon at unix:///nonexistent/docker.sock"), "{err}");
    }
}
