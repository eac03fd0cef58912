//! A real Kubernetes control plane for the tests (issue 14): etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler and kwok with one fake Node, started by `tests/kube/cluster.sh` from binaries that
//! `tests/kube/build.sh` built from Go modules into its cache.
//!
//! One cluster per test binary run: every test process of one nextest run (`NEXTEST_RUN_ID`) shares it,
//! the first one starts it under a file lock, and it is stopped when the nextest runner exits; under
//! `cargo test` (one process) it is stopped when that process exits. `cluster.sh`'s watcher does the
//! stopping, so a test that panics or is killed leaves nothing behind. Each test works in its own
//! namespace ([`KubeNamespace`]), deleted when dropped.
//!
//! Without the binaries, a test is skipped with a note, except under `CI=true`, where they are built (the
//! first build takes long; later ones hit the cache) and any failure to build or start fails the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct RealCluster {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
}

fn kube_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/kube")
}

/// The shared cluster, or `None` (after a note) when its binaries are not built and this is not CI.
pub fn real_cluster() -> Option<&'static RealCluster> {
    static CLUSTER: OnceLock<Option<RealCluster>> = OnceLock::new();
    CLUSTER.get_or_init(|| start_or_join("kube-real")).as_ref()
}

/// A second control plane, for the tests of `tilt up --api-context`: they install the namespaced tilt.dev CRDs
/// (`tilt crds --namespaced`), which cannot live beside the cluster-scoped ones of `real_cluster`.
pub fn scaleout_cluster() -> Option<&'static RealCluster> {
    static CLUSTER: OnceLock<Option<RealCluster>> = OnceLock::new();
    CLUSTER.get_or_init(|| start_or_join("kube-scaleout")).as_ref()
}

fn start_or_join(flavor: &str) -> Option<RealCluster> {
    let ci = std::env::var("CI").is_ok();
    let built = Command::new(kube_dir().join("build.sh")).arg("--dir").stdout(Stdio::null()).status();
    if !built.is_ok_and(|s| s.success()) {
        if !ci {
            eprintln!("skipping: the real control plane is not built (run tests/kube/build.sh, ~20 min once)");
            return None;
        }
        eprintln!("CI: building the real control plane (tests/kube/build.sh)");
        let status = Command::new(kube_dir().join("build.sh")).stdout(Stdio::null()).status();
        assert!(status.as_ref().is_ok_and(|s| s.success()), "tests/kube/build.sh failed: {status:?}");
    }

    // Shared by the processes of one nextest run and stopped when the runner exits; else this process's own.
    let (key, watch_pid) = match std::env::var("NEXTEST_RUN_ID") {
        Ok(run) => (format!("run-{run}"), std::os::unix::process::parent_id()),
        Err(_) => (format!("pid-{}", std::process::id()), std::process::id()),
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(flavor).join(key);
    std::fs::create_dir_all(&dir).unwrap();
    let lock = std::fs::File::create(dir.join(".start.lock")).unwrap();
    lock.lock().unwrap();
    let cluster = RealCluster { kubeconfig: dir.join("kubeconfig"), dir: dir.clone() };
    if cluster.kubeconfig.exists() && cluster.kubectl(&["get", "--raw", "/readyz"]).status.success() {
        return Some(cluster);
    }
    let start = Instant::now();
    let out = Command::new(kube_dir().join("cluster.sh"))
        .arg("start")
        .arg(&dir)
        .args(["--watch-pid", &watch_pid.to_string()])
        .stdin(Stdio::null())
        .output()
        .expect("running tests/kube/cluster.sh");
    assert!(
        out.status.success(),
        "tests/kube/cluster.sh start {} failed ({:?}):\n{}",
        dir.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("real control plane started in {:.1}s in {}", start.elapsed().as_secs_f64(), dir.display());
    Some(cluster)
}

impl RealCluster {
    pub fn kubectl_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(["--context", "real"]).args(args);
        cmd
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_command(args).stdin(Stdio::null()).output().expect("running kubectl")
    }

    /// Runs kubectl and asserts success; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {:?} (the cluster's logs: {})\nstdout: {}\nstderr: {}",
            out.status,
            self.dir.join("logs").display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `kubectl apply -f -` with this text.
    pub fn apply(&self, namespace: &str, yaml: &str) -> String {
        use std::io::Write;
        let mut child = self
            .kubectl_command(&["apply", "-n", namespace, "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running kubectl apply");
        child.stdin.take().unwrap().write_all(yaml.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "kubectl apply failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }
}

/// A fresh namespace for one test (with its default ServiceAccount, which pods need), deleted when dropped.
pub struct KubeNamespace<'a> {
    pub cluster: &'a RealCluster,
    pub name: String,
}

impl<'a> KubeNamespace<'a> {
    pub fn new(cluster: &'a RealCluster, prefix: &str) -> KubeNamespace<'a> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!("{prefix}-{}-{nanos:x}", std::process::id());
        cluster.kubectl_ok(&["create", "namespace", &name]);
        let ns = KubeNamespace { cluster, name };
        wait_until("the namespace's default ServiceAccount", Duration::from_secs(30), || {
            ns.cluster.kubectl(&["get", "serviceaccount", "default", "-n", &ns.name]).status.success()
        });
        ns
    }

    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        self.cluster.kubectl_ok(&all)
    }

    pub fn apply(&self, yaml: &str) -> String {
        self.cluster.apply(&self.name, yaml)
    }
}

impl Drop for KubeNamespace<'_> {
    fn drop(&mut self) {
        let _ = self.cluster.kubectl(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}

/// Polls `check` every 100 ms until it holds; panics after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
