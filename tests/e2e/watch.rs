//! Live re-evaluation when the Tiltfile's inputs do not exist (yet): a Tiltfile calling `config.parse()`
//! without a `tilt_config.json`, and files read with a default from directories that do not exist.

use std::io::Write;
use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::Api;
use tilt_apis::{FileWatch, UIResource};

use crate::common::{TiltUp, poll};

/// How long a Tiltfile edit may take to show as a UIResource. The target is well under a second; the
/// margin is for a loaded 2-core CI machine.
const RELOAD_DEADLINE: Duration = Duration::from_secs(3);

async fn names(resources: &Api<UIResource>) -> Vec<String> {
    // Without the Tiltfile's own resource, which `tilt up` declares whatever the Tiltfile says.
    let mut names: Vec<String> = resources
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|r| r.name_any())
        .filter(|n| n != "(Tiltfile)")
        .collect();
    names.sort();
    names
}

/// Waits up to [`RELOAD_DEADLINE`] for the UIResources to be `want`; returns how long it took.
async fn wait_for_resources(resources: &Api<UIResource>, want: &[&str], what: &str) -> Duration {
    wait_until(resources, what, |names| names == want).await
}

/// Waits up to [`RELOAD_DEADLINE`] until the sorted UIResource names satisfy `check`; returns how long it
/// took.
async fn wait_until(resources: &Api<UIResource>, what: &str, check: impl Fn(&[String]) -> bool) -> Duration {
    let start = Instant::now();
    loop {
        let got = names(resources).await;
        if check(&got) {
            return start.elapsed();
        }
        assert!(start.elapsed() < RELOAD_DEADLINE, "{what}: UIResources {got:?} after {RELOAD_DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_tiltfile_parsing_config_without_tilt_config_json_reloads_on_edits_and_new_files() {
    let home = tempfile::tempdir().unwrap();
    let tiltfile = home.path().join("Tiltfile");
    std::fs::write(
        &tiltfile,
        "config.define_string('env')\n\
         cfg = config.parse()\n\
         local_resource('svc-' + cfg.get('env', 'dev'), cmd='true')\n\
         extra = str(read_file('gen/out/extra.txt', default='')).strip()\n\
         if extra:\n    local_resource(extra, cmd='true')\n",
    )
    .unwrap();
    assert!(!home.path().join("tilt_config.json").exists());
    let tilt = TiltUp::start_in(home);
    let client = tilt.client().await;
    let resources: Api<UIResource> = Api::all(client.clone());
    let watches: Api<FileWatch> = Api::all(client);

    // The Tiltfile's FileWatch watches, with no error, although two of the paths it names do not exist.
    let status = poll("the configs FileWatch to watch", || async {
        let status = watches.get("configs:(Tiltfile)").await.ok()?.status?;
        status.monitor_start_time.is_some().then_some(status)
    })
    .await;
    assert!(status.error.is_empty(), "{}", status.error);
    let fw = watches.get("configs:(Tiltfile)").await.unwrap();
    let watched = &fw.spec.watched_paths;
    for missing in ["tilt_config.json", "gen/out/extra.txt"] {
        let path = tilt.home.path().join(missing);
        assert!(watched.contains(&path.to_string_lossy().into_owned()), "{missing} in {watched:?}");
    }
    wait_for_resources(&resources, &["svc-dev"], "the first load").await;

    // Appending a resource to the Tiltfile while `tilt up` runs.
    let mut file = std::fs::OpenOptions::new().append(true).open(&tiltfile).unwrap();
    writeln!(file, "local_resource('appended', cmd='true')").unwrap();
    drop(file);
    let appended = wait_for_resources(&resources, &["appended", "svc-dev"], "after appending to the Tiltfile").await;
    println!("Tiltfile edit -> new UIResource in {appended:?}");

    // Creating tilt_config.json, which did not exist, re-runs config.parse().
    let start = Instant::now();
    std::fs::write(tilt.home.path().join("tilt_config.json"), r#"{"env": "prod"}"#).unwrap();
    let renamed =
        wait_until(&resources, "after creating tilt_config.json", |names| names.iter().any(|n| n == "svc-prod")).await;
    wait_for_resources(&resources, &["appended", "svc-prod"], "the old resource deleted").await;
    println!("tilt_config.json created -> new UIResource in {renamed:?}, the old one deleted in {:?}", start.elapsed());

    // A file read with a default, created with the directories it is in.
    std::fs::create_dir_all(tilt.home.path().join("gen/out")).unwrap();
    std::fs::write(tilt.home.path().join("gen/out/extra.txt"), "generated\n").unwrap();
    let generated =
        wait_for_resources(&resources, &["appended", "generated", "svc-prod"], "after creating gen/out/extra.txt")
            .await;
    println!("gen/out/extra.txt created in new directories -> reloaded in {generated:?}");
    assert!(watches.get("configs:(Tiltfile)").await.unwrap().status.unwrap().error.is_empty());
}
