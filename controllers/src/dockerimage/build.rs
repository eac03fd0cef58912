//! One image build through the Docker Engine API: the context tar streamed to `POST /build`, the daemon's
//! progress relayed line by line, and the result tagged `{ref}:tilt-{first 16 hex digits of the image ID}`.
//!
//! The classic builder is used (BuildKit's session protocol is not spoken), so `--secret` and `--ssh`
//! builds are refused with a clear error rather than built without them.

use std::collections::HashMap;

use bollard::query_parameters::{BuildImageOptions, BuilderVersion, TagImageOptions};
use futures::StreamExt;
use tilt_apis::DockerImageSpec;
use tokio::sync::mpsc;

use super::context::{self, ContextFilter, ContextSummary};
use crate::image::{connect, content_tag, daemon_message, repository};

/// What a build reports while it runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Progress {
    /// A line of output for the log.
    Line(String),
    /// The builder started `Step i/n : …`.
    Step(String),
    /// The current step was served from the cache.
    Cached,
}

/// A successful build.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Built {
    /// The image ID (`sha256:…`).
    pub id: String,
    /// The content-based reference it was tagged with.
    pub reference: String,
}

/// `KEY=VALUE` args; a bare `KEY` takes its value from tilt's environment, like `docker build --build-arg KEY`,
/// and is left to the Dockerfile's default when unset there.
pub(crate) fn build_args(args: &[String]) -> HashMap<String, String> {
    args.iter()
        .filter_map(|a| match a.split_once('=') {
            Some((k, v)) => Some((k.to_owned(), v.to_owned())),
            None => std::env::var(a).ok().map(|v| (a.clone(), v)),
        })
        .collect()
}

