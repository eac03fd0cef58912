//! Which paths a FileWatch ignores.
//!
//! Three sources, all in gitignore syntax matched by the `ignore` crate relative to their base directory:
//! the spec's `ignores` (one matcher per `basePath`; a `basePath` without patterns ignores everything under
//! it), the `.tiltignore` file at the top of each watched directory, and `.git`, which is always ignored.
//! A path is ignored when any matcher ignores it; a `!negation` only re-includes paths within its own source.

use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use tilt_apis::IgnoreDef;

use super::Error;

/// The ignore file read at the top of every watched directory.
pub(crate) const TILTIGNORE: &str = ".tiltignore";

/// Ignored in every watched directory, at any depth.
const ALWAYS_IGNORED: &[&str] = &[".git"];

/// One source of ignore rules.
#[derive(Debug)]
enum Rule {
    /// Everything at or under this path.
    Everything(PathBuf),
    /// Gitignore patterns relative to the matcher's root.
    Patterns(Gitignore),
}

/// The combined ignore rules of one FileWatch.
#[derive(Debug)]
pub(crate) struct IgnoreSet {
    rules: Vec<Rule>,
}

impl IgnoreSet {
    /// Builds the rules from `ignores` plus, for each of `watched_dirs`, `.git` and its `.tiltignore`.
    pub(crate) fn new<'a>(
        watched_dirs: impl IntoIterator<Item = &'a Path>,
        ignores: &[IgnoreDef],
    ) -> Result<IgnoreSet, Error> {
        let mut rules = Vec::new();
        for dir in watched_dirs {
            let mut builder = GitignoreBuilder::new(dir);
            for line in ALWAYS_IGNORED {
                add_line(&mut builder, dir, None, line)?;
            }
            let file = dir.join(TILTIGNORE);
            match std::fs::read_to_string(&file) {
                Ok(text) => {
                    for line in text.lines() {
                        add_line(&mut builder, dir, Some(&file), line)?;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(Error::Io { path: file, source }),
            }
            rules.push(Rule::Patterns(build(&builder, dir)?));
        }
        for def in ignores {
            let base = Path::new(&def.base_path);
            if def.patterns.is_empty() {
                rules.push(Rule::Everything(base.to_path_buf()));
                continue;
            }
            let mut builder = GitignoreBuilder::new(base);
            for pattern in &def.patterns {
                add_line(&mut builder, base, None, pattern)?;
            }
            rules.push(Rule::Patterns(build(&builder, base)?));
        }
        Ok(IgnoreSet { rules })
    }

    /// Whether `path` (absolute) or one of its parents up to a rule's base is ignored.
    pub(crate) fn is_ignored(&self, path: &Path, is_dir: bool) -> bool {
        self.rules.iter().any(|rule| match rule {
            Rule::Everything(base) => path.starts_with(base),
            Rule::Patterns(gitignore) => match path.strip_prefix(gitignore.path()) {
                // A base directory is never matched by its own patterns, as in git.
                Ok(relative) if !relative.as_os_str().is_empty() => {
                    gitignore.matched_path_or_any_parents(relative, is_dir).is_ignore()
                }
                _ => false,
            },
        })
    }
}

fn add_line(builder: &mut GitignoreBuilder, base: &Path, from: Option<&Path>, line: &str) -> Result<(), Error> {
    builder
        .add_line(from.map(Path::to_path_buf), line)
        .map(|_| ())
        .map_err(|source| Error::Pattern { base: base.to_path_buf(), source })
}

fn build(builder: &GitignoreBuilder, base: &Path) -> Result<Gitignore, Error> {
    builder.build().map_err(|source| Error::Pattern { base: base.to_path_buf(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(base: &str, patterns: &[&str]) -> IgnoreDef {
        IgnoreDef { base_path: base.into(), patterns: patterns.iter().map(|p| p.to_string()).collect() }
    }

    fn set(ignores: &[IgnoreDef]) -> IgnoreSet {
        IgnoreSet::new([], ignores).unwrap()
    }

    #[test]
    fn patterns_are_gitignore_relative_to_their_base() {
        let s = set(&[def("/p", &["node_modules", "/build", "*.log", "!keep.log", "tmp/"])]);
        assert!(s.is_ignored(Path::new("/p/node_modules"), true));
        assert!(s.is_ignored(Path::new("/p/web/node_modules/x/y.js"), false), "unanchored matches at any depth");
        assert!(s.is_ignored(Path::new("/p/build/out.o"), false));
        assert!(!s.is_ignored(Path::new("/p/src/build"), true), "a leading slash anchors at the base");
        assert!(s.is_ignored(Path::new("/p/src/a.log"), false));
        assert!(!s.is_ignored(Path::new("/p/src/keep.log"), false));
        assert!(s.is_ignored(Path::new("/p/tmp"), true));
        assert!(!s.is_ignored(Path::new("/p/tmp"), false), "a trailing slash matches directories only");
        assert!(!s.is_ignored(Path::new("/other/node_modules"), true), "outside the base");
        assert!(!s.is_ignored(Path::new("/p"), true));
    }

    #[test]
    fn a_base_path_without_patterns_ignores_everything_under_it() {
        let s = set(&[def("/p/vendor", &[])]);
        assert!(s.is_ignored(Path::new("/p/vendor"), true));
        assert!(s.is_ignored(Path::new("/p/vendor/a/b.go"), false));
        assert!(!s.is_ignored(Path::new("/p/vendored.go"), false));
    }

    #[test]
    fn git_is_always_ignored_and_tiltignore_is_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TILTIGNORE), "# comment\n*.tmp\ndist/\n").unwrap();
        let s = IgnoreSet::new([dir.path()], &[]).unwrap();
        let p = |rel: &str| dir.path().join(rel);
        assert!(s.is_ignored(&p(".git"), true));
        assert!(s.is_ignored(&p(".git/objects/ab"), false));
        assert!(s.is_ignored(&p("sub/.git"), false), "a worktree's .git file");
        assert!(s.is_ignored(&p("x.tmp"), false));
        assert!(s.is_ignored(&p("dist"), true));
        assert!(!s.is_ignored(&p("src/main.rs"), false));
        assert!(!s.is_ignored(&p(TILTIGNORE), false));
    }

    #[test]
    fn bad_patterns_are_errors() {
        let err = IgnoreSet::new([], &[def("/p", &["a[b"])]);
        // An unclosed class is accepted by gitignore semantics; an invalid range is not.
        assert!(err.is_ok());
        let err = IgnoreSet::new([], &[def("/p", &["[z-a]"])]).unwrap_err();
        assert!(err.to_string().contains("/p"), "{err}");
    }
}
