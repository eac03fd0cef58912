//! The build context: which files of `spec.context` go to the daemon, and the tar stream that carries them.
//!
//! `spec.contextIgnores` are matched with `.dockerignore` semantics (moby's patternmatcher), not gitignore's,
//! because they are the user's `.dockerignore` lines and Tilt's `only`/`ignore` encoded the same way:
//! patterns are anchored at their `basePath` (`*.md` is only the top level; `**/*.md` is any depth), a pattern
//! that matches a parent directory matches everything in it, and the last matching pattern wins, so `**`
//! followed by `!src` keeps all of `src/`. A `basePath` without patterns excludes everything under it.
//! Excluded directories are not walked unless an exclusion (`!…`) pattern could re-include something in them.
//!
//! The Dockerfile comes from `spec.dockerfileContents`. When the context already holds the same text at
//! `Dockerfile`, that file is used; otherwise it is added as `.dockerfile.<hash>` and listed in the tar's
//! `.dockerignore`, so the daemon removes it from the context after reading it (as `docker build -f -` does).
//! Entries are written in name order with deterministic headers (no owners or times), so the same files give
//! the same tar.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use globset::{GlobBuilder, GlobMatcher};
use sha2::{Digest, Sha256};
use tilt_apis::{DockerImageSpec, IgnoreDef};
use tokio::sync::mpsc;

/// Name of the Dockerfile inside the context when the context's own `Dockerfile` is a different text.
pub(crate) fn synthetic_dockerfile_name(contents: &str) -> String {
    let digest = Sha256::digest(contents.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!(".dockerfile.{hex}")
}

/// Why the context could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A context ignore pattern is invalid.
    #[error("invalid context ignore pattern {pattern:?} (base {base}): {reason}")]
    Pattern {
        /// The base path of the rule.
        base: String,
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The context directory or a file in it could not be read.
    #[error("error checking context: {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The context is not an absolute directory.
    #[error("build context {0:?} must be an absolute path to a directory")]
    NotADirectory(String),
    /// The daemon stopped reading the context.
    #[error("the Docker daemon stopped reading the build context")]
    Closed,
}

/// One `.dockerignore` pattern.
#[derive(Debug)]
struct Pattern {
    /// The cleaned pattern text, for directory pruning.
    text: String,
    matcher: GlobMatcher,
    /// A `!pattern` that re-includes.
    exclusion: bool,
}

/// One source of rules, relative to its base directory.
#[derive(Debug)]
enum Rule {
    /// Everything at or under this path.
    Everything(PathBuf),
    /// `.dockerignore` patterns relative to the base.
    Patterns { base: PathBuf, patterns: Vec<Pattern> },
}

/// `spec.contextIgnores` with `.dockerignore` semantics.
#[derive(Debug)]
pub(crate) struct ContextFilter {
    rules: Vec<Rule>,
}

/// Go's `filepath.Clean` for slash-separated relative paths: no empty, `.` or `..`-resolvable parts.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() { ".".to_owned() } else { parts.join("/") }
}

