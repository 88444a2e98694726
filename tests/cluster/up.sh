#!/usr/bin/env bash
# Start a throwaway Kubernetes control plane on loopback: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok (fake kubelet), plus one fake Node.
# No Docker, no root-only features; everything lives in STATE_DIR.
#
# Usage: tests/cluster/up.sh [STATE_DIR]     (default: <repo>/.state/cluster)
# Then:  export KUBECONFIG=STATE_DIR/kubeconfig   (printed on the last line)
#        source STATE_DIR/cluster.env            (KUBECONFIG, MAS_CLUSTER_BIN, ports, PATH)
# Env:   MAS_CLUSTER_UP_TIMEOUT (seconds per wait, default 90)
#        MAS_CLUSTER_POD_CIDR (default 198.18.0.0/16), MAS_CLUSTER_NODE_IP (default 198.19.0.1).
#
# Pod IPs: kwok hands out fake pod IPs from MAS_CLUSTER_POD_CIDR. Run inside a network
# namespace made by scripts/netns (scripts/test does), whose own lo holds 198.19.255.254/15:
# Linux then treats all of 198.18.0.0/15 as local there (like 127/8), so tests run real
# servers bound to pod IPs and reach them, and none of it touches the host's network. up.sh
# never adds addresses itself. (127.x pod IPs also bind, but the apiserver rejects loopback
# addresses in EndpointSlices, so Services would get no endpoints.) cluster.env says
# MAS_CLUSTER_POD_IPS_LOCAL=1|0.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STATE_DIR=${1:-$REPO/.state/cluster}
mkdir -p "$STATE_DIR"
STATE_DIR=$(cd "$STATE_DIR" && pwd)
TIMEOUT=${MAS_CLUSTER_UP_TIMEOUT:-90}
POD_CIDR=${MAS_CLUSTER_POD_CIDR:-198.18.0.0/16}
NODE_IP=${MAS_CLUSTER_NODE_IP:-198.19.0.1}
NODE_NAME=kwok-node-0
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

START=$(date +%s)
say() { echo "[up +$(( $(date +%s) - START ))s] $*" >&2; }
die() { echo "up.sh: $*" >&2; exit 1; }

# Builds only when the cache is missing (fast path < 1 s).
BIN=$("$HERE/build.sh" | tail -n1)
# shellcheck source=versions.sh source-path=SCRIPTDIR
source "$HERE/versions.sh"
[[ "$BIN" == "$MAS_CLUSTER_BIN" ]] || die "build.sh returned unexpected dir: $BIN"
KUBECTL="$BIN/kubectl"
KCFG="$STATE_DIR/kubeconfig"
PKI="$STATE_DIR/pki"

alive() {   # alive NAME -> pid file exists and the process is ours and running
  local pid
  [[ -f "$STATE_DIR/$1.pid" ]] || return 1
  pid=$(<"$STATE_DIR/$1.pid")
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "$BIN/$1 "
}

print_env() {
  echo "cluster up in $(( $(date +%s) - START ))s; state: $STATE_DIR" >&2
  echo "export KUBECONFIG=$KCFG"
}

k() { "$KUBECTL" --kubeconfig="$KCFG" --request-timeout=10s "$@"; }

# ---- idempotency: already running and healthy -> just reprint ------------------------
if [[ -f "$STATE_DIR/.mas-cluster-state" ]]; then
  healthy=0
  if [[ -f "$STATE_DIR/cluster.env" && -f "$KCFG" ]]; then
    healthy=1
    for c in "${COMPONENTS[@]}"; do alive "$c" || healthy=0; done
  fi
  if (( healthy )) && k get --raw /readyz >/dev/null 2>&1; then
    say "already running and healthy"
    print_env
    exit 0
  fi
  say "stale or partial cluster in $STATE_DIR; tearing it down first"
  "$HERE/down.sh" "$STATE_DIR"
  mkdir -p "$STATE_DIR"
fi
# Marker that lets down.sh safely rm -rf this dir and nothing else.
touch "$STATE_DIR/.mas-cluster-state"

# ---- ports: free loopback ports below the ephemeral range ----------------------------
USED_PORTS=" "
port_busy() {
  if command -v ss >/dev/null; then
    ss -Htln "sport = :$1" 2>/dev/null | grep -q .
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}
free_port() {
  local p i
  for (( i = 0; i < 200; i++ )); do
    p=$(( 20000 + RANDOM % 12000 ))
    [[ "$USED_PORTS" == *" $p "* ]] && continue
    port_busy "$p" && continue
    USED_PORTS+="$p "
    echo "$p"
    return 0
  done
  die "no free port found"
}
ETCD_PORT=$(free_port); USED_PORTS+="$ETCD_PORT "
ETCD_PEER_PORT=$(free_port); USED_PORTS+="$ETCD_PEER_PORT "
API_PORT=$(free_port); USED_PORTS+="$API_PORT "
KCM_PORT=$(free_port); USED_PORTS+="$KCM_PORT "
SCHED_PORT=$(free_port); USED_PORTS+="$SCHED_PORT "
KWOK_PORT=$(free_port); USED_PORTS+="$KWOK_PORT "

