#!/usr/bin/env bash
# Regenerates go.mod/go.sum of this wrapper module for a Kubernetes release:
#   tests/kube/k8s/update.sh 1.37.2
# k8s.io/kubernetes requires its staging modules (k8s.io/api, k8s.io/client-go, ...) at
# v0.0.0 and maps them to ./staging/... with replace lines, which only apply inside its own
# repository. This module replaces each of them with the published v0.X.Y, taking the list
# from the replace lines of that release's own go.mod, so a new staging module is not missed.
set -euo pipefail
cd "$(dirname "$0")"
V=${1:?usage: update.sh 1.37.2}
SV=v0.${V#1.}
export GOFLAGS=-mod=mod
go mod download k8s.io/kubernetes@v"$V"
KMOD=$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/v$V.mod
echo "k8s.io/kubernetes v$V: $(grep '^go ' "$KMOD")"
rm -f go.mod go.sum
go mod init tilt.dev/tests/kube/k8s
go mod edit -go="$(sed -n "s/^go //p" "$KMOD")"
n=0
for m in $(sed -n 's|^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/.*|\1|p' "$KMOD"); do
	go mod edit -replace="$m=$m@$SV"
	n=$((n + 1))
done
echo "replaced $n staging modules with $SV"
go mod edit -require=k8s.io/kubernetes@v"$V"
nice -n 19 go mod tidy