impl ContextFilter {
    /// Compiles the rules; a pattern that cannot be compiled is an error naming it.
    pub(crate) fn new(ignores: &[IgnoreDef]) -> Result<ContextFilter, ContextError> {
        let mut rules = Vec::new();
        for def in ignores {
            let base = PathBuf::from(&def.base_path);
            if def.patterns.is_empty() {
                rules.push(Rule::Everything(base));
                continue;
            }
            let mut patterns = Vec::new();
            for raw in &def.patterns {
                let err = |reason: String| ContextError::Pattern {
                    base: def.base_path.clone(),
                    pattern: raw.clone(),
                    reason,
                };
                let trimmed = raw.trim();
                if trimmed.is_empty() || trimmed.starts_with('#') {
                    continue;
                }
                let (exclusion, body) = match trimmed.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, trimmed),
                };
                if body.is_empty() {
                    return Err(err("illegal exclusion pattern \"!\"".to_owned()));
                }
                // moby cleans the pattern and roots it at the context: a leading `/` is dropped.
                let text = clean(body.trim_start_matches('/'));
                let matcher = GlobBuilder::new(&text)
                    .literal_separator(true)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| err(e.kind().to_string()))?
                    .compile_matcher();
                patterns.push(Pattern { text, matcher, exclusion });
            }
            rules.push(Rule::Patterns { base, patterns });
        }
        Ok(ContextFilter { rules })
    }

    /// Whether `path` (absolute) is left out of the context.
    pub(crate) fn excluded(&self, path: &Path) -> bool {
        self.rules.iter().any(|rule| match rule {
            Rule::Everything(base) => path.starts_with(base),
            Rule::Patterns { base, patterns } => {
                relative(base, path).is_some_and(|rel| matches_or_parent_matches(patterns, &rel))
            }
        })
    }

    /// Whether an excluded directory can be skipped whole: some rule that excludes it has no exclusion
    /// pattern that could re-include a path below it.
    pub(crate) fn can_prune(&self, dir: &Path) -> bool {
        self.rules.iter().any(|rule| match rule {
            Rule::Everything(base) => dir.starts_with(base),
            Rule::Patterns { base, patterns } => relative(base, dir).is_some_and(|rel| {
                if !matches_or_parent_matches(patterns, &rel) {
                    return false;
                }
                let prefix = format!("{rel}/");
                !patterns.iter().any(|p| p.exclusion && format!("{}/", p.text).starts_with(&prefix))
            }),
        })
    }
}

/// `path` relative to `base` with `/` separators; `None` outside `base` or for `base` itself.
fn relative(base: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(base).ok()?;
    let parts: Vec<String> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// moby's `MatchesOrParentMatches`: the last pattern that matches the path or one of its parents decides.
fn matches_or_parent_matches(patterns: &[Pattern], rel: &str) -> bool {
    let parents: Vec<&str> = rel.match_indices('/').map(|(i, _)| &rel[..i]).collect();
    let mut matched = false;
    for p in patterns {
        // An inclusion cannot change an already excluded path, nor an exclusion a kept one.
        if p.exclusion != matched {
            continue;
        }
        let hit = p.matcher.is_match(rel) || parents.iter().any(|parent| p.matcher.is_match(parent));
        if hit {
            matched = !p.exclusion;
        }
    }
    matched
}

/// What was sent, for the log.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ContextSummary {
    /// Files (and symlinks) in the tar.
    pub files: usize,
    /// Bytes of file contents.
    pub bytes: u64,
}

/// The Dockerfile's name in the tar and whether it must be added (the context's own is not the same text).
pub(crate) fn dockerfile_name(spec: &DockerImageSpec, filter: &ContextFilter) -> (String, bool) {
    let own = Path::new(&spec.context).join("Dockerfile");
    let same =
        !filter.excluded(&own) && std::fs::read(&own).is_ok_and(|data| data == spec.dockerfile_contents.as_bytes());
    if same { ("Dockerfile".to_owned(), false) } else { (synthetic_dockerfile_name(&spec.dockerfile_contents), true) }
}

