#!/usr/bin/env bash
# A real Kubernetes control plane for the tests, on loopback only:
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok with one fake Node.
#
#   tests/kube/cluster.sh start DIR [--watch-pid PID]
#       Starts everything with its state, certificates and logs under DIR, waits until the Node is
#       Ready, writes DIR/kubeconfig (context `real`, bearer token, CA-verified TLS; context `alice`, a user
#       RBAC grants nothing to) and DIR/cluster.env.
#       With --watch-pid, a watcher stops the cluster when process PID exits.
#   tests/kube/cluster.sh stop DIR
#       Stops every process that start started (each runs in its own process group), and checks
#       that none is left.
#   tests/kube/cluster.sh status DIR
#
# Binaries come from tests/kube/build.sh's cache (or $TILT_KUBE_BIN). kubectl, curl, openssl and
# python3 (for free ports) must be on PATH.
#
# kwok serves the kubelet API for its Node (logs, exec, attach, port-forward) on a loopback port:
#   - every pod's logs default to DIR/kwok/pod.log (CRI log format, followed), exec runs local
#     commands in DIR/kwok, and port-forward to any port runs `cat` (an echo), from kwok's --config;
#   - per pod, tests create Logs / PortForward / Exec / Attach objects (kwok.x-k8s.io/v1alpha1),
#     and Stage objects change the simulated lifecycle (the defaults are kwok's "fast" stages).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
NODE_NAME=kwok-node-0

die() {
	echo "cluster.sh: $*" >&2
	exit 1
}
log() { echo "cluster.sh: $*" >&2; }

usage() { die "usage: cluster.sh start DIR [--watch-pid PID] | stop DIR | status DIR"; }

