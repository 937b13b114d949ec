#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft) on loopback, from Maven Central jars.
#   kafka.sh fetch   copy the broker jars into .run/kafka/libs (Maven caches them in ~/.m2)
#   kafka.sh start   fetch, format storage once, start, and wait until the broker answers
#   kafka.sh stop    stop the broker started here (by its own pid file)
#   kafka.sh status  exit 0 when it runs and answers
#   kafka.sh reset   stop and delete its data (topics, offsets, users, ACLs)
#   kafka.sh tls     create the local CA and the broker's certificate (start does it too)
#   kafka.sh fetch-tools       copy Kafka's admin tools (kafka-tools) jars under .run/tools
#   kafka.sh tool CLASS ARGS   run one of them (`carbonledger kafka-tool` does, with the
#                              servers and a client properties file)
#
# With CARBON_KAFKA_TLS_PORT set, the broker also listens there with SASL_SSL, as a
# production broker does: its certificate (for 127.0.0.1 and localhost) is signed by
# a CA made here, $CARBON_RUN_DIR/kafka/tls/ca.pem, which clients name in
# CARBON_KAFKA_SSL_CAFILE (with CARBON_KAFKA_SECURITY_PROTOCOL=SASL_SSL and
# CARBON_KAFKA_BOOTSTRAP=127.0.0.1:$CARBON_KAFKA_TLS_PORT).
#
# The broker authenticates every client with SASL/SCRAM-SHA-512 and authorises
# it with ACLs (StandardAuthorizer, deny when no ACL matches). The only user it
# knows from the start is the super user `admin`, written into the storage at
# format time; `carbonledger kafka-access` creates the partner and service users
# and their ACLs from the declarative map in carbonledger/contracts/access.py.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KAFKA_VERSION=3.9.2
KAFKA_DIR="$CARBON_RUN_DIR/kafka"
LIBS="$KAFKA_DIR/libs"
CONF="$KAFKA_DIR/config"
DATA="$KAFKA_DIR/data"
PIDFILE="$KAFKA_DIR/kafka.pid"
SASL_MARK="$DATA/.sasl-scram"
OUT="$KAFKA_DIR/kafka.out"
TLS="$KAFKA_DIR/tls"
TLS_PORT="${CARBON_KAFKA_TLS_PORT:-}"

TOOLS_LIBS="${CARBON_TOOLS_DIR:-$CARBON_ROOT/.run/tools}/kafka-tools"
JMX_EXPORTER_VERSION=1.0.1
JMX_DIR="${CARBON_TOOLS_DIR:-$CARBON_ROOT/.run/tools}/jmx-exporter"
JMX_JAR="$JMX_DIR/jmx_prometheus_javaagent-$JMX_EXPORTER_VERSION.jar"
JMX_PORT="${CARBON_KAFKA_JMX_PORT:-}"

# The Prometheus JMX exporter's Java agent (Maven Central), for CARBON_KAFKA_JMX_PORT.
fetch_jmx_exporter() {
  [[ -f "$JMX_JAR" ]] && return 0
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch the JMX exporter"
  log "fetching the Prometheus JMX exporter $JMX_EXPORTER_VERSION from Maven Central"
  mkdir -p "$JMX_DIR"
  # Maven's output to stderr: jmx_agent's stdout is the flag itself.
  mvn -q -B dependency:copy \
    -Dartifact="io.prometheus.jmx:jmx_prometheus_javaagent:$JMX_EXPORTER_VERSION" \
    -DoutputDirectory="$JMX_DIR" >&2
}

# The agent's flag when CARBON_KAFKA_JMX_PORT is set: the broker's JMX beans as
# Prometheus metrics on that loopback port (rules: deploy/kafka/jmx-exporter.yml).
jmx_agent() {
  [[ -n "$JMX_PORT" ]] || return 0
  fetch_jmx_exporter
  echo "-javaagent:$JMX_JAR=$CARBON_KAFKA_HOST:$JMX_PORT:$CARBON_ROOT/deploy/kafka/jmx-exporter.yml"
}

