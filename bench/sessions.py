#!/usr/bin/env python3
"""sessions-bench (issue 15): many `tilt up --api-context` sessions sharing one real Kubernetes control plane.

    python3 bench/sessions.py [--sessions 100] [--resources 20] [--quick] [--tilt PATH] [--idle 60]

It starts the real control plane of tests/kube (cluster.sh; binaries from tests/kube/build.sh's cache), installs
`tilt crds --namespaced`, then starts SESSIONS `tilt up --api-context real --session bench-N` at once, each on its
own copy of a Tiltfile of RESOURCES `local_resource`s (a `serve_cmd` with `deps` on a file of its own), and
measures from the outside, as a user waits:

- the time from the first exec until every resource of every session is Ready (polled through kube-apiserver);
- file change → server restart, p50 over samples (touch a resource's dep, wait until its Cmd's
  `status.running.startedAt` moves), against the same Tiltfile in one embedded-store `tilt up` measured in the
  same run (target: within 2x of it);
- kube-apiserver requests per idle session per minute (its own `apiserver_request_total` over an idle window,
  tilt.dev and Lease requests apart, less the cluster's own traffic measured before the sessions started; target
  ~0 for tilt.dev: watches, no polling);
- each session's `tilt up` VmRSS (median) against the embedded-store `tilt up`'s (target: at most that).

It prints a table `metric | shared | embedded | ratio | target | verdict` and exits 0 whether targets are met or
not; non-zero only when it could not measure. `bash bench/run.sh sessions` builds tilt in release mode and runs it.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(f"sessions-bench: {msg}", file=sys.stderr, flush=True)


def kubectl(kubeconfig, context, *args, check=True, input=None):
    out = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "--context", context, *args],
                         input=input, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {out.stderr.strip()}")
    return out.stdout


def tiltfile(resources):
    lines = [f"local_resource('r{i}', serve_cmd='sleep 86400', deps=['f{i}.txt'])" for i in range(resources)]
    return "\n".join(lines) + "\n"


def project(base, name, resources):
    d = os.path.join(base, name)
    os.makedirs(d)
    with open(os.path.join(d, "Tiltfile"), "w") as f:
        f.write(tiltfile(resources))
    for i in range(resources):
        with open(os.path.join(d, f"f{i}.txt"), "w") as f:
            f.write("0\n")
    return d


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def spawn(cmd, cwd, env):
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def stop(procs):
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + 20
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def ready_counts(kubeconfig, context, namespace=None):
    """Ready `r*` UIResources per namespace (one LIST)."""
    args = ["get", "uiresources", "-o", "json"] + (["-n", namespace] if namespace else ["-A"])
    items = json.loads(kubectl(kubeconfig, context, *args, check=False) or '{"items": []}')["items"]
    counts = {}
    for u in items:
        ns = u["metadata"].get("namespace", "")
        name = u["metadata"].get("annotations", {}).get("tilt.dev/name", u["metadata"]["name"])
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in u.get("status", {}).get("conditions", []))
        if name.startswith("r") and ready:
            counts[ns] = counts.get(ns, 0) + 1
    return counts


def started_at(kubeconfig, context, namespace, cmd):
    args = ["get", "cmds", "-o", "json"] + (["-n", namespace] if namespace else [])
    items = json.loads(kubectl(kubeconfig, context, *args, check=False) or '{"items": []}')["items"]
    for c in items:
        name = c["metadata"].get("annotations", {}).get("tilt.dev/name", c["metadata"]["name"])
        if name == cmd:
            return (c.get("status", {}).get("running") or {}).get("startedAt")
    return None


def restart_latency(kubeconfig, context, namespace, proj, samples):
    """Touch f0.txt and wait until r0:serve's startedAt moves; seconds, per sample."""
    out = []
    for n in range(samples):
        before = started_at(kubeconfig, context, namespace, "r0:serve")
        t0 = time.time()
        with open(os.path.join(proj, "f0.txt"), "w") as f:
            f.write(f"{n + 1}\n")
        while time.time() - t0 < 30:
            now = started_at(kubeconfig, context, namespace, "r0:serve")
            if now and now != before:
                out.append(time.time() - t0)
                break
            time.sleep(0.01)
        time.sleep(0.5)
    return out