/// Chunks of the tar stream, sent to the HTTP body as they are written.
struct ChunkWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 256 * 1024;

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "closed"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Writes the context tar of `spec` into `tx` (blocking; run it on a blocking thread). On failure the
/// error is also sent down the stream, so the request to the daemon fails instead of ending early.
pub(crate) fn write_tar(
    spec: &DockerImageSpec,
    filter: &ContextFilter,
    dockerfile: &str,
    add_dockerfile: bool,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<ContextSummary, ContextError> {
    let abort = tx.clone();
    let result = write_entries(spec, filter, dockerfile, add_dockerfile, ChunkWriter { tx, buf: Vec::new() });
    if let Err(err) = &result {
        let _ = abort.blocking_send(Err(std::io::Error::other(err.to_string())));
    }
    result
}

/// A hash of what a build of `spec` is made from: the spec, and every context file the build would send (its
/// name, kind, size and modification time; a symlink's target). Equal hashes mean an equal build.
pub(crate) fn fingerprint(spec: &DockerImageSpec, filter: &ContextFilter) -> Result<String, ContextError> {
    use sha2::Digest;
    use std::os::unix::fs::MetadataExt;
    let root = PathBuf::from(&spec.context);
    if !root.is_absolute() || !root.is_dir() {
        return Err(ContextError::NotADirectory(spec.context.clone()));
    }
    let mut hash = sha2::Sha256::new();
    hash.update(serde_json::to_vec(spec).unwrap_or_default());
    let mut walk = walkdir::WalkDir::new(&root).min_depth(1).sort_by_file_name().into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(&root).to_path_buf();
            let source = e.into_io_error().unwrap_or_else(|| std::io::Error::other("filesystem loop"));
            ContextError::Io { path, source }
        })?;
        let path = entry.path();
        if filter.excluded(path) {
            if entry.file_type().is_dir() && filter.can_prune(path) {
                walk.skip_current_dir();
            }
            continue;
        }
        let meta = entry.metadata().map_err(|e| ContextError::Io {
            path: path.to_path_buf(),
            source: e.into_io_error().unwrap_or_else(|| std::io::Error::other("metadata")),
        })?;
        let rel = path.strip_prefix(&root).unwrap_or(path);
        let target = std::fs::read_link(path).map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
        let line = format!(
            "{}\0{:o}\0{}\0{}.{}\0{target}\n",
            rel.display(),
            meta.mode(),
            meta.len(),
            meta.mtime(),
            meta.mtime_nsec()
        );
        hash.update(line.as_bytes());
    }
    Ok(hash.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect())
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ContextError + '_ {
    move |source| {
        if source.kind() == std::io::ErrorKind::BrokenPipe {
            ContextError::Closed
        } else {
            ContextError::Io { path: path.to_path_buf(), source }
        }
    }
}

fn write_entries(
    spec: &DockerImageSpec,
    filter: &ContextFilter,
    dockerfile: &str,
    add_dockerfile: bool,
    out: ChunkWriter,
) -> Result<ContextSummary, ContextError> {
    let root = PathBuf::from(&spec.context);
    if !root.is_absolute() || !root.is_dir() {
        return Err(ContextError::NotADirectory(spec.context.clone()));
    }
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(false);
    let mut summary = ContextSummary::default();
    let mut dockerignore: Option<Vec<u8>> = None;
    let mut walk = walkdir::WalkDir::new(&root).min_depth(1).sort_by_file_name().into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(&root).to_path_buf();
            let source = e.into_io_error().unwrap_or_else(|| std::io::Error::other("filesystem loop"));
            ContextError::Io { path, source }
        })?;
        let path = entry.path();
        let file_type = entry.file_type();
        if filter.excluded(path) {
            if file_type.is_dir() && filter.can_prune(path) {
                walk.skip_current_dir();
            }
            continue;
        }
        let rel = path.strip_prefix(&root).unwrap_or(path);
        if add_dockerfile && rel == Path::new(".dockerignore") && file_type.is_file() {
            // Rewritten below with the added Dockerfile listed.
            dockerignore = Some(std::fs::read(path).map_err(io_err(path))?);
            continue;
        }
        if file_type.is_dir() {
            tar.append_dir(rel, path).map_err(io_err(path))?;
        } else if file_type.is_file() || file_type.is_symlink() {
            tar.append_path_with_name(path, rel).map_err(io_err(path))?;
            summary.files += 1;
            summary.bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
        }
        // Sockets, fifos and devices are not part of a build context.
    }
    if add_dockerfile {
        append_file(&mut tar, dockerfile, spec.dockerfile_contents.as_bytes(), &root)?;
        let mut ignore = dockerignore.unwrap_or_default();
        if !ignore.is_empty() && !ignore.ends_with(b"\n") {
            ignore.push(b'\n');
        }
        ignore.extend_from_slice(format!("{dockerfile}\n.dockerignore\n").as_bytes());
        append_file(&mut tar, ".dockerignore", &ignore, &root)?;
        summary.files += 1;
        summary.bytes += spec.dockerfile_contents.len() as u64;
    }
    let mut out = tar.into_inner().map_err(io_err(&root))?;
    out.flush().map_err(io_err(&root))?;
    Ok(summary)
}

