//! One run of a `custom_build` command: the reference tilt expects it to produce, the command in its own
//! process group with that reference in its environment and its output in the log, and then the reference
//! it did produce.
//!
//! As in Go Tilt, the expected reference is `{ref}:{spec.outputTag}` when the Tiltfile fixes the tag, else
//! `{ref}:tilt-build-{unix seconds}`, passed as `EXPECTED_REF` (with its parts in `EXPECTED_REGISTRY`,
//! `EXPECTED_IMAGE`, `EXPECTED_TAG`). After exit 0 the result is the reference written to
//! `spec.outputsImageRefTo` (the file is removed before the run, so a stale one is never read) or the
//! expected one. Unless the command skips the local Docker (`outputMode: remote`), the image must then
//! exist in the Docker daemon, and is tagged by content, `{ref}:tilt-{16 hex of the image ID}`, as
//! DockerImage builds are.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::TagImageOptions;
use jiff::Timestamp;
use tilt_apis::{CmdImageOutputMode, CmdImageSpec};
use tokio_util::sync::CancellationToken;

use crate::image::{connect, content_tag, daemon_message, repository};
use crate::logs::LogStore;
use crate::process::reaper::Reaper;
use crate::process::{ProcessGroup, exit_code};

/// How long the command has between SIGTERM and SIGKILL when its build is cancelled.
const GRACE: Duration = Duration::from_secs(3);

/// The reference the command is asked to produce, and its parts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Expected {
    /// `name:tag`.
    pub reference: String,
    /// Registry the image is pushed to; empty without `default_registry()` (not supported yet).
    pub registry: String,
    /// `name` without the registry.
    pub image: String,
    /// The tag.
    pub tag: String,
}

impl Expected {
    /// The reference for `spec` when a build starts at `now`.
    pub fn new(spec: &CmdImageSpec, now: Timestamp) -> Expected {
        let image = repository(&spec.ref_).to_owned();
        let tag = if spec.output_tag.is_empty() {
            format!("tilt-build-{}", now.as_second())
        } else {
            spec.output_tag.clone()
        };
        Expected { reference: format!("{image}:{tag}"), registry: String::new(), image, tag }
    }

    /// The variables the command sees.
    pub fn env(&self) -> [String; 4] {
        [
            format!("EXPECTED_REF={}", self.reference),
            format!("EXPECTED_REGISTRY={}", self.registry),
            format!("EXPECTED_IMAGE={}", self.image),
            format!("EXPECTED_TAG={}", self.tag),
        ]
    }
}

/// Where the command's output and the build's messages go.
pub(crate) struct Output<'a> {
    pub logs: &'a Arc<LogStore>,
    pub resource: &'a str,
    pub source: &'a str,
}

impl Output<'_> {
    fn line(&self, text: &str) {
        self.logs.append(self.resource, self.source, text);
    }
}

/// Runs the command of `spec` and returns the built reference, or why the build failed. A cancelled build
/// stops the command's process group and returns an error nobody reads.
pub(crate) async fn run(
    spec: &CmdImageSpec,
    docker_host: &str,
    default_dir: &Path,
    reaper: &Reaper,
    out: &Output<'_>,
    cancel: &CancellationToken,
) -> Result<String, String> {
    let expected = Expected::new(spec, Timestamp::now());
    let ref_file = (!spec.outputs_image_ref_to.is_empty()).then(|| Path::new(&spec.outputs_image_ref_to));
    if let Some(file) = ref_file {
        match std::fs::remove_file(file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("removing the old {}: {e}", file.display())),
        }
    }
    let mut env = spec.env.clone();
    out.line("Custom Build: Injecting Environment Variables");
    for var in expected.env() {
        out.line(&format!("  {var}"));
        env.push(var);
    }
    out.line(&format!("Running custom build cmd {:?}", display(&spec.args)));
    let dir = if spec.dir.is_empty() { default_dir } else { Path::new(&spec.dir) };
    let mut group = ProcessGroup::spawn(&spec.args, dir, &env, out.logs, out.resource, out.source)
        .map_err(|e| format!("Custom build command failed: {e}"))?;
    reaper.register(group.pid);
    let exit = tokio::select! {
        exit = group.wait() => exit,
        () = cancel.cancelled() => group.terminate(GRACE).await,
    };
    reaper.unregister(group.pid);
    group.flushed(Duration::from_secs(1)).await;
    if cancel.is_cancelled() {
        return Err("cancelled".to_owned());
    }
    match exit {
        Ok(status) if status.success() => {}
        Ok(status) => return Err(format!("Custom build command failed: exit status {}", exit_code(&status))),
        Err(e) => return Err(format!("Custom build command failed: {e}")),
    }

    let reference = match ref_file {
        Some(file) => read_ref_file(file)?,
        None => expected.reference,
    };
    if spec.output_mode == Some(CmdImageOutputMode::Remote) {
        return Ok(reference);
    }
    tag_local_image(docker_host, &reference).await
}

