#!/usr/bin/env bash
# A project-local PostgreSQL cluster on loopback, from Debian's packages.
#   postgres.sh install  apt-get install postgresql when no server binaries exist
#   postgres.sh start    install, initdb once, start, create the project role and database
#   postgres.sh stop     stop the cluster started here
#   postgres.sh status   exit 0 when it accepts connections
#   postgres.sh reset    stop and delete the cluster
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Run as root, the server runs as user postgres, which must reach its folder; when
# the checkout sits below a folder closed to it (e.g. /root), use /var/tmp instead.
default_pg_dir() {
  local local_dir="$CARBON_RUN_DIR/postgres"
  mkdir -p "$CARBON_RUN_DIR"
  if [[ $(id -u) -ne 0 ]] || ! id postgres >/dev/null 2>&1 \
    || runuser -u postgres -- test -x "$CARBON_RUN_DIR"; then
    echo "$local_dir"
  else
    echo "/var/tmp/carbonledger-$(printf '%s' "$CARBON_RUN_DIR" | sha1sum | cut -c1-12)/postgres"
  fi
}
set_paths() {
  PG_DIR="${CARBON_PG_DIR:-$(default_pg_dir)}"
  DATA="$PG_DIR/data"
  SOCK="$PG_DIR/sock"
  LOGFILE="$PG_DIR/log/postgres.log"
}
set_paths

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [[ -n "$dir" ]] && echo "$dir"
}

install() {
  [[ -n "$(pg_bin)" ]] && return 0
  log "installing PostgreSQL from Debian packages"
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
  [[ -n "$(pg_bin)" ]] || die "PostgreSQL server binaries not found after install"
}

# PostgreSQL refuses to run as root, so root runs it as the package's user.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

prepare_dirs() {
  mkdir -p "$DATA" "$SOCK" "$(dirname "$LOGFILE")"
  if [[ $(id -u) -eq 0 ]]; then
    chown -R postgres:postgres "$PG_DIR"
    runuser -u postgres -- test -w "$DATA" \
      || die "user postgres cannot write $DATA (a parent folder is closed to it); set CARBON_PG_DIR"
  fi
  chmod 700 "$DATA"
}

init_cluster() {
  [[ -f "$DATA/PG_VERSION" ]] && return 0
  log "creating the cluster in $DATA"
  as_owner "$(pg_bin)/initdb" -D "$DATA" -U postgres -E UTF8 --no-locale \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
}

running() {
  as_owner "$(pg_bin)/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

psql_admin() {
  as_owner "$(pg_bin)/psql" -h "$SOCK" -p "$CARBON_PG_PORT" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 -qtA "$@"
}

ensure_role_and_db() {
  local pw=${CARBON_PG_PASSWORD//\'/\'\'}
  psql_admin -c "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$CARBON_PG_USER') THEN
        CREATE ROLE \"$CARBON_PG_USER\" LOGIN CREATEDB PASSWORD '$pw';
      ELSE
        ALTER ROLE \"$CARBON_PG_USER\" LOGIN CREATEDB PASSWORD '$pw';
      END IF;
    END \$\$;"
  if [[ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$CARBON_PG_DATABASE'")" ]]; then
    psql_admin -c "CREATE DATABASE \"$CARBON_PG_DATABASE\" OWNER \"$CARBON_PG_USER\""
  fi
}

start() {
  install
  set_paths  # the postgres user may only exist now
  prepare_dirs
  init_cluster
  if ! running; then
    if port_open "$CARBON_PG_HOST" "$CARBON_PG_PORT"; then
      die "port $CARBON_PG_PORT is taken by another process; set CARBON_PG_PORT"
    fi
    log "starting PostgreSQL on $CARBON_PG_HOST:$CARBON_PG_PORT"
    as_owner "$(pg_bin)/pg_ctl" -D "$DATA" -l "$LOGFILE" -w -t 60 \
      -o "-c listen_addresses=$CARBON_PG_HOST -p $CARBON_PG_PORT -k $SOCK -c max_connections=200" \
      start >/dev/null
  fi
  ensure_role_and_db
  log "PostgreSQL is up; database $CARBON_PG_DATABASE, role $CARBON_PG_USER"
}

stop() {
  if [[ -z "$(pg_bin)" ]] || [[ ! -f "$DATA/PG_VERSION" ]] || ! running; then
    log "PostgreSQL is not running"
    return 0
  fi
  as_owner "$(pg_bin)/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
  log "PostgreSQL stopped"
}

status() {
  if [[ -n "$(pg_bin)" ]] && [[ -f "$DATA/PG_VERSION" ]] && running \
    && "$(pg_bin)/pg_isready" -q -h "$CARBON_PG_HOST" -p "$CARBON_PG_PORT"; then
    echo "postgres: up ($CARBON_PG_HOST:$CARBON_PG_PORT, database $CARBON_PG_DATABASE)"
  else
    echo "postgres: down"
    return 1
  fi
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  reset) stop; rm -rf "$PG_DIR" ;;
  *) echo "usage: $0 install|start|stop|status|reset" >&2; exit 2 ;;
esac
