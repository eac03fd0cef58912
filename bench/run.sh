#!/usr/bin/env bash
# One command for every benchmark of tilt-rs, each printing a table next to peers measured in the same run:
#
#   bash bench/run.sh [all|apiserver|filewatch|tiltfile|memory] [options of that benchmark, e.g. --quick; see --help]
#
#   apiserver  issue 3: the API server vs a bare hyper floor and etcd                  (apiserver-bench)
#   filewatch  issue 4: file change → command start vs watchexec, entr and an inotifywait loop,
#              and a 100k-file tree's ready time, inotify watches, RSS and idle CPU   (filewatch-bench)
#   tiltfile   issue 5: Tiltfile evaluation, cold start of 50 serve_cmd resources vs a shell floor,
#              tilt ci                                                                 (tiltfile-bench)
#   memory     issue 12: `tilt up`'s VmRSS growth per stored object (10,000 ConfigMaps of ~1.3 KB
#              created by an external client), its overhead over the JSON size         (memory-bench)
#   web        issue 13: the web UI in headless Chromium: 1,000 resources' first render, a bulk disable
#              of 300, 200,000 log lines at 10,000/s, 50 idle pages' server cost      (web/bench/ui-bench.mjs)
#   hud        issue 16: the full-screen terminal view in tmux: key → screen latency with 1,000
#              resources and 100,000 log lines, idle CPU and memory vs --stream         (hud-bench)
#   sessions   issue 15: 100 `tilt up --api-context` sessions x 20 resources on one real control plane
#              (tests/kube): all-Ready time, file change → restart p50 vs the embedded store, kube-apiserver
#              requests per idle session, VmRSS vs the embedded store                 (bench/sessions.py)
#
# Without a name (or with `all`) it runs them all in turn; options after it go to each of them, so only
# common ones make sense there (--quick, --deadline N). It first installs what the chosen benchmarks
# compare against when missing and it can, going on without a peer (its column empty, with a note) when
# it cannot: Debian's etcd-server, entr and inotify-tools (one `apt-get update`, then `apt-get install`),
# watchexec-cli from crates.io (`cargo install --locked` into $target/tools, not on PATH), and the Python
# `kubernetes` client of tests/requirements.txt (pip) for the cold start's external poller. Then it
# builds `tilt` and the tilt-bench crate in release mode into its own target directory ($CARGO_TARGET_DIR,
# default target/bench, so it never waits on or disturbs the debug builds in target/) and runs the
# benchmarks, which print progress on stderr and their tables on stdout. The exit status is 0 whether
# targets pass or fail; it is non-zero only when a benchmark could not measure tilt-rs at all.
# (On a machine with systemd, installing etcd-server also enables Debian's own etcd service on port 2379;
# the benchmark does not use it: it starts throwaway instances on free loopback ports.)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target/bench}"

which_benches=(apiserver filewatch tiltfile memory web hud sessions)
case "${1:-}" in
  all) shift ;;
  apiserver|filewatch|tiltfile|memory|web|hud|sessions) which_benches=("$1"); shift ;;
  -h|--help)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 0 ;;
esac
wants() { local b; for b in "${which_benches[@]}"; do [ "$b" = "$1" ] && return 0; done; return 1; }

# --- peers -------------------------------------------------------------------------------------------
sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo -n); fi
packages=()
if wants apiserver && ! command -v etcd >/dev/null 2>&1 && [ ! -x /usr/bin/etcd ]; then packages+=(etcd-server); fi
if wants filewatch && ! command -v entr >/dev/null 2>&1; then packages+=(entr); fi
if wants filewatch && ! command -v inotifywait >/dev/null 2>&1; then packages+=(inotify-tools); fi
if wants web && ! command -v chromium >/dev/null 2>&1; then packages+=(chromium); fi
if wants hud && ! command -v tmux >/dev/null 2>&1; then packages+=(tmux); fi
if [ "${#packages[@]}" -gt 0 ]; then
  echo "bench: installing Debian packages: ${packages[*]}…" >&2
  if command -v apt-get >/dev/null 2>&1 \
    && timeout 300 "${sudo[@]}" apt-get update -qq >&2; then
    for p in "${packages[@]}"; do
      if timeout 300 "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >&2; then
        echo "bench: installed $p" >&2
      else
        echo "bench: could not install $p; its column will be empty" >&2
      fi
    done
  else
    echo "bench: apt-get is unavailable or failed; the columns of ${packages[*]} will be empty" >&2
  fi
fi

# The cold start's external poller is a Python script using the official client (tests/requirements.txt).
if wants tiltfile && command -v python3 >/dev/null 2>&1 && ! python3 -c 'import kubernetes' 2>/dev/null; then
  echo "bench: installing the Python kubernetes client (tests/requirements.txt)…" >&2
  timeout 300 python3 -m pip install -q -r "$root/tests/requirements.txt" >&2 \
    || echo "bench: could not install it; the cold start is then polled by the benchmark itself" >&2
fi

watchexec="$target/tools/bin/watchexec"
if wants filewatch && [ ! -x "$watchexec" ]; then
  if command -v watchexec >/dev/null 2>&1; then
    watchexec="$(command -v watchexec)"
  else
    echo "bench: building watchexec-cli from crates.io into $target/tools (a few minutes, once)…" >&2
    if ! CARGO_TARGET_DIR="$target/tools/build" timeout 1800 \
      cargo install --locked --quiet watchexec-cli --root "$target/tools" >&2; then
      echo "bench: could not build watchexec-cli; its column will be empty" >&2
    fi
  fi
fi

# --- build -------------------------------------------------------------------------------------------
crates=(tilt-bench)
if wants filewatch || wants tiltfile || wants memory || wants web || wants hud || wants sessions; then
  crates+=(tilt)
fi
if wants web && [ ! -d "$root/web/node_modules/playwright-core" ]; then
  echo "bench: npm ci --prefix web (playwright-core; it never downloads a browser)…" >&2
  npm ci --prefix "$root/web" --no-audit --no-fund >&2 || echo "bench: npm ci failed; the web benchmark will fail" >&2
fi
echo "bench: building ${crates[*]} (release) into $target…" >&2
(cd "$root" && CARGO_TARGET_DIR="$target" cargo build --release "${crates[@]/#/--package=}" >&2)

# --- run ---------------------------------------------------------------------------------------------
status=0
for b in "${which_benches[@]}"; do
  args=("$@")
  if [ "$b" = filewatch ] && [ -x "$watchexec" ]; then args=(--watchexec "$watchexec" "${args[@]}"); fi
  echo "bench: running $b-bench ${args[*]}" >&2
  if [ "$b" = web ]; then
    run=(env TILT_BIN="$target/release/tilt" node "$root/web/bench/ui-bench.mjs" "${args[@]}")
  elif [ "$b" = sessions ]; then
    run=(python3 "$root/bench/sessions.py" --tilt "$target/release/tilt" "${args[@]}")
  else
    run=("$target/release/$b-bench" "${args[@]}")
  fi
  if ! "${run[@]}"; then
    echo "bench: $b-bench could not measure tilt-rs (see above)" >&2
    status=1
  fi
  echo
done
exit "$status"
