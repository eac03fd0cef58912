#!/usr/bin/env bash
# One command for the API server benchmarks of issue 3:
#
#   bash bench/run.sh [apiserver-bench options, e.g. --quick, --no-etcd; see --help]
#
# Installs Debian's etcd-server when etcd is missing and it can (going on without etcd when it cannot),
# builds the tilt-bench crate in release mode into its own target directory ($CARGO_TARGET_DIR, default
# target/bench, so it never waits on or disturbs the debug builds in target/), then runs apiserver-bench,
# which prints progress on stderr and the report table on stdout. Exits 0 whether targets pass or fail.
# (On a machine with systemd, installing etcd-server also enables Debian's own etcd service on port 2379;
# the benchmark does not use it: it starts throwaway instances on free loopback ports.)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target/bench}"

if ! command -v etcd >/dev/null 2>&1 && [ ! -x /usr/bin/etcd ]; then
  echo "bench: etcd is not installed; trying Debian's etcd-server…" >&2
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo -n); fi
  if command -v apt-get >/dev/null 2>&1 \
    && timeout 300 "${sudo[@]}" apt-get update -qq >&2 \
    && timeout 300 "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >&2; then
    echo "bench: installed etcd-server" >&2
  else
    echo "bench: could not install etcd-server; the etcd column will be empty" >&2
  fi
fi

echo "bench: building tilt-bench (release) into $target…" >&2
(cd "$root" && CARGO_TARGET_DIR="$target" cargo build --release -p tilt-bench >&2)
exec "$target/release/apiserver-bench" "$@"
