# Shared settings of the local-stack scripts; sourced, not run.
# Every value can be overridden from the environment, and the Python side
# (carbonledger.contracts.settings) reads the same variables.
set -euo pipefail

CARBON_ROOT="${CARBON_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
CARBON_RUN_DIR="${CARBON_RUN_DIR:-$CARBON_ROOT/.run}"

CARBON_KAFKA_HOST="${CARBON_KAFKA_HOST:-127.0.0.1}"
CARBON_KAFKA_PORT="${CARBON_KAFKA_PORT:-19092}"
CARBON_KAFKA_CONTROLLER_PORT="${CARBON_KAFKA_CONTROLLER_PORT:-19093}"
CARBON_KAFKA_HEAP="${CARBON_KAFKA_HEAP:-768m}"
# Further JVM flags of the local broker, split into words. C1 only: on a small machine
# shared with the services, C2's warm-up compiling cost the broker more CPU in its
# first minutes than serving the records did (docs/performance.md).
CARBON_KAFKA_JVM_OPTS="${CARBON_KAFKA_JVM_OPTS--XX:TieredStopAtLevel=1}"
# The broker's super user. Its secret comes from the environment, as every Kafka
# principal's does (CARBON_KAFKA_SECRET_<NAME>); the dev default is refused in production.
KAFKA_ADMIN_USER=admin
KAFKA_ADMIN_PASSWORD="${CARBON_KAFKA_SECRET_ADMIN:-admin-dev-only}"
if [[ "${CARBON_ENVIRONMENT:-development}" == production && -z "${CARBON_KAFKA_SECRET_ADMIN:-}" ]]; then
  echo "CARBON_KAFKA_SECRET_ADMIN must be set in production" >&2
  exit 1
fi

CARBON_PG_HOST="${CARBON_PG_HOST:-127.0.0.1}"
CARBON_PG_PORT="${CARBON_PG_PORT:-15432}"
CARBON_PG_USER="${CARBON_PG_USER:-carbon}"
CARBON_PG_PASSWORD="${CARBON_PG_PASSWORD:-carbon-dev-only}"
CARBON_PG_DATABASE="${CARBON_PG_DATABASE:-carbonledger}"

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# pid_alive PIDFILE: true when the file names a running process.
pid_alive() {
  local pidfile=$1 pid
  [[ -f "$pidfile" ]] || return 1
  pid=$(<"$pidfile")
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

# port_open HOST PORT: true when something accepts TCP connections there.
port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# stop_pid PIDFILE NAME: SIGTERM, wait up to 60 s for a clean exit, then SIGKILL.
stop_pid() {
  local pidfile=$1 name=$2 pid i
  if ! pid_alive "$pidfile"; then
    rm -f "$pidfile"
    log "$name is not running"
    return 0
  fi
  pid=$(<"$pidfile")
  kill -TERM "$pid"
  for i in $(seq 1 600); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) ignored SIGTERM for 60 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  log "$name stopped"
}