[[ $# -ge 2 ]] || usage
CMD=$1
DIR=$2
shift 2
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
RUN=$DIR/run

# ---------------------------------------------------------------------------------------------
# processes: each one in its own process group (setsid), its pid (= pgid) in $RUN/NAME.pid

spawn() { # name cmd... ; output to $DIR/logs/NAME.log
	local name=$1
	shift
	mkdir -p "$RUN" "$DIR/logs"
	setsid bash -c 'echo $$ >"$0"; exec "$@"' "$RUN/$name.pid" "$@" \
		</dev/null >>"$DIR/logs/$name.log" 2>&1 &
	local i
	for i in $(seq 1 100); do
		[[ -s $RUN/$name.pid ]] && return 0
		sleep 0.01
	done
	die "$name did not start"
}

alive() { # name
	local pid
	pid=$(cat "$RUN/$1.pid" 2>/dev/null) || return 1
	local stat
	stat=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
	[[ $stat != Z* ]]
}

group_members() { # pgid -> pids in that process group (zombies, exited but not yet reaped by init, aside)
	ps -e -o pid=,pgid=,stat= | awk -v g="$1" '$2 == g && $3 !~ /^Z/ { print $1 }'
}

stop_group() { # seconds name... : SIGTERM to each process group, SIGKILL what is left after the wait
	local secs=$1
	shift
	local self_pgid name pid i left
	self_pgid=$(ps -o pgid= $$ | tr -d ' ')
	local pids=()
	for name in "$@"; do
		pid=$(cat "$RUN/$name.pid" 2>/dev/null) || continue
		# the watcher runs `stop` itself: do not signal our own group
		[[ -n $pid && $pid != "$self_pgid" ]] || continue
		pids+=("$pid")
		kill -TERM -- "-$pid" 2>/dev/null || true
	done
	for i in $(seq 1 $((secs * 10))); do
		left=0
		for pid in "${pids[@]}"; do
			[[ -n $(group_members "$pid") ]] && left=1
		done
		[[ $left == 0 ]] && break
		sleep 0.1
	done
	for pid in "${pids[@]}"; do
		if [[ -n $(group_members "$pid") ]]; then
			log "process group $pid did not stop within ${secs}s of SIGTERM: SIGKILL"
			kill -KILL -- "-$pid" 2>/dev/null || true
		fi
	done
	for name in "$@"; do rm -f "$RUN/$name.pid"; done
}

stop_all() {
	[[ -d $RUN ]] || return 0
	local f name first=() all=() left=0 pid self_pgid
	self_pgid=$(ps -o pgid= $$ | tr -d ' ')
	for f in "$RUN"/*.pid; do
		[[ -e $f ]] || continue
		name=$(basename "$f" .pid)
		pid=$(cat "$f" 2>/dev/null) || true
		[[ $pid == "$self_pgid" ]] || all+=("$pid")
		[[ $name == kube-apiserver || $name == etcd ]] || first+=("$name")
	done
	# clients first, then the apiserver (its shutdown still writes to etcd), then etcd
	stop_group 10 "${first[@]}"
	stop_group 20 kube-apiserver
	stop_group 10 etcd
	sleep 0.2
	for pid in "${all[@]}"; do
		if [[ -n $pid && -n $(group_members "$pid") ]]; then
			log "process group $pid still has: $(group_members "$pid" | tr '\n' ' ')"
			left=1
		fi
	done
	return $left
}

wait_for() { # description seconds component-that-must-stay-alive cmd...
	local what=$1 secs=$2 comp=$3
	shift 3
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		if [[ -n $comp ]] && ! alive "$comp"; then
			log "$comp exited while waiting for $what; last lines of $DIR/logs/$comp.log:"
			tail -n 30 "$DIR/logs/$comp.log" >&2 || true
			return 1
		fi
		if ((SECONDS >= deadline)); then
			log "timed out after ${secs}s waiting for $what"
			[[ -n $comp ]] && tail -n 30 "$DIR/logs/$comp.log" >&2
			return 1
		fi
		sleep 0.2
	done
}

free_ports() { # n -> n distinct free loopback ports
	python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
' "$1"
}

# ---------------------------------------------------------------------------------------------
# certificates: a CA, the apiserver's serving cert, kwok's serving cert, the service-account key

make_pki() {
	local p=$DIR/pki
	mkdir -p "$p"
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=tilt-rs-test-ca" \
		-keyout "$p/ca.key" -out "$p/ca.crt" 2>/dev/null
	leaf() { # name CN SANs
		openssl req -newkey rsa:2048 -nodes -subj "/CN=$2" -keyout "$p/$1.key" -out "$p/$1.csr" 2>/dev/null
		printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' "$3" >"$p/$1.ext"
		openssl x509 -req -in "$p/$1.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
			-days 3650 -extfile "$p/$1.ext" -out "$p/$1.crt" 2>/dev/null
		rm -f "$p/$1.csr" "$p/$1.ext"
	}
	leaf apiserver kube-apiserver \
		"IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
	leaf kwok "$NODE_NAME" "IP:127.0.0.1,DNS:localhost,DNS:$NODE_NAME"
	openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
	openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
	chmod 600 "$p"/*.key
}

# ---------------------------------------------------------------------------------------------

start() {
	local watch_pid=
	while [[ $# -gt 0 ]]; do
		case $1 in
		--watch-pid) watch_pid=$2; shift 2 ;;
		*) usage ;;
		esac
	done
	for c in kubectl curl openssl python3 setsid; do
		command -v "$c" >/dev/null || die "$c is required"
	done
	local f
	for f in "$RUN"/*.pid; do
		[[ -e $f ]] && alive "$(basename "$f" .pid)" && die "a cluster is already running in $DIR (stop it first)"
	done
	rm -rf "$RUN" "$DIR/etcd" "$DIR/pki" "$DIR/logs" "$DIR/kwok" "$DIR/kubeconfig" "$DIR/cluster.env" \
		"$DIR/kube-scheduler.yaml"

	local bin
	if [[ -n ${TILT_KUBE_BIN:-} ]]; then
		bin=$TILT_KUBE_BIN
	else
		bin=$("$HERE/build.sh" --dir) || die "binaries not built (in $bin): run tests/kube/build.sh"
	fi
	local share
	share=$(dirname "$bin")/share/kwok
	for f in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do
		[[ -x $bin/$f ]] || die "$bin/$f is missing: run tests/kube/build.sh"
	done

	STARTED=0
	trap 'if [[ ${STARTED:-0} == 0 ]]; then log "start failed; stopping what was started (logs in $DIR/logs)"; stop_all || true; fi' EXIT
	local t0=$SECONDS
	mkdir -p "$RUN" "$DIR/logs" "$DIR/kwok"
	local ports etcd_port peer_port api_port kwok_port
	ports=$(free_ports 4)
	read -r etcd_port peer_port api_port kwok_port <<<"$ports"

	make_pki
	local token alice_token
	token=$(openssl rand -hex 24)
	alice_token=$(openssl rand -hex 24)
	# token,user,uid,"groups": the admin is in system:masters, so RBAC lets it do anything; alice (context
	# `alice`) is a user with no rights but those RBAC objects give her.
	printf '%s,admin,admin,"system:masters"\n%s,alice,alice\n' "$token" "$alice_token" >"$DIR/pki/tokens.csv"
	chmod 600 "$DIR/pki/tokens.csv"

	local ca_data
	ca_data=$(base64 -w0 <"$DIR/pki/ca.crt")
	cat >"$DIR/kubeconfig.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: real
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $ca_data
users:
- name: real
  user:
    token: $token
- name: alice
  user:
    token: $alice_token
contexts:
- name: real
  context:
    cluster: real
    user: real
- name: alice
  context:
    cluster: real
    user: alice
current-context: real
EOF
	chmod 600 "$DIR/kubeconfig.tmp"
	mv "$DIR/kubeconfig.tmp" "$DIR/kubeconfig"
	local kc=$DIR/kubeconfig
	cat >"$DIR/cluster.env" <<EOF
KUBE_BIN=$bin
KUBECONFIG_FILE=$kc
KUBE_CONTEXT=real
KUBE_SERVER=https://127.0.0.1:$api_port
KUBE_TOKEN=$token
KUBE_CA=$DIR/pki/ca.crt
ETCD_URL=http://127.0.0.1:$etcd_port
KWOK_PORT=$kwok_port
KWOK_NODE=$NODE_NAME
KWOK_POD_LOG=$DIR/kwok/pod.log
EOF

	# 1. etcd (flags as envtest and kwokctl; one member, no fsync: the data is thrown away)
	spawn etcd "$bin/etcd" \
		--name=node0 \
		--data-dir="$DIR/etcd" \
		--listen-client-urls="http://127.0.0.1:$etcd_port" \
		--advertise-client-urls="http://127.0.0.1:$etcd_port" \
		--listen-peer-urls="http://127.0.0.1:$peer_port" \
		--initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
		--initial-cluster="node0=http://127.0.0.1:$peer_port" \
		--unsafe-no-fsync=true \
		--auto-compaction-retention=1 \
		--quota-backend-bytes=$((2 * 1024 * 1024 * 1024)) \
		--log-level=warn
	wait_for "etcd /health" 60 etcd \
		bash -c "curl -sf http://127.0.0.1:$etcd_port/health | grep -q '\"health\":\"true\"'"
	log "etcd healthy after $((SECONDS - t0))s"

	# 2. kube-apiserver
	spawn kube-apiserver "$bin/kube-apiserver" \
		--etcd-servers="http://127.0.0.1:$etcd_port" \
		--bind-address=127.0.0.1 \
		--advertise-address=127.0.0.1 \
		--secure-port="$api_port" \
		--tls-cert-file="$DIR/pki/apiserver.crt" \
		--tls-private-key-file="$DIR/pki/apiserver.key" \
		--client-ca-file="$DIR/pki/ca.crt" \
		--token-auth-file="$DIR/pki/tokens.csv" \
		--authorization-mode=RBAC \
		--service-account-issuer="https://127.0.0.1:$api_port/" \
		--service-account-key-file="$DIR/pki/sa.pub" \
		--service-account-signing-key-file="$DIR/pki/sa.key" \
		--service-cluster-ip-range=10.0.0.0/24 \
		--allow-privileged=true \
		--endpoint-reconciler-type=none \
		--kubelet-preferred-address-types=InternalIP \
		--kubelet-certificate-authority="$DIR/pki/ca.crt" \
		--kubelet-client-certificate="$DIR/pki/apiserver.crt" \
		--kubelet-client-key="$DIR/pki/apiserver.key"
	wait_for "kube-apiserver /readyz" 120 kube-apiserver \
		curl -sf --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $token" \
		"https://127.0.0.1:$api_port/readyz"
	log "kube-apiserver ready after $((SECONDS - t0))s"

	# 3. controller-manager and scheduler (as kwokctl: no leader election, no serving port)
	spawn kube-controller-manager "$bin/kube-controller-manager" \
		--kubeconfig="$kc" \
		--leader-elect=false \
		--bind-address=127.0.0.1 \
		--secure-port=0 \
		--service-account-private-key-file="$DIR/pki/sa.key" \
		--root-ca-file="$DIR/pki/ca.crt" \
		--use-service-account-credentials=false
	# (kube-scheduler's --kubeconfig is deprecated in favour of its --config file)
	cat >"$DIR/kube-scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $kc
leaderElection:
  leaderElect: false
EOF
	spawn kube-scheduler "$bin/kube-scheduler" \
		--config="$DIR/kube-scheduler.yaml" \
		--bind-address=127.0.0.1 \
		--secure-port=0

	# 4. kwok: its CRDs (per-pod Logs/Exec/Attach/PortForward, and Stages) and its default stages
	local k=(kubectl --kubeconfig "$kc" --context real)
	"${k[@]}" apply --server-side -f "$share/crd/kwok.x-k8s.io_stages.yaml" \
		-f "$share/crd/kwok.x-k8s.io_logs.yaml" -f "$share/crd/kwok.x-k8s.io_execs.yaml" \
		-f "$share/crd/kwok.x-k8s.io_attaches.yaml" -f "$share/crd/kwok.x-k8s.io_portforwards.yaml" >/dev/null
	"${k[@]}" wait --for=condition=Established --timeout=60s \
		crd/stages.kwok.x-k8s.io crd/logs.kwok.x-k8s.io crd/execs.kwok.x-k8s.io \
		crd/attaches.kwok.x-k8s.io crd/portforwards.kwok.x-k8s.io >/dev/null
	"${k[@]}" apply --server-side \
		-f "$share/stage/node/fast/node-initialize.yaml" \
		-f "$share/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
		-f "$share/stage/pod/fast/pod-ready.yaml" \
		-f "$share/stage/pod/fast/pod-complete.yaml" \
		-f "$share/stage/pod/fast/pod-delete.yaml" >/dev/null

	printf '%s stdout F kwok: logs of every pod on %s until a Logs object says otherwise\n' \
		"$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "$NODE_NAME" >"$DIR/kwok/pod.log"
	cat >"$DIR/kwok/kwok.yaml" <<EOF
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata:
  name: default
spec:
  logs:
  - logsFile: $DIR/kwok/pod.log
    follow: true
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterPortForward
metadata:
  name: default
spec:
  forwards:
  - command: ["cat"]
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterExec
metadata:
  name: default
spec:
  execs:
  - local:
      workDir: $DIR/kwok
EOF
	spawn kwok "$bin/kwok" \
		--kubeconfig="$kc" \
		--config="$DIR/kwok/kwok.yaml" \
		--enable-crds=Stage,Logs,Exec,Attach,PortForward \
		--manage-all-nodes=false \
		--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
		--node-ip=127.0.0.1 \
		--node-name="$NODE_NAME" \
		--node-port="$kwok_port" \
		--server-address="127.0.0.1:$kwok_port" \
		--tls-cert-file="$DIR/pki/kwok.crt" \
		--tls-private-key-file="$DIR/pki/kwok.key" \
		--node-lease-duration-seconds=40 \
		--cidr=10.0.1.0/24

	# 5. the Node (kwok manages Nodes, it does not create them)
	"${k[@]}" apply --server-side -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $NODE_NAME
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: $NODE_NAME
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
    type: kwok
spec: {}
EOF
	wait_for "Node $NODE_NAME Ready" 60 kwok \
		"${k[@]}" wait --for=condition=Ready --timeout=2s "node/$NODE_NAME"
	log "Node $NODE_NAME Ready after $((SECONDS - t0))s"
	# pods need the namespace's default ServiceAccount (made by the controller-manager)
	wait_for "ServiceAccount default/default" 60 kube-controller-manager \
		"${k[@]}" get serviceaccount default -n default

	if [[ -n $watch_pid ]]; then
		spawn watcher bash -c 'while kill -0 "$0" 2>/dev/null; do sleep 1; done; exec "$1" stop "$2"' \
			"$watch_pid" "$HERE/cluster.sh" "$DIR"
	fi
	STARTED=1
	log "ready in $((SECONDS - t0))s: kubectl --kubeconfig $kc --context real get nodes"
}

case $CMD in
start) start "$@" ;;
stop)
	if stop_all; then
		# etcd's data (~60 MB of preallocated WAL) is of no use once stopped: start makes it anew
		rm -rf "$DIR/etcd"
		log "stopped"
	else
		die "some processes were left"
	fi
	;;
status)
	for f in "$RUN"/*.pid; do
		[[ -e $f ]] || continue
		n=$(basename "$f" .pid)
		if alive "$n"; then echo "$n running (pgid $(cat "$f"))"; else echo "$n exited"; fi
	done
	;;
*) usage ;;
esac