fn append_file(tar: &mut tar::Builder<ChunkWriter>, name: &str, data: &[u8], root: &Path) -> Result<(), ContextError> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mtime(0);
    tar.append_data(&mut header, name, data).map_err(io_err(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(base: &str, patterns: &[&str]) -> IgnoreDef {
        IgnoreDef { base_path: base.into(), patterns: patterns.iter().map(|p| p.to_string()).collect() }
    }

    fn filter(defs: &[IgnoreDef]) -> ContextFilter {
        ContextFilter::new(defs).unwrap()
    }

    #[test]
    fn patterns_are_rooted_like_dockerignore() {
        let f = filter(&[def("/c", &["*.md", "/build", "node_modules", "**/*.log", "tmp/"])]);
        let x = |p: &str| f.excluded(Path::new(p));
        assert!(x("/c/README.md"));
        assert!(!x("/c/docs/guide.md"), "*.md is anchored at the context root");
        assert!(x("/c/build/out.o"));
        assert!(x("/c/node_modules/a/index.js"), "a matching parent excludes everything in it");
        assert!(!x("/c/web/node_modules/a.js"));
        assert!(x("/c/a/b/c.log"));
        assert!(x("/c/tmp/x"), "a trailing slash is cleaned away");
        assert!(!x("/c/src/main.rs"));
        assert!(!x("/elsewhere/README.md"));
    }

    #[test]
    fn only_is_everything_then_exceptions() {
        let f = filter(&[def("/c", &["**", "!src", "!package.json"])]);
        assert!(!f.excluded(Path::new("/c/src")));
        assert!(!f.excluded(Path::new("/c/src/deep/a.go")), "a re-included directory keeps its contents");
        assert!(!f.excluded(Path::new("/c/package.json")));
        assert!(f.excluded(Path::new("/c/other.txt")));
        assert!(f.excluded(Path::new("/c/lib/x.js")));
        assert!(f.can_prune(Path::new("/c/lib")), "nothing below lib can be re-included");
        let g = filter(&[def("/c", &["a", "!a/b/keep"])]);
        assert!(g.excluded(Path::new("/c/a/other")));
        assert!(!g.excluded(Path::new("/c/a/b/keep")));
        assert!(!g.can_prune(Path::new("/c/a")), "a/b/keep may be re-included");
        assert!(!g.can_prune(Path::new("/c/a/b")));
    }

    #[test]
    fn last_matching_pattern_wins_and_base_without_patterns_excludes_all() {
        let f = filter(&[def("/c", &["*.txt", "!keep.txt", "keep.txt"]), def("/c/Tiltfile", &[])]);
        assert!(f.excluded(Path::new("/c/keep.txt")));
        assert!(f.excluded(Path::new("/c/Tiltfile")));
        assert!(!f.excluded(Path::new("/c/Tiltfile.bak")));
    }

    #[test]
    fn bad_patterns_are_errors_naming_them() {
        let err = ContextFilter::new(&[def("/c", &["[z-a]"])]).unwrap_err();
        assert!(err.to_string().contains("[z-a]"), "{err}");
        let err = ContextFilter::new(&[def("/c", &["!"])]).unwrap_err();
        assert!(err.to_string().contains("illegal exclusion"), "{err}");
    }

    #[test]
    fn clean_follows_go() {
        assert_eq!(clean("./a//b/../c/"), "a/c");
        assert_eq!(clean("."), ".");
    }
}
