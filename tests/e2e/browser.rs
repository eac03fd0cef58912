//! The web UI in a real browser: `node --test web/test/` drives Debian's headless Chromium (playwright-core)
//! against a real `tilt up` started from this build's `tilt` binary.

use std::path::Path;
use std::process::Command;

/// Whether the browser test can run here: node, web/node_modules (`npm ci --prefix web`) and Chromium. A
/// missing one fails under `CI=true` (`.ci/run` installs them), and elsewhere skips with a note.
fn browser_tools(web: &Path) -> bool {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing: Vec<String> = [
        (Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success()), "node".to_string()),
        (web.join("node_modules/playwright-core").is_dir(), "web/node_modules (npm ci --prefix web)".into()),
        (Path::new(&chromium).exists(), format!("{chromium} (apt-get install chromium)")),
    ]
    .into_iter()
    .filter(|(ok, _)| !ok)
    .map(|(_, what)| what)
    .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(std::env::var("CI").is_err(), "the browser test needs {}", missing.join(", "));
    eprintln!("skipping the browser test: missing {}", missing.join(", "));
    false
}

#[test]
fn the_web_ui_in_headless_chromium() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
    if !browser_tools(&web) {
        return;
    }
    let out = Command::new("node")
        .args(["--test", "--test-reporter=spec", "test/"])
        .current_dir(&web)
        .env("TILT_BIN", env!("CARGO_BIN_EXE_tilt"))
        .output()
        .expect("running node --test");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser tests failed:\n{report}");
    eprintln!("{report}");
}
