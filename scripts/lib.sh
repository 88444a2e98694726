# Shared helpers for scripts/*: locations, ports and installs. Sourced, not run.
# shellcheck shell=bash

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${MAS_STATE_DIR:-$REPO/.state}

# Private loopback ports so a system PostgreSQL/Redis on the default ports is never touched.
PG_PORT=${MAS_PG_PORT:-55432}
REDIS_PORT=${MAS_REDIS_PORT:-56379}
MOTO_PORT=${MAS_MOTO_PORT:-55000}
SMTP_PORT=${MAS_SMTP_PORT:-52525}

log() { printf '[mas] %s\n' "$*" >&2; }
die() { printf '[mas] error: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    log "installing Debian packages: $*"
    as_root apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

pg_bindir() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && { echo "$d"; return 0; }
    done
    return 1
}

# Python tools live in the interpreter the scripts run with.
PYTHON=${PYTHON:-python3}
pip_install() {
    log "installing Python packages: $*"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check "$@"
}

ensure_postgres() { pg_bindir >/dev/null || apt_install postgresql; }
ensure_redis() { command -v redis-server >/dev/null || apt_install redis-server; }
ensure_python_tools() {
    "$PYTHON" -c 'import moto.server, aiosmtpd, flask_cors' 2>/dev/null \
        || pip_install 'moto[server]' aiosmtpd
}

# Waits up to $2 seconds for command $1 (a string) to succeed.
wait_for() {
    local what=$1 secs=$2 i
    for ((i = 0; i < secs * 10; i++)); do
        if eval "$what" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Fails with a clear message when port $1 is taken by something not started from $STATE.
port_free() {
    if port_open "$1"; then
        die "127.0.0.1:$1 is already in use by another process (another checkout's services?); stop it or set $2"
    fi
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Stops the process in pid file $1: TERM, then KILL after 10 s.
stop_pid() {
    local f=$1 pid i
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
}

# ---- network namespaces (see scripts/netns) -------------------------------------------
# The test cluster's pod and node addresses: 198.18.0.0/16 pods, 198.19.0.1 the node. One
# address from the /15 on a namespace's lo makes the whole range local there, like 127/8.
NETNS_LO_ADDR=198.19.255.254/15

# Host names the test ingress serves; inside a namespace they resolve to its loopback.
NETNS_HOSTS="api.mas.test demo.mas.test"

# Creates namespace $1 with lo up and the pod range local on it. `ip netns exec` bind-mounts
# /etc/netns/$1/hosts over /etc/hosts, so clients inside reach the ingress by its host name.
netns_create() {
    [ "$(id -u)" = 0 ] || die "creating a network namespace needs root (run as root or with sudo)"
    command -v ip >/dev/null || apt_install iproute2
    ip netns add "$1" || die "cannot create network namespace $1 (ip netns add)"
    ip -n "$1" link set lo up
    ip -n "$1" addr add "$NETNS_LO_ADDR" dev lo
    mkdir -p "/etc/netns/$1"
    printf '127.0.0.1 localhost %s\n::1 localhost\n' "$NETNS_HOSTS" >"/etc/netns/$1/hosts"
}

# Stops every process in namespace $1 (TERM, KILL after 10 s) and deletes it.
netns_destroy() {
    local ns=$1 pids i
    [ -e "/run/netns/$ns" ] || return 0
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086
        kill $pids 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break
            sleep 0.1
        done
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        # shellcheck disable=SC2086
        [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
    fi
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
}