/// The reference the command wrote to `file`.
fn read_ref_file(file: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        format!("Custom build command succeeded, but reading the image ref from {} failed: {e}", file.display())
    })?;
    let reference = text.trim();
    let valid = !reference.is_empty()
        && !reference.chars().any(char::is_whitespace)
        && !repository(reference).is_empty()
        && !reference.starts_with(':');
    if !valid {
        return Err(format!("Output image ref in file {} was invalid: {reference:?}", file.display()));
    }
    Ok(reference.to_owned())
}

/// Finds `reference` in the local Docker daemon and tags it by content; the content-tagged reference.
async fn tag_local_image(docker_host: &str, reference: &str) -> Result<String, String> {
    let not_found = |why: String| {
        format!(
            "Could not find image {reference} in Docker: {why}\nDid your custom_build script properly tag the image?\n\
             If your custom_build doesn't use Docker, you might need to use skips_local_docker=True, see \
             https://docs.tilt.dev/custom_build.html"
        )
    };
    let docker = connect(docker_host).map_err(not_found)?;
    let inspect = docker.inspect_image(reference).await.map_err(|e| not_found(daemon_message(docker_host, e)))?;
    let id = inspect.id.unwrap_or_default();
    let tag = content_tag(&id).ok_or_else(|| format!("unexpected image ID {id:?} from the daemon"))?;
    let repo = repository(reference).to_owned();
    let options = TagImageOptions { repo: Some(repo.clone()), tag: Some(tag.clone()) };
    docker.tag_image(&id, Some(options)).await.map_err(|e| daemon_message(docker_host, e))?;
    Ok(format!("{repo}:{tag}"))
}

/// The command as users wrote it: the script of `sh -c SCRIPT`, else the argv.
fn display(argv: &[String]) -> String {
    match argv {
        [sh, c, script] if sh == "sh" && c == "-c" => script.clone(),
        _ => argv.join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_ref_is_time_based_unless_the_tag_is_fixed() {
        let mut spec = CmdImageSpec { ref_: "gcr.io/proj/app".into(), ..Default::default() };
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let e = Expected::new(&spec, now);
        assert_eq!(e.reference, "gcr.io/proj/app:tilt-build-1767225600");
        assert_eq!(e.tag, "tilt-build-1767225600");
        assert_eq!(e.image, "gcr.io/proj/app");
        spec.output_tag = "dev".into();
        let e = Expected::new(&spec, now);
        assert_eq!(e.env()[0], "EXPECTED_REF=gcr.io/proj/app:dev");
        assert_eq!(e.env()[3], "EXPECTED_TAG=dev");
    }

    #[test]
    fn ref_files_must_hold_one_reference() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ref");
        std::fs::write(&file, "  app:v1\n").unwrap();
        assert_eq!(read_ref_file(&file).unwrap(), "app:v1");
        std::fs::write(&file, "two refs\n").unwrap();
        assert!(read_ref_file(&file).unwrap_err().contains("was invalid"));
        std::fs::remove_file(&file).unwrap();
        assert!(read_ref_file(&file).unwrap_err().contains("reading the image ref"));
    }
}
