#!/usr/bin/env bash
# A project-local Prometheus (and promtool) from Debian's prometheus package,
# unpacked rather than installed: no system service, no root needed once fetched.
#   prometheus.sh install        fetch the package and unpack it under .run/tools
#   prometheus.sh start          start it with $CARBON_PROMETHEUS_CONFIG on loopback
#   prometheus.sh stop | status
#   prometheus.sh promtool ARGS  run the unpacked promtool
#   prometheus.sh amtool ARGS    run amtool, from Debian's prometheus-alertmanager package
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

TOOLS="${CARBON_TOOLS_DIR:-$CARBON_ROOT/.run/tools}/prometheus"
PROM_DIR="$CARBON_RUN_DIR/prometheus"
PIDFILE="$PROM_DIR/prometheus.pid"
PORT="${CARBON_PROMETHEUS_PORT:-9090}"

bin() { echo "$TOOLS/usr/bin/$1"; }

install() {
  [[ -x "$(bin promtool)" && -x "$(bin prometheus)" ]] && return 0
  log "fetching Debian's prometheus package"
  local tmp sudo=""
  tmp=$(mktemp -d)
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  # apt may not yet know the package on a fresh machine: refresh its lists once.
  if ! (cd "$tmp" && apt-get download -qq prometheus 2>/dev/null); then
    $sudo apt-get update -qq
    (cd "$tmp" && apt-get download -qq prometheus) || die "apt-get download prometheus failed"
  fi
  mkdir -p "$TOOLS"
  dpkg -x "$tmp"/prometheus_*.deb "$TOOLS"
  rm -rf "$tmp"
  "$(bin promtool)" --version >/dev/null || die "promtool does not run after unpacking"
}

install_alertmanager() {
  [[ -x "$(bin amtool)" ]] && return 0
  log "fetching Debian's prometheus-alertmanager package (for amtool)"
  local tmp sudo=""
  tmp=$(mktemp -d)
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  if ! (cd "$tmp" && apt-get download -qq prometheus-alertmanager 2>/dev/null); then
    $sudo apt-get update -qq
    (cd "$tmp" && apt-get download -qq prometheus-alertmanager) \
      || die "apt-get download prometheus-alertmanager failed"
  fi
  mkdir -p "$TOOLS"
  dpkg -x "$tmp"/prometheus-alertmanager_*.deb "$TOOLS"
  rm -rf "$tmp"
  "$(bin amtool)" --version >/dev/null 2>&1 || die "amtool does not run after unpacking"
}

start() {
  install
  [[ -n "${CARBON_PROMETHEUS_CONFIG:-}" ]] || die "CARBON_PROMETHEUS_CONFIG must name a config file"
  if pid_alive "$PIDFILE"; then
    log "prometheus already running (pid $(<"$PIDFILE"))"
    return 0
  fi
  port_open 127.0.0.1 "$PORT" && die "port $PORT is taken by another process"
  mkdir -p "$PROM_DIR/data"
  "$(bin promtool)" check config "$CARBON_PROMETHEUS_CONFIG" >/dev/null \
    || die "promtool rejects $CARBON_PROMETHEUS_CONFIG"
  nohup "$(bin prometheus)" \
    --config.file="$CARBON_PROMETHEUS_CONFIG" \
    --storage.tsdb.path="$PROM_DIR/data" \
    --storage.tsdb.retention.time=7d \
    --web.listen-address="127.0.0.1:$PORT" \
    --web.enable-lifecycle \
    >"$PROM_DIR/prometheus.log" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null \
      && python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/-/ready')" 2>/dev/null; then
      log "prometheus ready on 127.0.0.1:$PORT"
      return 0
    fi
    pid_alive "$PIDFILE" || die "prometheus exited; see $PROM_DIR/prometheus.log"
    sleep 0.2
  done
  die "prometheus did not become ready; see $PROM_DIR/prometheus.log"
}

case "${1:-}" in
  install) install; install_alertmanager ;;
  start) start ;;
  stop) stop_pid "$PIDFILE" prometheus ;;
  status) pid_alive "$PIDFILE" ;;
  promtool) shift; install; exec "$(bin promtool)" "$@" ;;
  amtool) shift; install_alertmanager; exec "$(bin amtool)" "$@" ;;
  *) die "usage: prometheus.sh install|start|stop|status|promtool ARGS|amtool ARGS" ;;
esac
