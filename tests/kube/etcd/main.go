// Wrapper main for etcd (see tests/kube/README.md). A separate module, so that etcd's
// dependencies do not mix with Kubernetes'; `go install` of etcd's server module fails
// on its replace lines.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
