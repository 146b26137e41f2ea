#!/usr/bin/env bash
# Make sure Postgres, RabbitMQ and Redis answer where the services will look for them.
#
# For each of them: if DATABASE_URL / AMQP_URL / REDIS_URL point at another host, use that (and check it
# answers); else if the local port already answers, use it; else install the Debian package if absent, start
# the server and wait until it answers. Idempotent; a second run only checks three ports.
#
#   scripts/ensure-services.sh [--env-file .env]
#
# --env-file: also read the URLs from a dotenv file (the process environment wins). `make up` passes .env.
# REELFORGE_SERVICE_TIMEOUT (seconds, default 120): how long to wait for a server to answer.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ENV_FILE=""
while [ $# -gt 0 ]; do
    case "$1" in
    --env-file) ENV_FILE="$2"; shift 2 ;;
    --env-file=*) ENV_FILE="${1#*=}"; shift ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
    esac
done
TIMEOUT="${REELFORGE_SERVICE_TIMEOUT:-120}"

# setting NAME DEFAULT: the environment, else the env file, else the default (the services' own default).
setting() {
    local v="${!1:-}"
    [ -z "$v" ] && [ -n "$ENV_FILE" ] && v="$(dotenv_get "$1" "$ENV_FILE")"
    printf '%s' "${v:-$2}"
}

# parse_url URL DEFAULT_PORT: sets HOST and PORT (a URL without a host means the local default).
parse_url() {
    local re='^[A-Za-z][A-Za-z0-9+.-]*://([^@/]*@)?(\[[^]]*\]|[^:/?#]*)(:([0-9]+))?'
    HOST="127.0.0.1"
    PORT="$2"
    if [[ "$1" =~ $re ]]; then
        HOST="${BASH_REMATCH[2]:-127.0.0.1}"
        HOST="${HOST#[}"
        HOST="${HOST%]}"
        PORT="${BASH_REMATCH[4]:-$2}"
    fi
}

is_local() {
    case "$1" in 127.0.0.1 | localhost | ::1 | 0.0.0.0 | "") return 0 ;; *) return 1 ;; esac
}

have_systemd() { [ -d /run/systemd/system ]; }

# ---- starters: install if absent, then start unless the package's own scripts already did (sysvinit, WSL).
# A failing start command is not fatal by itself: the caller waits for the port and reports a timeout.

start_cmd() {
    "${SUDO[@]}" "$@" || say "$LABEL" "\`$*\` failed; waiting for the port anyway"
}

PG_FRESH=0
start_postgres() {
    if ! dpkg -s postgresql >/dev/null 2>&1; then
        apt_install postgresql
        PG_FRESH=1
    fi
    local versions
    versions="$(ls /etc/postgresql 2>/dev/null || true)"
    if [ -z "$versions" ]; then
        local v
        # shellcheck disable=SC2012 # version directory names are plain numbers
        v="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
        say postgres "creating cluster $v/main"
        "${SUDO[@]}" pg_createcluster "$v" main >/dev/null
        versions="$v"
        PG_FRESH=1
    fi
    if [ "$PG_FRESH" -eq 1 ]; then
        # Our own fresh, loopback-only dev cluster: let the services connect as `postgres` without a password
        # (the services' default DATABASE_URL). An existing cluster's auth is never touched.
        local v hba
        for v in $versions; do
            hba="/etc/postgresql/$v/main/pg_hba.conf"
            if ! grep -q 'reelforge-dev' "$hba"; then
                "${SUDO[@]}" sed -i '1i # reelforge-dev: passwordless loopback access for local development\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
                say postgres "trust auth for 127.0.0.1/::1 in $hba"
            fi
        done
    fi
    if have_systemd; then
        start_cmd systemctl start postgresql
        [ "$PG_FRESH" -eq 1 ] && start_cmd systemctl reload postgresql
    else
        local v
        for v in $versions; do
            # A package install may already have started it (then the new pg_hba.conf needs a reload).
            if "${SUDO[@]}" pg_ctlcluster --skip-systemctl-redirect "$v" main status >/dev/null 2>&1; then
                start_cmd pg_ctlcluster --skip-systemctl-redirect "$v" main reload
            else
                start_cmd pg_ctlcluster --skip-systemctl-redirect "$v" main start
            fi
        done
    fi
    return 0
}

start_rabbitmq() {
    apt_install rabbitmq-server
    port_open "$HOST" "$PORT" && return 0
    if have_systemd; then
        start_cmd systemctl start rabbitmq-server
    elif "${SUDO[@]}" rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
        return 0 # the node runs (its init script started it); the AMQP listener opens last
    else
        start_cmd rabbitmq-server -detached
    fi
}

start_redis() {
    apt_install redis-server
    port_open "$HOST" "$PORT" && return 0
    if have_systemd; then
        start_cmd systemctl start redis-server
    else
        start_cmd redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no >/dev/null
    fi
}

# ensure LABEL VAR URL DEFAULT_PORT STARTER
ensure() {
    local label="$1" var="$2" url="$3" default_port="$4" starter="$5"
    parse_url "$url" "$default_port"
    if ! is_local "$HOST"; then
        wait_port "$HOST" "$PORT" 10 ||
            die "$label: $var points to $HOST:$PORT, which does not answer. Fix $var (environment or .env) or start it."
        say "$label" "using $HOST:$PORT (from $var)"
        return 0
    fi
    if port_open "$HOST" "$PORT"; then
        say "$label" "using $HOST:$PORT (already running)"
        return 0
    fi
    local t0=$SECONDS
    LABEL="$label"
    "$starter"
    wait_port "$HOST" "$PORT" "$TIMEOUT" ||
        die "$label: started, but nothing answers on $HOST:$PORT after ${TIMEOUT}s (see its log under /var/log/)"
    say "$label" "started on $HOST:$PORT ($((SECONDS - t0))s)"
}

DATABASE_URL_V="$(setting DATABASE_URL postgresql://postgres@127.0.0.1:5432/postgres)"
AMQP_URL_V="$(setting AMQP_URL amqp://guest:guest@127.0.0.1:5672/)"
REDIS_URL_V="$(setting REDIS_URL redis://127.0.0.1:6379/0)"

ensure postgres DATABASE_URL "$DATABASE_URL_V" 5432 start_postgres
# The server answering is not enough: the services must be able to log in with the URL they are given.
if command -v psql >/dev/null 2>&1; then
    if ! err="$(PGCONNECT_TIMEOUT=5 psql "$DATABASE_URL_V" -Atqc 'select 1' 2>&1 >/dev/null)"; then
        parse_url "$DATABASE_URL_V" 5432
        hint="Fix DATABASE_URL (environment or .env)."
        is_local "$HOST" && hint="Either put a DATABASE_URL with a user and password that work into .env (and export it
  for \`make test\`), or allow passwordless loopback access to this development server
  (first line of pg_hba.conf: host all all 127.0.0.1/32 trust, then reload Postgres)."
        case "$err" in
        *"too many clients"*) hint="Postgres is full (max_connections): other programs hold its connections. Stop them
  (e.g. a running \`make up\` or another test run) or raise max_connections, then try again." ;;
        esac
        die "postgres answers on $HOST:$PORT but refuses DATABASE_URL=$DATABASE_URL_V:
  ${err}
  $hint"
    fi
fi
ensure rabbitmq AMQP_URL "$AMQP_URL_V" 5672 start_rabbitmq
ensure redis REDIS_URL "$REDIS_URL_V" 6379 start_redis
