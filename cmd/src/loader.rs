//! The Tiltfile loader the Tiltfile controller runs: Starlark evaluation from `tilt-config`.

use std::path::Path;

use tilt_config::{LoadOptions, load};
use tilt_controllers::tiltfile::{LoadResult, Loader};

/// Evaluates Tiltfiles with the Starlark implementation.
pub struct StarlarkLoader;

impl Loader for StarlarkLoader {
    fn load(&self, path: &Path, args: &[String]) -> LoadResult {
        if !path.is_file() {
            return LoadResult {
                error: Some(format!(
                    "No Tiltfile found at path {:?}. Check out https://docs.tilt.dev/tutorial.html",
                    path
                )),
                files: vec![path.to_path_buf()],
                ..Default::default()
            };
        }
        let opts = LoadOptions { path: path.to_path_buf(), args: args.to_vec() };
        match load(&opts) {
            Ok(loaded) => {
                LoadResult { objects: loaded.objects, files: loaded.files, output: loaded.output, error: None }
            }
            Err(err) => {
                LoadResult { objects: Vec::new(), files: err.files, output: err.output, error: Some(err.message) }
            }
        }
    }
}