def metric_total(kubeconfig, predicate):
    total = 0.0
    for line in kubectl(kubeconfig, "real", "get", "--raw", "/metrics").splitlines():
        if line.startswith("apiserver_request_total{") and predicate(line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def request_counts(kubeconfig):
    tilt = metric_total(kubeconfig, lambda l: 'group="tilt.dev"' in l)
    lease = metric_total(kubeconfig, lambda l: 'resource="leases"' in l and 'group="coordination.k8s.io"' in l)
    everything = metric_total(kubeconfig, lambda l: True)
    return tilt, lease, everything


def fmt(v, unit):
    if v is None:
        return "—"
    return {"ms": f"{v * 1000:.0f} ms", "s": f"{v:.1f} s", "MB": f"{v / 1024:.1f} MB",
            "n": f"{v:.2f}"}[unit]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--resources", type=int, default=20)
    ap.add_argument("--samples", type=int, default=9, help="restart samples per store")
    ap.add_argument("--idle", type=int, default=60, help="idle window in seconds")
    ap.add_argument("--quick", action="store_true", help="10 sessions, a 20 s idle window")
    ap.add_argument("--tilt", default=os.path.join(ROOT, "target", "bench", "release", "tilt"))
    ap.add_argument("--deadline", type=int, default=1200)
    a = ap.parse_args()
    if a.quick:
        a.sessions, a.idle, a.samples = min(a.sessions, 10), 20, 5
    if not os.access(a.tilt, os.X_OK):
        sys.exit(f"sessions-bench: no tilt binary at {a.tilt} (--tilt)")
    started = time.time()
    work = tempfile.mkdtemp(prefix="sessions-bench-")
    cluster = os.path.join(work, "cluster")
    procs = []
    try:
        log("starting the real control plane (tests/kube/cluster.sh)")
        subprocess.run([os.path.join(ROOT, "tests/kube/build.sh")], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([os.path.join(ROOT, "tests/kube/cluster.sh"), "start", cluster, "--watch-pid",
                        str(os.getpid())], check=True, stdout=subprocess.DEVNULL)
        kc = os.path.join(cluster, "kubeconfig")
        crds = subprocess.run([a.tilt, "crds", "--namespaced"], check=True, capture_output=True, text=True).stdout
        kubectl(kc, "real", "apply", "--server-side", "-f", "-", input=crds)
        kubectl(kc, "real", "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        home = os.path.join(work, "home")
        os.makedirs(os.path.join(home, ".kube"))
        shutil.copy(kc, os.path.join(home, ".kube", "config"))
        env = dict(os.environ, HOME=home, KUBECONFIG=os.path.join(home, ".kube", "config"), TILT_PORT="0")
        env.pop("TILT_CONFIG", None)

        # The cluster's own traffic (controller-manager, scheduler, kwok) over an idle window, as a baseline.
        b0, b_t = request_counts(kc), time.time()
        time.sleep(min(a.idle, 20))
        b1 = request_counts(kc)
        baseline = (b1[2] - b0[2]) / (time.time() - b_t) * 60

        projects = [project(work, f"s{i}", a.resources) for i in range(a.sessions)]
        log(f"starting {a.sessions} sessions of {a.resources} resources")
        t0 = time.time()
        for i, proj in enumerate(projects):
            procs.append(spawn([a.tilt, "up", "--stream", "--api-context", "real", "--session", f"bench-{i}",
                                "--port", "0"], proj, env))
        want = {f"tilt-bench-{i}" for i in range(a.sessions)}
        all_ready = None
        while time.time() - started < a.deadline:
            counts = ready_counts(kc, "real")
            done = sum(1 for ns in want if counts.get(ns, 0) >= a.resources)
            if done == len(want):
                all_ready = time.time() - t0
                break
            dead = [p for p in procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{len(dead)} tilt up exited early (status {dead[0].returncode})")
            time.sleep(0.5)
        log(f"all ready after {all_ready}")

        # Idle: requests over the window, per session and minute.
        time.sleep(5)
        r0, r_t = request_counts(kc), time.time()
        time.sleep(a.idle)
        r1 = request_counts(kc)
        minutes = (time.time() - r_t) / 60
        tilt_idle = (r1[0] - r0[0]) / a.sessions / minutes
        lease_idle = (r1[1] - r0[1]) / a.sessions / minutes
        all_idle = ((r1[2] - r0[2]) / minutes - baseline) / a.sessions

        shared_rss = [r for r in (rss_kb(p.pid) for p in procs) if r]
        shared_restarts = restart_latency(kc, "real", "tilt-bench-0", projects[0], a.samples)
        stop(procs)
        procs = []

        # The same Tiltfile in one embedded-store tilt up.
        emb_home = os.path.join(work, "emb-home")
        os.makedirs(emb_home)
        emb_proj = project(work, "embedded", a.resources)
        emb_env = dict(env, HOME=emb_home, KUBECONFIG=os.path.join(emb_home, ".kube", "config"))
        emb = spawn([a.tilt, "up", "--stream", "--port", "0", "--api-port", "0"], emb_proj, emb_env)
        procs.append(emb)
        ekc = os.path.join(emb_home, ".tilt-dev", "config")
        t_emb = time.time()
        while time.time() - t_emb < 120:
            if os.path.exists(ekc) and ready_counts(ekc, "tilt", "").get("", 0) >= a.resources:
                break
            time.sleep(0.2)
        time.sleep(3)
        emb_rss = rss_kb(emb.pid)
        emb_restarts = restart_latency(ekc, "tilt", None, emb_proj, a.samples)
        stop(procs)
        procs = []

        p50 = lambda xs: statistics.median(xs) if xs else None
        rows = [
            ("sessions x resources", f"{a.sessions} x {a.resources}", "", "", "", ""),
            ("all sessions Ready, from exec", fmt(all_ready, "s"), "—", "", "", ""),
        ]
        sr, er = p50(shared_restarts), p50(emb_restarts)
        ratio = sr / er if sr and er else None
        rows.append(("file change → server restart p50", fmt(sr, "ms"), fmt(er, "ms"),
                     f"{ratio:.2f}x" if ratio else "—", "≤ 2x", "PASS" if ratio and ratio <= 2 else "FAIL"))
        rows.append(("tilt.dev requests / idle session / min", fmt(tilt_idle, "n"), "0", "", "≈ 0",
                     "PASS" if tilt_idle < 0.5 else "FAIL"))
        rows.append(("Lease requests / idle session / min", fmt(lease_idle, "n"), "—", "", "(renewal every 5 s)", ""))
        rows.append(("all requests / idle session / min (less the cluster's own)", fmt(all_idle, "n"), "—", "", "",
                     ""))
        srss = p50(shared_rss)
        rratio = srss / emb_rss if srss and emb_rss else None
        rows.append(("VmRSS of one tilt up (median)", fmt(srss, "MB"), fmt(emb_rss, "MB"),
                     f"{rratio:.2f}x" if rratio else "—", "≤ embedded",
                     "PASS" if rratio and rratio <= 1 else "FAIL"))
        widths = [max(len(str(r[i])) for r in rows + [("metric", "shared", "embedded", "ratio", "target",
                                                        "verdict")]) for i in range(6)]
        head = ("metric", "shared", "embedded", "ratio", "target", "verdict")
        for r in [head] + rows:
            print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
        print(f"(restart samples: shared {[round(x * 1000) for x in shared_restarts]} ms, embedded "
              f"{[round(x * 1000) for x in emb_restarts]} ms; the cluster's own traffic {baseline:.0f} requests/min)")
    finally:
        stop(procs)
        subprocess.run([os.path.join(ROOT, "tests/kube/cluster.sh"), "stop", cluster], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