/// Builds `spec` on the daemon at `host`, reporting progress through `report`; the daemon's message on failure.
pub(crate) async fn build(
    host: &str,
    spec: &DockerImageSpec,
    mut report: impl FnMut(Progress),
) -> Result<Built, String> {
    if !spec.secrets.is_empty() || !spec.ssh_agent_configs.is_empty() {
        return Err("secrets and ssh need BuildKit, which tilt-rs does not use; build without secret=/ssh=".to_owned());
    }
    if spec.dockerfile_contents.trim().is_empty() {
        return Err("the Dockerfile is empty (spec.dockerfileContents)".to_owned());
    }
    let docker = connect(host)?;
    let filter = ContextFilter::new(&spec.context_ignores).map_err(|e| e.to_string())?;
    let (dockerfile, add_dockerfile) = context::dockerfile_name(spec, &filter);

    let (tx, rx) = mpsc::channel(4);
    let tar_spec = spec.clone();
    let tar_name = dockerfile.clone();
    let writer =
        tokio::task::spawn_blocking(move || context::write_tar(&tar_spec, &filter, &tar_name, add_dockerfile, tx));
    let body = bollard::body_try_stream(tokio_stream_from(rx));

    let options = BuildImageOptions {
        dockerfile: dockerfile.clone(),
        t: None,
        q: false,
        nocache: false,
        rm: true,
        forcerm: true,
        pull: spec.pull.then(|| "1".to_owned()),
        cachefrom: (!spec.cache_from.is_empty()).then(|| spec.cache_from.clone()),
        buildargs: Some(build_args(&spec.args)),
        networkmode: (!spec.network.is_empty()).then(|| spec.network.clone()),
        platform: spec.platform.clone(),
        target: spec.target.clone(),
        version: BuilderVersion::BuilderV1,
        ..BuildImageOptions::default()
    };
    // dockerd reads `extrahosts` as a repeated parameter, which bollard's options cannot express.
    let extra_hosts = spec.extra_hosts.clone();
    let docker_build = if extra_hosts.is_empty() {
        docker.clone()
    } else {
        docker.clone().with_request_modifier(move |mut req| {
            if req.uri().path().ends_with("/build") {
                let mut uri = req.uri().to_string();
                for h in &extra_hosts {
                    let pair: String = form_pair("extrahosts", h);
                    uri.push(if uri.contains('?') { '&' } else { '?' });
                    uri.push_str(&pair);
                }
                if let Ok(parsed) = uri.parse() {
                    *req.uri_mut() = parsed;
                }
            }
            req
        })
    };

    let mut image_id: Option<String> = None;
    let mut short_id: Option<String> = None;
    let mut failure: Option<String> = None;
    let mut last_status: HashMap<String, String> = HashMap::new();
    {
        let mut stream = docker_build.build_image(options, None, Some(body));
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(aux) = info.aux.and_then(|a| a.id) {
                        image_id = Some(aux);
                    }
                    if let Some(text) = info.stream {
                        for line in text.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
                            if let Some(id) = line.strip_prefix("Successfully built ") {
                                short_id = Some(id.trim().to_owned());
                            }
                            if line.starts_with("Step ") {
                                report(Progress::Step(line.to_owned()));
                            } else if line.trim() == "---> Using cache" {
                                report(Progress::Cached);
                            }
                            report(Progress::Line(line.to_owned()));
                        }
                    }
                    if let Some(status) = info.status {
                        // Pull progress repeats per chunk; log each layer's status once per change.
                        let id = info.id.unwrap_or_default();
                        if last_status.get(&id) != Some(&status) {
                            let line = if id.is_empty() { status.clone() } else { format!("{id}: {status}") };
                            last_status.insert(id, status);
                            report(Progress::Line(line));
                        }
                    }
                }
                Err(err) => {
                    failure = Some(daemon_message(host, err));
                    break;
                }
            }
        }
    }
    let written = writer.await.map_err(|e| format!("writing the build context failed: {e}"))?;
    match written {
        // The daemon's complaint is the useful message when it stopped reading the context.
        Err(context::ContextError::Closed) => {}
        Err(err) => return Err(err.to_string()),
        Ok(ContextSummary { files, bytes }) => {
            report(Progress::Line(format!("Build context: {files} files, {:.1} kB", bytes as f64 / 1000.0)));
        }
    }
    if let Some(message) = failure {
        return Err(message);
    }
    let id = match (image_id, short_id) {
        (Some(id), _) => id,
        (None, Some(short)) => docker
            .inspect_image(&short)
            .await
            .map_err(|e| daemon_message(host, e))?
            .id
            .ok_or_else(|| format!("the daemon reported no ID for image {short}"))?,
        (None, None) => return Err("the daemon finished the build without reporting an image ID".to_owned()),
    };
    let tag = content_tag(&id).ok_or_else(|| format!("unexpected image ID {id:?} from the daemon"))?;
    let repo = repository(&spec.ref_).to_owned();
    let tag_options = TagImageOptions { repo: Some(repo.clone()), tag: Some(tag.clone()) };
    docker.tag_image(&id, Some(tag_options)).await.map_err(|e| daemon_message(host, e))?;
    for extra in &spec.extra_tags {
        let extra_repo = repository(extra);
        let extra_tag = extra.split('@').next().unwrap_or(extra).get(extra_repo.len() + 1..).unwrap_or("latest");
        let options = TagImageOptions { repo: Some(extra_repo.to_owned()), tag: Some(extra_tag.to_owned()) };
        docker.tag_image(&id, Some(options)).await.map_err(|e| daemon_message(host, e))?;
        report(Progress::Line(format!("Tagged {extra_repo}:{extra_tag}")));
    }
    let reference = format!("{repo}:{tag}");
    report(Progress::Line(format!("Tagged {reference}")));
    Ok(Built { id, reference })
}

/// `key=value`, form-encoded.
fn form_pair(key: &str, value: &str) -> String {
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!("{}={}", encode(key), encode(value))
}

/// An mpsc receiver as a stream.
fn tokio_stream_from<T: Send + 'static>(mut rx: mpsc::Receiver<T>) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_build_args_come_from_the_environment() {
        let args = build_args(&["A=1".into(), "B=x=y".into(), "PATH".into(), "TILT_SURELY_UNSET_VAR_42".into()]);
        assert_eq!(args["A"], "1");
        assert_eq!(args["B"], "x=y");
        assert_eq!(args["PATH"], std::env::var("PATH").unwrap());
        assert!(!args.contains_key("TILT_SURELY_UNSET_VAR_42"));
    }

    #[test]
    fn form_pairs_are_encoded() {
        assert_eq!(form_pair("extrahosts", "db:10.0.0.1"), "extrahosts=db%3A10.0.0.1");
    }
}
