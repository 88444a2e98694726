#!/usr/bin/env bash
# Build the throwaway control-plane binaries (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd, kwok) and the Traefik ingress controller from Go modules into
# versioned cache dirs. No Docker, no prebuilt downloads: only the Go module proxy is used.
#
# Usage: tests/cluster/build.sh          (prints the control plane's bin dir on the last line)
# Layout: $MAS_CLUSTER_DIR/bin/<binaries> and $MAS_CLUSTER_DIR/kwok-stages.yaml (kwok's own
#         default "fast" node/pod stages, which the kwok controller needs in out-of-cluster mode);
#         $MAS_TRAEFIK_DIR/bin/traefik.
# Env:   MAS_CLUSTER_CACHE (default ~/.cache/mas-cluster), K8S_VERSION, ETCD_VERSION,
#        KWOK_VERSION, TRAEFIK_VERSION.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.sh source-path=SCRIPTDIR
source "$HERE/versions.sh"

BINS=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok)

# Fast path: everything already cached -> no go invocation at all.
have_all() {
  local b
  for b in "${BINS[@]}"; do [[ -x "$MAS_CLUSTER_BIN/$b" ]] || return 1; done
  [[ -s "$MAS_CLUSTER_DIR/kwok-stages.yaml" && -x "$MAS_TRAEFIK_BIN" ]] || return 1
  for b in helm kubeconform actionlint; do [[ -x "$MAS_TOOLS_BIN/$b" ]] || return 1; done
}
if have_all; then
  echo "$MAS_CLUSTER_BIN"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: go not found (need Go >= 1.26)" >&2; exit 1; }

# Serialize concurrent builds (e.g. two test runs at once): the loser waits, then finds
# the cache complete instead of compiling everything a second time on 2 cores.
mkdir -p "$MAS_CLUSTER_CACHE"
exec 9>"$MAS_CLUSTER_CACHE/.build.lock"
if ! flock -n 9; then
  echo "build.sh: another build is running; waiting for it (max 60 min)" >&2
  flock -w 3600 9 || { echo "build.sh: timed out waiting for the build lock" >&2; exit 1; }
fi
if have_all; then
  echo "$MAS_CLUSTER_BIN"
  exit 0
fi

START=$(date +%s)
stamp() { echo "[build +$(( $(date +%s) - START ))s] $*" >&2; }

# Static, reproducible-ish binaries; -mod=mod so go build may update the scratch go.mod.
export CGO_ENABLED=0 GOFLAGS=-mod=mod
# Never fetch a different toolchain behind our back.
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}

# Temp dir on the same filesystem as the cache so the final mv is an atomic rename;
# an interrupted build leaves only a .build.* dir (removed by the trap), never a half cache.
TMP=$(mktemp -d "$MAS_CLUSTER_CACHE/.build.XXXXXX")
# Long go commands run via `bg` so a signal interrupts `wait` at once (bash would otherwise
# defer the trap until the foreground go finished) and the trap can stop the go process.
CHILD=""
bg() { local rc=0; "$@" & CHILD=$!; wait "$CHILD" || rc=$?; CHILD=""; return "$rc"; }
trap 'rm -rf "$TMP"' EXIT
# Go's compile cache (several GB for these modules) is only needed while building: the
# binaries are what is cached, so it goes with the temp dir and a CI disk keeps the space.
export GOCACHE=${MAS_GOCACHE:-$TMP/gocache}
trap 'if [[ -n "$CHILD" ]]; then kill "$CHILD" 2>/dev/null || true; fi; exit 130' INT TERM
# ---- Traefik (own cache dir: bumping it never rebuilds the control plane) ---------------
# `go install …@v3.x` is refused (its go.mod has replace directives), so the module zip is
# unpacked and built as the main module, where the replaces apply.
if [[ ! -x "$MAS_TRAEFIK_BIN" ]]; then
  stamp "traefik v$TRAEFIK_VERSION"
  TTMP="$TMP/traefik"
  mkdir -p "$TTMP"
  ZIP=$(go mod download -json "github.com/traefik/traefik/v3@v$TRAEFIK_VERSION" \
    | sed -n 's/^[[:space:]]*"Zip": "\(.*\)",\{0,1\}$/\1/p')
  [[ -f "$ZIP" ]] || { echo "build.sh: could not download the traefik v$TRAEFIK_VERSION module" >&2; exit 1; }
  (cd "$TTMP" && unzip -q "$ZIP")
  SRC="$TTMP/github.com/traefik/traefik/v3@v$TRAEFIK_VERSION"
  mkdir -p "$TTMP/root/bin"
  bg go -C "$SRC" build -trimpath \
    -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
    -o "$TTMP/root/bin/traefik" ./cmd/traefik
  rm -rf "$MAS_TRAEFIK_DIR"
  mv -T "$TTMP/root" "$MAS_TRAEFIK_DIR"       # rename(2): all-or-nothing
  rm -rf "$TTMP"
  stamp "traefik: done"
