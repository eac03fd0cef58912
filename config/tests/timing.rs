//! Evaluation time of a large generated Tiltfile: 500 local resources built through ~5,000 lines of helper
//! Starlark. Prints the time; asserts only the result (timing is machine-dependent, and debug builds are slow).
//!
//! `CARGO_TARGET_DIR=/work/target-config cargo test --release -p tilt-config --test timing -- --nocapture`

mod common;

use std::time::{Duration, Instant};

use common::Project;

/// Helper functions, about 11 lines each.
const HELPERS: usize = 460;
/// Resources declared.
const RESOURCES: usize = 500;

fn helpers_star() -> String {
    let mut out = String::new();
    for i in 0..HELPERS {
        out.push_str(&format!(
            r#"def helper_{i}(name, port):
    env = {{}}
    for k in ["A", "B", "C"]:
        env[k + "_{i}"] = "%s-%d" % (name, port)
    parts = [name, str(port), "{i}"]
    if port % 2 == 0:
        parts.append("even")
    else:
        parts.append("odd")
    cmd = " ".join(parts)
    return struct(cmd = "echo " + cmd, env = env)
"#
        ));
    }
    out.push_str("HELPERS = [\n");
    for i in 0..HELPERS {
        out.push_str(&format!("    helper_{i},\n"));
    }
    out.push_str("]\n");
    out
}

const TILTFILE: &str = r#"
load('./helpers.star', 'HELPERS')
config.define_string('env')
cfg = config.parse()
for i in range(500):
    name = 'svc-%d' % i
    h = HELPERS[i % len(HELPERS)](name, 8000 + i)
    local_resource(
        name,
        cmd=h.cmd,
        serve_cmd='./serve.sh %d' % i,
        deps=['src/%s' % name, 'common'],
        ignore=['*.tmp'],
        env=h.env,
        resource_deps=['svc-%d' % (i - 1)] if i > 0 else [],
        labels=['group-%d' % (i % 10)],
        readiness_probe=probe(tcp_socket=tcp_socket_action(8000 + i)),
    )
"#;

#[test]
fn large_tiltfile_evaluation_time() {
    let p = Project::with_tiltfile(TILTFILE);
    let helpers = helpers_star();
    let helper_lines = helpers.lines().count();
    p.write("helpers.star", &helpers);

    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        let loaded = p.load();
        times.push(start.elapsed());
        assert_eq!(loaded.resources.len(), RESOURCES);
        // UIResource, ToggleButton, UIButton, FileWatch, two Cmds per resource.
        assert_eq!(loaded.objects.len(), RESOURCES * 6);
    }
    times.sort();
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!(
        "timing ({profile}): {RESOURCES} local_resources, {helper_lines} helper lines: min {:.1} ms, median {:.1} ms, max {:.1} ms",
        times[0].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
    );
}
