#!/usr/bin/env bash
# End-to-end check of the throwaway cluster: Deployment -> ReplicaSet -> scheduled, Ready
# Pods (kwok) -> Service EndpointSlice -> rolling image update -> garbage collection.
# Also checks that fake pod IPs are loopback addresses a real server can bind to.
#
# Usage: tests/cluster/up.sh && tests/cluster/smoke.sh [STATE_DIR]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STATE_DIR=${1:-$REPO/.state/cluster}
[[ -f "$STATE_DIR/cluster.env" ]] || { echo "smoke.sh: no cluster in $STATE_DIR (run up.sh)" >&2; exit 1; }
# shellcheck source=/dev/null
source "$STATE_DIR/cluster.env"

NS=mas-smoke
APP=smoke
START=$(date +%s)
say() { echo "[smoke +$(( $(date +%s) - START ))s] $*"; }
fail() { echo "smoke.sh: FAIL: $*" >&2; exit 1; }
k() { "$MAS_CLUSTER_BIN/kubectl" --request-timeout=15s -n "$NS" "$@"; }

# poll TIMEOUT DESC CMD... : bounded wait for CMD to succeed.
poll() {
  local deadline=$(( $(date +%s) + $1 )) desc=$2; shift 2
  until "$@"; do
    (( $(date +%s) < deadline )) || fail "timed out waiting for $desc"
    sleep 0.5
  done
}

cleanup() {
  "$MAS_CLUSTER_BIN/kubectl" delete namespace "$NS" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  if [[ -n "${LISTENER_PID:-}" ]]; then kill "$LISTENER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

"$MAS_CLUSTER_BIN/kubectl" version
"$MAS_CLUSTER_BIN/kubectl" delete namespace "$NS" --ignore-not-found --wait=true --timeout=60s >/dev/null
"$MAS_CLUSTER_BIN/kubectl" create namespace "$NS" >/dev/null
# The ServiceAccount controller must populate the new namespace before pods can be admitted.
poll 30 "serviceaccount $NS/default" k get serviceaccount default -o name >/dev/null 2>&1

# ---- 1. Deployment with 2 replicas rolls out ---------------------------------------------
say "creating deployment (2 replicas)"
k apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: $APP}
spec:
  replicas: 2
  selector: {matchLabels: {app: $APP}}
  template:
    metadata: {labels: {app: $APP}}
    spec:
      containers:
      - name: app
        image: example.invalid/app:1
        ports: [{containerPort: 8080}]
EOF
k rollout status deployment/$APP --timeout=60s

pods_ready() {   # all pods of the app are Running+Ready and there are exactly N of them
  local want=$1 out
  out=$(k get pods -l app=$APP -o jsonpath='{range .items[*]}{.status.phase}/{.status.conditions[?(@.type=="Ready")].status}/{.metadata.deletionTimestamp}{"\n"}{end}')
  [[ $(grep -c . <<<"$out") -eq $want ]] && ! grep -qv '^Running/True/$' <<<"$out"
}
poll 30 "2 Running/Ready pods" pods_ready 2
k get pods -l app=$APP -o wide
mapfile -t POD_IPS < <(k get pods -l app=$APP -o jsonpath='{range .items[*]}{.status.podIP}{"\n"}{end}' | sort)
[[ ${#POD_IPS[@]} -eq 2 && -n "${POD_IPS[0]}" && -n "${POD_IPS[1]}" ]] || fail "expected 2 pod IPs, got: ${POD_IPS[*]}"
say "pod IPs: ${POD_IPS[*]} (pod CIDR $MAS_CLUSTER_POD_CIDR)"

# ---- 2. pod IPs on loopback: a real server can bind one and be reached -------------------
if [[ "${MAS_CLUSTER_POD_IPS_LOCAL:-0}" == 1 ]]; then
  if command -v python3 >/dev/null; then
    ip=${POD_IPS[0]}
    python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"hello from " + sys.argv[1].encode())
    def log_message(self, *a): pass
http.server.HTTPServer((sys.argv[1], 18080), H).serve_forever()
' "$ip" &
    LISTENER_PID=$!
    got=""
    for _ in $(seq 1 20); do
      got=$(curl -fsS --max-time 2 "http://$ip:18080/" 2>/dev/null) && break
      sleep 0.25
    done
    [[ "$got" == "hello from $ip" ]] || fail "could not reach a server bound to pod IP $ip:18080"
    kill "$LISTENER_PID" 2>/dev/null || true
    LISTENER_PID=""
    say "pod IP is local: a real server bound to $ip:18080 answered"
  else
    say "python3 missing; skipped bind-to-pod-IP check"
  fi
else
  say "pod IPs are API-only here (MAS_CLUSTER_POD_IPS_LOCAL=0); skipped bind-to-pod-IP check"
fi

# ---- 3. Service -> EndpointSlice carries the pod IPs --------------------------------------
say "creating service"
k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: $APP}
spec:
  selector: {app: $APP}
  ports: [{port: 80, targetPort: 8080}]
EOF
slice_ips() {
  k get endpointslices -l kubernetes.io/service-name=$APP \
    -o jsonpath='{range .items[*].endpoints[?(@.conditions.ready==true)]}{.addresses[0]}{"\n"}{end}' | sort
}
slice_matches() { [[ "$(slice_ips | tr '\n' ' ')" == "${POD_IPS[*]} " ]]; }
poll 30 "EndpointSlice with ${POD_IPS[*]}" slice_matches
say "endpointslice addresses: $(slice_ips | tr '\n' ' ')"

# ---- 4. image change -> new ReplicaSet rolls out ------------------------------------------
old_rs=$(k get rs -l app=$APP -o jsonpath='{.items[0].metadata.name}')
say "updating image (old ReplicaSet $old_rs)"
k set image deployment/$APP app=example.invalid/app:2 >/dev/null
k rollout status deployment/$APP --timeout=60s
new_rs=$(k get rs -l app=$APP -o jsonpath='{range .items[?(@.status.replicas==2)]}{.metadata.name}{end}')
[[ -n "$new_rs" && "$new_rs" != "$old_rs" ]] || fail "no new ReplicaSet with 2 replicas (old $old_rs, got '$new_rs')"
[[ "$(k get rs "$new_rs" -o jsonpath='{.spec.template.spec.containers[0].image}')" == example.invalid/app:2 ]] \
  || fail "new ReplicaSet $new_rs does not have the new image"
[[ "$(k get rs "$old_rs" -o jsonpath='{.spec.replicas}')" == 0 ]] || fail "old ReplicaSet $old_rs not scaled to 0"
pods_new_image() {
  pods_ready 2 && [[ "$(k get pods -l app=$APP -o jsonpath='{.items[*].spec.containers[0].image}')" == "example.invalid/app:2 example.invalid/app:2" ]]
}
poll 30 "2 Ready pods on the new image" pods_new_image
say "rolled out: $old_rs -> $new_rs"
k get rs -l app=$APP

# ---- 5. deleting the Deployment garbage-collects ReplicaSets and Pods ---------------------
say "deleting deployment"
k delete deployment $APP --wait=false >/dev/null
gone() { [[ -z "$(k get rs,pods -l app=$APP -o name 2>/dev/null)" ]]; }
poll 60 "GC of ReplicaSets and Pods" gone
say "garbage collector removed ReplicaSets and Pods"

echo "smoke: OK ($(( $(date +%s) - START ))s)"
