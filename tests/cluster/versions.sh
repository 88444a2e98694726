# shellcheck shell=bash
# Pinned versions and derived cache paths; sourced by build.sh/up.sh/smoke.sh.
# All three are served by the Go module proxy (see /work/.library/env/packages/go-partial.tsv).
K8S_VERSION=${K8S_VERSION:-1.36.3}
ETCD_VERSION=${ETCD_VERSION:-3.6.16}
KWOK_VERSION=${KWOK_VERSION:-0.8.0}

MAS_CLUSTER_CACHE=${MAS_CLUSTER_CACHE:-$HOME/.cache/mas-cluster}
MAS_CLUSTER_DIR="$MAS_CLUSTER_CACHE/v${K8S_VERSION}-etcd${ETCD_VERSION}-kwok${KWOK_VERSION}"
MAS_CLUSTER_BIN="$MAS_CLUSTER_DIR/bin"
export K8S_VERSION ETCD_VERSION KWOK_VERSION MAS_CLUSTER_CACHE MAS_CLUSTER_DIR MAS_CLUSTER_BIN

# Ingress controller for the data-path tests: v3.6.12 is the newest that builds from the module
# proxy here (v3.7.x needs a go-http-auth fork version the proxy does not serve).
TRAEFIK_VERSION=${TRAEFIK_VERSION:-3.6.12}
MAS_TRAEFIK_DIR="$MAS_CLUSTER_CACHE/traefik-v${TRAEFIK_VERSION}"
MAS_TRAEFIK_BIN="$MAS_TRAEFIK_DIR/bin/traefik"
export TRAEFIK_VERSION MAS_TRAEFIK_DIR MAS_TRAEFIK_BIN

# Checkers for the chart, manifests and workflows (scripts/test), built with `go install`.
HELM_VERSION=${HELM_VERSION:-3.22.0}
KUBECONFORM_VERSION=${KUBECONFORM_VERSION:-0.8.0}
ACTIONLINT_VERSION=${ACTIONLINT_VERSION:-1.7.12}
MAS_TOOLS_DIR="$MAS_CLUSTER_CACHE/tools-helm${HELM_VERSION}-kubeconform${KUBECONFORM_VERSION}-actionlint${ACTIONLINT_VERSION}"
MAS_TOOLS_BIN="$MAS_TOOLS_DIR/bin"
export HELM_VERSION KUBECONFORM_VERSION ACTIONLINT_VERSION MAS_TOOLS_DIR MAS_TOOLS_BIN