# The apiserver rejects a loopback --advertise-address; use the host's primary IPv4 if
# there is one, else a harmless placeholder. With --endpoint-reconciler-type=none it is
# only written into the 'kubernetes' Service, never dialled by anything here.
ADVERTISE_IP=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n1 || true)
ADVERTISE_IP=${ADVERTISE_IP:-10.255.255.254}

# ---- pod IPs are bindable only inside the run's network namespace ----------------------
is_local() { ip -4 route get "$1" 2>/dev/null | grep -q '^local '; }
POD_IPS_LOCAL=0
first_pod_ip="${POD_CIDR%.*/*}.1"   # 198.18.0.0/16 -> 198.18.0.1
if is_local "$first_pod_ip" && is_local "$NODE_IP"; then
  POD_IPS_LOCAL=1
else
  say "warning: $POD_CIDR is not local here; pod IPs are API-only (run inside scripts/netns)"
fi
if [[ "$POD_CIDR" == 127.* ]]; then
  say "warning: loopback pod CIDR: the apiserver rejects these IPs in EndpointSlices"
fi

# ---- certificates ---------------------------------------------------------------------
say "generating certificates"
mkdir -p "$PKI"
(
  cd "$PKI"
  umask 077
  ossl() { openssl "$@" 2>/dev/null; }
  ossl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=mas-test-ca" \
    -keyout ca.key -out ca.crt
  ossl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout apiserver.key -out apiserver.csr
  printf '%s\n' \
    "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1,IP:$ADVERTISE_IP" \
    "extendedKeyUsage=serverAuth" >apiserver.ext
  ossl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 \
    -extfile apiserver.ext -out apiserver.crt
  ossl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=mas-admin" \
    -keyout admin.key -out admin.csr
  printf 'extendedKeyUsage=clientAuth\n' >admin.ext
  ossl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 7 \
    -extfile admin.ext -out admin.crt
  ossl genrsa -out sa.key 2048
  ossl rsa -in sa.key -pubout -out sa.pub
)

b64() { base64 -w0 <"$1"; }
cat >"$KCFG" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: mas-test
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: mas-admin
  user:
    client-certificate-data: $(b64 "$PKI/admin.crt")
    client-key-data: $(b64 "$PKI/admin.key")
contexts:
- name: mas-test
  context: {cluster: mas-test, user: mas-admin, namespace: default}
current-context: mas-test
EOF
chmod 600 "$KCFG"

# ---- process helpers ------------------------------------------------------------------
start() {   # start NAME ARGS... : detached (own session), log + pid file in STATE_DIR
  local name=$1 pidfile; shift
  pidfile=$STATE_DIR/$name.pid
  rm -f "$pidfile"
  # The started process writes its own pid and then execs the binary: setsid forks when it
  # happens to lead a process group, and then `$!` names a parent that has already exited,
  # which alive() took for "exited" while the component ran.
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$BIN/$name" "$@" \
    >"$STATE_DIR/$name.log" 2>&1 </dev/null &
  for _ in $(seq 250); do
    [[ -s "$pidfile" ]] && return 0
    sleep 0.02
  done
}
wait_for() {   # wait_for DESC COMPONENT CMD... : bounded poll; fail fast if COMPONENT died
  local desc=$1 comp=$2 deadline=$(( $(date +%s) + TIMEOUT )); shift 2
  until "$@" >/dev/null 2>&1; do
    if ! alive "$comp"; then
      echo "up.sh: $comp exited while waiting for $desc; last log lines:" >&2
      tail -n 30 "$STATE_DIR/$comp.log" >&2
      exit 1
    fi
    if (( $(date +%s) >= deadline )); then
      echo "up.sh: timed out after ${TIMEOUT}s waiting for $desc; last $comp log lines:" >&2
      tail -n 30 "$STATE_DIR/$comp.log" >&2
      exit 1
    fi
    sleep 0.5
  done
  say "$desc: ok"
}
curl_api() { curl -fsS --max-time 5 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "https://127.0.0.1:$API_PORT$1"; }

# On any failure below, stop what we started so nothing is left half-running.
trap 'rc=$?; if (( rc != 0 )); then echo "up.sh: failed (logs in $STATE_DIR); stopping" >&2; "$HERE/down.sh" --keep "$STATE_DIR" || true; fi' EXIT

# ---- etcd -----------------------------------------------------------------------------
say "starting etcd on 127.0.0.1:$ETCD_PORT"
# --unsafe-no-fsync: test data is throwaway; fsync dominates latency on shared disks.
start etcd \
  --name=mas-test --data-dir="$STATE_DIR/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="mas-test=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync=true --quota-backend-bytes=$(( 1024 * 1024 * 1024 ))
wait_for "etcd /health" etcd curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"

