//! Helpers shared by the integration tests: a temporary project directory with a Tiltfile.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use tilt_config::{LoadError, LoadOptions, Loaded};

/// A temporary directory holding a Tiltfile and whatever files a test adds.
pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    /// An empty project.
    pub fn new() -> Project {
        Project { dir: tempfile::tempdir().expect("tempdir") }
    }

    /// A project whose Tiltfile is `tiltfile`.
    pub fn with_tiltfile(tiltfile: &str) -> Project {
        let p = Project::new();
        p.write("Tiltfile", tiltfile);
        p
    }

    /// The project directory (canonical, so paths compare equal to what the evaluator computes).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().canonicalize().expect("canonicalize")
    }

    /// Absolute path of `rel` in the project.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir().join(rel)
    }

    /// Writes a file (creating directories).
    pub fn write(&self, rel: &str, contents: &str) {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    /// Evaluates the Tiltfile with `args`.
    pub fn load_args(&self, args: &[&str]) -> Result<Loaded, LoadError> {
        tilt_config::load(&LoadOptions {
            path: self.path("Tiltfile"),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    /// Evaluates the Tiltfile, panicking on error.
    pub fn load(&self) -> Loaded {
        match self.load_args(&[]) {
            Ok(l) => l,
            Err(e) => panic!("Tiltfile failed:\n{}\noutput: {:?}", e.message, e.output),
        }
    }

    /// Evaluates the Tiltfile, expecting an error.
    pub fn load_err(&self) -> LoadError {
        match self.load_args(&[]) {
            Ok(l) => panic!("Tiltfile should have failed; objects: {:#?}", l.objects),
            Err(e) => e,
        }
    }
}

/// The object of `kind` named `name`.
pub fn find<'a>(loaded: &'a Loaded, kind: &str, name: &str) -> &'a Value {
    loaded
        .objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}; have {:?}", names(loaded)))
}

/// Whether there is an object of `kind` named `name`.
pub fn has(loaded: &Loaded, kind: &str, name: &str) -> bool {
    loaded.objects.iter().any(|o| o["kind"] == kind && o["metadata"]["name"] == name)
}

/// `kind/name` of every object, in order.
pub fn names(loaded: &Loaded) -> Vec<String> {
    loaded
        .objects
        .iter()
        .map(|o| format!("{}/{}", o["kind"].as_str().unwrap(), o["metadata"]["name"].as_str().unwrap()))
        .collect()
}

/// Evaluates a Tiltfile body that ends by printing a value, returning the printed lines.
pub fn eval_output(tiltfile: &str) -> Vec<String> {
    Project::with_tiltfile(tiltfile).load().output
}

/// `path` as a string.
pub fn s(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