fi
# ---- helm, kubeconform, actionlint (own cache dir) -------------------------------------
if [[ ! -x "$MAS_TOOLS_BIN/helm" || ! -x "$MAS_TOOLS_BIN/kubeconform" || ! -x "$MAS_TOOLS_BIN/actionlint" ]]; then
  stamp "helm v$HELM_VERSION, kubeconform v$KUBECONFORM_VERSION, actionlint v$ACTIONLINT_VERSION"
  mkdir -p "$TMP/tools/bin"
  for m in "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" \
           "github.com/yannh/kubeconform/cmd/kubeconform@v$KUBECONFORM_VERSION" \
           "github.com/rhysd/actionlint/cmd/actionlint@v$ACTIONLINT_VERSION"; do
    GOBIN="$TMP/tools/bin" bg go install -trimpath -ldflags "-s -w" "$m"
  done
  rm -rf "$MAS_TOOLS_DIR"
  mv -T "$TMP/tools" "$MAS_TOOLS_DIR"
  stamp "tools: done"
fi
control_plane_cached() {
  local b
  for b in "${BINS[@]}"; do [[ -x "$MAS_CLUSTER_BIN/$b" ]] || return 1; done
  [[ -s "$MAS_CLUSTER_DIR/kwok-stages.yaml" ]]
}
if control_plane_cached; then
  echo "$MAS_CLUSTER_BIN"
  exit 0
fi

ROOT="$TMP/root"          # becomes $MAS_CLUSTER_DIR in one rename at the end
OUT="$ROOT/bin"
mkdir -p "$OUT"

STAGING="v0.${K8S_VERSION#1.}"          # 1.36.3 -> v0.36.3
K8S_MINOR=$(cut -d. -f2 <<<"$K8S_VERSION")
BUILD_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)

# ---- kube-apiserver, kube-controller-manager, kube-scheduler, kubectl -----------------
# k8s.io/kubernetes requires its staging modules at v0.0.0 with local replaces that a
# consumer cannot see, so we replace each with the published v0.<minor>.<patch> tag.
stamp "k8s v$K8S_VERSION (staging $STAGING): resolving modules"
mkdir -p "$TMP/k8s"
(
  cd "$TMP/k8s"
  go mod init local/mas-k8sbins >/dev/null 2>&1
  GOMOD=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  [[ -f "$GOMOD" ]] || { echo "build.sh: could not download k8s.io/kubernetes@v$K8S_VERSION go.mod" >&2; exit 1; }
  mapfile -t staging < <(grep -E '^[[:space:]]+k8s\.io/[^ ]+ v0\.0\.0$' "$GOMOD" | awk '{print $1}')
  [[ ${#staging[@]} -gt 0 ]] || { echo "build.sh: no staging modules found in $GOMOD" >&2; exit 1; }
  for m in "${staging[@]}"; do
    go mod edit -replace="$m=$m@$STAGING"
  done
  # Quiet unless it fails: it lists every module it adds.
  go get "k8s.io/kubernetes@v$K8S_VERSION" >"$TMP/k8s-get.log" 2>&1 || { cat "$TMP/k8s-get.log" >&2; exit 1; }
)

# Same -X flags as hack/lib/version.sh so `--version` and emulation version are right.
LD="-s -w"
for kv in "gitVersion=v$K8S_VERSION" gitMajor=1 "gitMinor=$K8S_MINOR" gitTreeState=clean \
  "buildDate=$BUILD_DATE"; do
  LD="$LD -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
done
stamp "k8s: compiling (slow part)"
bg go -C "$TMP/k8s" build -trimpath -ldflags "$LD" -o "$OUT/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl
stamp "k8s: done"

# ---- etcd ------------------------------------------------------------------------------
# server/v3 has relative replaces, so `go install ...@v` is refused; a wrapper module
# requiring it resolves api/client/pkg at the same tag via MVS.
stamp "etcd v$ETCD_VERSION"
mkdir -p "$TMP/etcd"
(
  cd "$TMP/etcd"
  go mod init local/mas-etcdbin >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >"$TMP/etcd-get.log" 2>&1 || { cat "$TMP/etcd-get.log" >&2; exit 1; }
)
bg go -C "$TMP/etcd" build -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3
stamp "etcd: done"

# ---- kwok ------------------------------------------------------------------------------
# kwok has no replace directives, so plain go install works.
stamp "kwok v$KWOK_VERSION"
GOBIN="$OUT" bg go install -trimpath \
  -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
  "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
# The kwok controller refuses to start without Stage objects (kwokctl injects them); ship the
# module's own default stages, same set kwokctl uses: node init + lease heartbeat, pod fast.
KWOK_DIR=$(go mod download -json "sigs.k8s.io/kwok@v$KWOK_VERSION" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
  pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
  echo "---"
  cat "$KWOK_DIR/kustomize/stage/$f"
done >"$ROOT/kwok-stages.yaml"
stamp "kwok: done"

# ---- sanity + atomic publish -----------------------------------------------------------
for b in "${BINS[@]}"; do
  [[ -x "$OUT/$b" ]] || { echo "build.sh: missing $b after build" >&2; exit 1; }
done
"$OUT/kube-apiserver" --version >&2
"$OUT/etcd" --version 2>&1 | sed -n 1p >&2   # sed reads it all: no SIGPIPE under pipefail

rm -rf "$MAS_CLUSTER_DIR"                  # only reached when incomplete/stale
mv -T "$ROOT" "$MAS_CLUSTER_DIR"           # rename(2): all-or-nothing
stamp "total; binaries in $MAS_CLUSTER_BIN"
echo "$MAS_CLUSTER_BIN"