fetch_tools() {
  [[ -f "$TOOLS_LIBS/.complete-$KAFKA_VERSION" ]] && return 0
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka's tools"
  log "fetching Apache Kafka $KAFKA_VERSION admin tools from Maven Central"
  rm -rf "$TOOLS_LIBS"
  mkdir -p "$TOOLS_LIBS"
  mvn -q -B -f "$CARBON_ROOT/deploy/kafka/tools-pom.xml" \
    -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$TOOLS_LIBS" >&2
  printf 'log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\nlog4j.appender.stderr.Target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stderr.layout.ConversionPattern=%%p %%c: %%m%%n\n' \
    >"$TOOLS_LIBS/log4j.properties"
  touch "$TOOLS_LIBS/.complete-$KAFKA_VERSION"
}

tool() {
  fetch_tools
  local main=$1
  shift
  exec java -Xmx256m -Dlog4j.configuration="file:$TOOLS_LIBS/log4j.properties" \
    -cp "$TOOLS_LIBS/*" "$main" "$@"
}

fetch() {
  if [[ -f "$LIBS/.complete-$KAFKA_VERSION" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka's jars"
  command -v java >/dev/null || die "a Java 17+ runtime is needed to run Kafka"
  log "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central"
  rm -rf "$LIBS"
  mkdir -p "$LIBS"
  mvn -q -B -f "$CARBON_ROOT/deploy/kafka/pom.xml" \
    -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIBS"
  touch "$LIBS/.complete-$KAFKA_VERSION"
}

# The local CA and the broker's certificate, made once (openssl); the key stays unencrypted
# PKCS#8, which Kafka reads as a PEM key store without a password.
make_tls() {
  [[ -f "$TLS/broker.pem" && -f "$TLS/ca.pem" ]] && return 0
  command -v openssl >/dev/null || die "openssl is needed for the TLS listener"
  mkdir -p "$TLS"
  (
    umask 077
    cd "$TLS"
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=carbonledger local CA" \
      -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout broker.key \
      -out broker.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >broker.ext
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
      -extfile broker.ext -out broker.crt 2>/dev/null
    openssl pkcs8 -topk8 -nocrypt -in broker.key -out broker.pk8
    cat broker.pk8 broker.crt >broker.pem
  ) || die "could not create the TLS certificates under $TLS"
  chmod 644 "$TLS/ca.pem"
  log "TLS: local CA $TLS/ca.pem"
}

write_config() {
  mkdir -p "$CONF" "$DATA"
  local listeners advertised protocols
  listeners="CLIENT://$CARBON_KAFKA_HOST:$CARBON_KAFKA_PORT,CONTROLLER://$CARBON_KAFKA_HOST:$CARBON_KAFKA_CONTROLLER_PORT"
  advertised="CLIENT://$CARBON_KAFKA_HOST:$CARBON_KAFKA_PORT"
  protocols="CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
  if [[ -n "$TLS_PORT" ]]; then
    make_tls
    listeners+=",SECURE://$CARBON_KAFKA_HOST:$TLS_PORT"
    advertised+=",SECURE://$CARBON_KAFKA_HOST:$TLS_PORT"
    protocols+=",SECURE:SASL_SSL"
  fi
  # The file holds the admin secret: readable by this user only.
  umask 077
  cat >"$CONF/server.properties" <<EOF
# Written by deploy/local/kafka.sh; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$CARBON_KAFKA_HOST:$CARBON_KAFKA_CONTROLLER_PORT
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=CLIENT
listener.security.protocol.map=$protocols
# Clients and the broker itself: SCRAM users kept in the cluster metadata.
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$KAFKA_ADMIN_USER" password="$KAFKA_ADMIN_PASSWORD";
# The controller cannot read SCRAM users before it has loaded the metadata, so its
# listener knows one static PLAIN user: the broker's own.
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="$KAFKA_ADMIN_USER" password="$KAFKA_ADMIN_PASSWORD" user_$KAFKA_ADMIN_USER="$KAFKA_ADMIN_PASSWORD";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:$KAFKA_ADMIN_USER
allow.everyone.if.no.acl.found=false
log.dirs=$DATA
# Topics are created by the project from its topic map, never implicitly.
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
# A single local node: do not hold the first group join back.
group.initial.rebalance.delay.ms=0
log.segment.bytes=67108864
log.retention.check.interval.ms=60000
message.max.bytes=11534336
EOF
  if [[ -n "$TLS_PORT" ]]; then
    cat >>"$CONF/server.properties" <<EOF
# SASL_SSL, as in production: SCRAM over TLS, the certificate from $TLS.
listener.name.secure.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$KAFKA_ADMIN_USER" password="$KAFKA_ADMIN_PASSWORD";
listener.name.secure.ssl.keystore.type=PEM
listener.name.secure.ssl.keystore.location=$TLS/broker.pem
EOF
  fi
  cat >"$CONF/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka=INFO
log4j.logger.org.apache.kafka=INFO
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
EOF
}

java_cp() {
  java -Xmx256m -cp "$LIBS/*" -Dlog4j.configuration="file:$CONF/log4j.properties" "$@"
}

format_storage() {
  if [[ -f "$DATA/meta.properties" ]]; then
    [[ -f "$SASL_MARK" ]] || die "the data in $DATA predates SASL (no admin user); run: $0 reset"
    return 0
  fi
  local cluster_id
  cluster_id=$(java_cp kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
  log "formatting storage (cluster $cluster_id) with the SCRAM super user $KAFKA_ADMIN_USER"
  java_cp kafka.tools.StorageTool format -t "$cluster_id" -c "$CONF/server.properties" \
    --add-scram "SCRAM-SHA-512=[name=$KAFKA_ADMIN_USER,password=$KAFKA_ADMIN_PASSWORD]" >/dev/null
  touch "$SASL_MARK"
}

answers() {
  pid_alive "$PIDFILE" && port_open "$CARBON_KAFKA_HOST" "$CARBON_KAFKA_PORT" \
    && grep -q "Kafka Server started" "$OUT" 2>/dev/null
}

start() {
  if answers; then
    log "Kafka already running (pid $(<"$PIDFILE")) on $CARBON_KAFKA_HOST:$CARBON_KAFKA_PORT"
    return 0
  fi
  pid_alive "$PIDFILE" && stop_pid "$PIDFILE" kafka
  if port_open "$CARBON_KAFKA_HOST" "$CARBON_KAFKA_PORT"; then
    die "port $CARBON_KAFKA_PORT is taken by another process; set CARBON_KAFKA_PORT"
  fi
  fetch
  write_config
  format_storage
  log "starting Kafka $KAFKA_VERSION on $CARBON_KAFKA_HOST:$CARBON_KAFKA_PORT"
  local agent
  agent=$(jmx_agent)
  : >"$OUT"
  # shellcheck disable=SC2086  # the extra options are meant to split into words
  nohup java -Xms256m -Xmx"$CARBON_KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    $CARBON_KAFKA_JVM_OPTS $agent \
    -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$CONF/log4j.properties" \
    -cp "$LIBS/*" kafka.Kafka "$CONF/server.properties" >>"$OUT" 2>&1 &
  echo $! >"$PIDFILE"
  local i
  for i in $(seq 1 1200); do
    if answers; then
      log "Kafka is up (pid $(<"$PIDFILE"))"
      return 0
    fi
    pid_alive "$PIDFILE" || { tail -n 40 "$OUT" >&2; die "Kafka exited during start-up"; }
    sleep 0.1
  done
  tail -n 40 "$OUT" >&2
  die "Kafka did not answer within 120 s"
}

status() {
  if answers; then
    echo "kafka: up (pid $(<"$PIDFILE"), $CARBON_KAFKA_HOST:$CARBON_KAFKA_PORT)"
  else
    echo "kafka: down"
    return 1
  fi
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop_pid "$PIDFILE" kafka ;;
  status) status ;;
  tls) make_tls ;;
  fetch-tools) fetch_tools; fetch_jmx_exporter ;;
  tool) shift; tool "$@" ;;
  reset) stop_pid "$PIDFILE" kafka; rm -rf "$DATA" ;;
  *) echo "usage: $0 fetch|start|stop|status|reset|tls|fetch-tools|tool CLASS ARGS" >&2; exit 2 ;;
esac