# ---- kube-apiserver -------------------------------------------------------------------
say "starting kube-apiserver on 127.0.0.1:$API_PORT (advertise $ADVERTISE_IP)"
start kube-apiserver \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 --secure-port="$API_PORT" \
  --advertise-address="$ADVERTISE_IP" --endpoint-reconciler-type=none \
  --cert-dir="$PKI" \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range=10.96.0.0/16 \
  --authorization-mode=RBAC --allow-privileged=true --profiling=false
wait_for "kube-apiserver /readyz" kube-apiserver curl_api /readyz

# ---- kube-controller-manager / kube-scheduler (admin creds, like kwokctl) --------------
say "starting kube-controller-manager and kube-scheduler"
start kube-controller-manager \
  --kubeconfig="$KCFG" --authentication-kubeconfig="$KCFG" --authorization-kubeconfig="$KCFG" \
  --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --service-cluster-ip-range=10.96.0.0/16 --profiling=false
# A config file rather than --leader-elect, which kube-scheduler treats as legacy.
cat >"$STATE_DIR/scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $KCFG
leaderElection:
  leaderElect: false
EOF
start kube-scheduler \
  --config="$STATE_DIR/scheduler.yaml" \
  --authentication-kubeconfig="$KCFG" --authorization-kubeconfig="$KCFG" \
  --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --profiling=false

# ---- kwok (out-of-cluster fake kubelet) -----------------------------------------------
# Explicit --config so a user's ~/.kwok/kwok.yaml never leaks in. It holds only Stages: the
# node stages shipped with the kwok module (build.sh copies them) and our pod stages
# (kwok-pod-stages.yaml: kwok's defaults, except for pods the test pod runner runs for real);
# no KwokConfiguration doc, because a partial one skips kwok's defaulting (e.g. "node leases
# parallelism must be greater than 0"), while an absent one gets the full defaults plus our flags.
{
  awk '/^---$/ { if (doc ~ /kind: Node\n/) printf "%s", doc; doc = "---\n"; next }
       { doc = doc $0 "\n" }
       END { if (doc ~ /kind: Node\n/) printf "%s", doc }' "$MAS_CLUSTER_DIR/kwok-stages.yaml"
  echo "---"
  cat "$HERE/kwok-pod-stages.yaml"
} >"$STATE_DIR/kwok.yaml"
grep -q 'name: node-initialize' "$STATE_DIR/kwok.yaml" || die "no node stages in $MAS_CLUSTER_DIR/kwok-stages.yaml"
say "starting kwok (pod CIDR $POD_CIDR, node IP $NODE_IP, bindable: $POD_IPS_LOCAL)"
start kwok \
  --config="$STATE_DIR/kwok.yaml" --kubeconfig="$KCFG" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --manage-nodes-with-label-selector= --manage-single-node= \
  --cidr="$POD_CIDR" --node-ip="$NODE_IP" --node-lease-duration-seconds=40 \
  --server-address="127.0.0.1:$KWOK_PORT"

wait_for "kube-controller-manager /healthz" kube-controller-manager \
  curl -fsSk --max-time 2 "https://127.0.0.1:$KCM_PORT/healthz"
wait_for "kube-scheduler /healthz" kube-scheduler \
  curl -fsSk --max-time 2 "https://127.0.0.1:$SCHED_PORT/healthz"
wait_for "kwok /healthz" kwok curl -fsS --max-time 2 "http://127.0.0.1:$KWOK_PORT/healthz"

# ---- fake node (no NoSchedule taint, so ordinary Deployments land on it) -------------
k apply -f - >/dev/null <<EOF
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
status:
  capacity: {cpu: "64", memory: 256Gi, pods: "1000"}
  allocatable: {cpu: "64", memory: 256Gi, pods: "1000"}
  nodeInfo:
    architecture: amd64
    operatingSystem: linux
    kubeletVersion: fake
    kubeProxyVersion: fake
EOF

node_ready() {
  [[ "$(k get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}
wait_for "namespace default" kube-apiserver k get namespace default
wait_for "serviceaccount default/default" kube-controller-manager k -n default get serviceaccount default
wait_for "node $NODE_NAME Ready" kwok node_ready

cat >"$STATE_DIR/cluster.env" <<EOF
# Generated by tests/cluster/up.sh; source me.
export KUBECONFIG=$KCFG
export MAS_CLUSTER_BIN=$BIN
export MAS_CLUSTER_STATE=$STATE_DIR
export MAS_CLUSTER_API_PORT=$API_PORT
export MAS_CLUSTER_ETCD_PORT=$ETCD_PORT
export MAS_CLUSTER_POD_CIDR=$POD_CIDR
export MAS_CLUSTER_NODE_IP=$NODE_IP
export MAS_CLUSTER_POD_IPS_LOCAL=$POD_IPS_LOCAL
export MAS_CLUSTER_NODE_NAME=$NODE_NAME
export MAS_TRAEFIK_BIN=$MAS_TRAEFIK_BIN
export MAS_TOOLS_BIN=$MAS_TOOLS_BIN
export PATH=$BIN:\$PATH
EOF
trap - EXIT
print_env
