#!/usr/bin/env bash
# Stop the throwaway control plane started by up.sh and remove its state dir.
#
# Usage: tests/cluster/down.sh [--keep] [STATE_DIR]   (default: <repo>/.state/cluster)
#        --keep: stop processes but keep STATE_DIR (logs) for debugging.
# Only processes recorded in STATE_DIR/*.pid are signalled, and only if their command
# line still points at our cached binaries (guards against a recycled pid).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
KEEP=0
if [[ "${1:-}" == --keep ]]; then KEEP=1; shift; fi
STATE_DIR=${1:-$REPO/.state/cluster}
GRACE=${MAS_CLUSTER_DOWN_GRACE:-10}   # seconds between SIGTERM and SIGKILL

if [[ ! -d "$STATE_DIR" ]]; then
  echo "down.sh: $STATE_DIR does not exist; nothing to do" >&2
  exit 0
fi

# Reverse start order: clients first, etcd last, so the apiserver shuts down cleanly.
COMPONENTS=(kwok kube-scheduler kube-controller-manager kube-apiserver etcd)

ours() {   # ours PID NAME -> process is alive and is our binary NAME
  kill -0 "$1" 2>/dev/null || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF "/bin/$2 "
}

pids=()
for c in "${COMPONENTS[@]}"; do
  f="$STATE_DIR/$c.pid"
  [[ -f "$f" ]] || continue
  pid=$(<"$f")
  if [[ -n "$pid" ]] && ours "$pid" "$c"; then
    kill -TERM "$pid" 2>/dev/null || true
    pids+=("$pid:$c")
  fi
done

deadline=$(( $(date +%s) + GRACE ))
for entry in "${pids[@]}"; do
  pid=${entry%%:*}; c=${entry#*:}
  while ours "$pid" "$c" && (( $(date +%s) < deadline )); do sleep 0.2; done
  if ours "$pid" "$c"; then
    echo "down.sh: $c (pid $pid) ignored SIGTERM for ${GRACE}s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
done
echo "down.sh: stopped ${#pids[@]} process(es)" >&2

if (( KEEP )); then
  rm -f "$STATE_DIR"/*.pid
  exit 0
fi
# Refuse to rm -rf a directory up.sh did not create.
if [[ -f "$STATE_DIR/.mas-cluster-state" ]]; then
  rm -rf "$STATE_DIR"
  echo "down.sh: removed $STATE_DIR" >&2
else
  echo "down.sh: $STATE_DIR has no .mas-cluster-state marker; not removing it" >&2
fi
