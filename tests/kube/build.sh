#!/usr/bin/env bash
# Builds the real control plane used by the tests from Go modules:
#   kube-apiserver, kube-controller-manager, kube-scheduler  (k8s/, k8s.io/kubernetes)
#   etcd                                                     (etcd/, go.etcd.io/etcd/server/v3)
#   kwok                                                     (kwok/, sigs.k8s.io/kwok/cmd/kwok)
# into ${TILT_KUBE_CACHE:-$HOME/.cache/tilt-rs/kube}/<key>/bin, where <key> is a hash of the
# wrapper modules' go.mod and go.sum files, so only the first build pays. A binary already
# there is not rebuilt. The last line printed on stdout is the bin directory. Beside it,
# share/kwok/{stage,crd} holds kwok's own Stage and CRD files, taken from the kwok module
# at the pinned version (cluster.sh applies them); nothing of them is kept in this repo.
#
#   tests/kube/build.sh            build what is missing, print the bin directory
#   tests/kube/build.sh --dir      print the bin directory only (exit 1 if incomplete)
#
# Builds run under `nice -n 19` with at most 2 parallel compile jobs (GOFLAGS=-p=2, or
# TILT_KUBE_BUILD_JOBS), because the machines have 2 cores shared with other work.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
K8S_VERSION=v1.37.2
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

cache_key() {
	(cd "$HERE" && cat k8s/go.mod k8s/go.sum etcd/go.mod etcd/go.sum kwok/go.mod kwok/go.sum) |
		sha256sum | cut -c1-16
}

CACHE=${TILT_KUBE_CACHE:-$HOME/.cache/tilt-rs/kube}
BIN=$CACHE/$(cache_key)/bin

SHARE=$(dirname "$BIN")/share

complete() {
	local b
	for b in "${BINARIES[@]}"; do [[ -x $BIN/$b ]] || return 1; done
	[[ -d $SHARE/kwok/stage && -d $SHARE/kwok/crd ]]
}

if [[ ${1:-} == --dir ]]; then
	echo "$BIN"
	complete
	exit
fi

if complete; then
	echo "tests/kube/build.sh: all binaries present" >&2
	echo "$BIN"
	exit 0
fi

mkdir -p "$BIN"
# One build at a time per cache entry (parallel test binaries, CI and a person).
exec 9>"$BIN/.lock"
flock 9
if complete; then
	echo "$BIN"
	exit 0
fi

# go.sum must already hold every module (-mod=readonly): a build never changes the wrappers.
export GOFLAGS="-p=${TILT_KUBE_BUILD_JOBS:-2} -mod=readonly -buildvcs=false"
export CGO_ENABLED=0
# k8s.io/kubernetes v1.37.2 says `go 1.26.0`: the machine's Go 1.26.8 is enough, no GOTOOLCHAIN.

k8s_ldflags() {
	local f="-s -w" p k v
	for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
		for kv in gitVersion=$K8S_VERSION gitMajor=1 gitMinor=37 gitTreeState=clean; do
			k=${kv%%=*} v=${kv#*=}
			f+=" -X $p.$k=$v"
		done
	done
	echo "$f"
}

build() { # name module-dir package [ldflags]
	local name=$1 dir=$2 pkg=$3 ldflags=${4:--s -w}
	if [[ -x $BIN/$name ]]; then return; fi
	echo "tests/kube/build.sh: building $name ($pkg) ..." >&2
	local t0=$SECONDS
	(cd "$HERE/$dir" && nice -n 19 go build -trimpath -ldflags="$ldflags" -o "$BIN/.$name.tmp" "$pkg")
	mv -f "$BIN/.$name.tmp" "$BIN/$name"
	echo "tests/kube/build.sh: built $name in $((SECONDS - t0))s" >&2
}

T0=$SECONDS
build etcd etcd .
build kwok kwok sigs.k8s.io/kwok/cmd/kwok
if [[ ! -d $SHARE/kwok/stage || ! -d $SHARE/kwok/crd ]]; then
	kwok_src=$(cd "$HERE/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
	rm -rf "$SHARE/kwok.tmp" && mkdir -p "$SHARE/kwok.tmp"
	cp -R "$kwok_src/kustomize/stage" "$SHARE/kwok.tmp/stage"
	cp -R "$kwok_src/kustomize/crd/bases" "$SHARE/kwok.tmp/crd"
	chmod -R u+w "$SHARE/kwok.tmp"
	rm -rf "$SHARE/kwok" && mv "$SHARE/kwok.tmp" "$SHARE/kwok"
fi
build kube-apiserver k8s ./cmd/kube-apiserver "$(k8s_ldflags)"
build kube-controller-manager k8s ./cmd/kube-controller-manager "$(k8s_ldflags)"
build kube-scheduler k8s ./cmd/kube-scheduler "$(k8s_ldflags)"
echo "tests/kube/build.sh: done in $((SECONDS - T0))s" >&2
echo "$BIN"
