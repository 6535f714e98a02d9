#!/usr/bin/env bash
# Starts, stops and reports the local stack on loopback: Apache Kafka (KRaft,
# single node), FerretDB (SQLite backend) and Prometheus. Idempotent: a
# component already answering on its port is left as it is.
#   scripts/stack.sh up|down|status|reset
set -euo pipefail
source "$(dirname "$0")/env.sh"

pidfile() { echo "$XINFANG_DATA/$1.pid"; }
running() { local f; f=$(pidfile "$1"); [[ -f "$f" ]] && kill -0 "$(cat "$f")" 2>/dev/null; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_kafka() {
  if port_open "$XINFANG_KAFKA_PORT"; then log "kafka already up on :$XINFANG_KAFKA_PORT"; return; fi
  local libs="$XINFANG_CACHE/kafka-$KAFKA_VERSION/libs" dir="$XINFANG_DATA/kafka"
  mkdir -p "$dir" "$XINFANG_LOGS"
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$XINFANG_KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$XINFANG_KAFKA_PORT,CONTROLLER://127.0.0.1:$XINFANG_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$XINFANG_KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/log
# topics are created explicitly, with fixed partition counts
auto.create.topics.enable=false
num.partitions=$XINFANG_PARTITIONS
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
  cat > "$dir/log4j2.yaml" <<'L4J'
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: WARN
      AppenderRef:
        - ref: STDOUT
L4J
  if [[ ! -f "$dir/log/meta.properties" ]]; then
    local id; id=$(java -cp "$libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
    java -cp "$libs/*" kafka.tools.StorageTool format -t "$id" -c "$dir/server.properties" \
      >>"$XINFANG_LOGS/kafka.log" 2>&1 || die "kafka storage format failed; see $XINFANG_LOGS/kafka.log"
  fi
  log "starting kafka $KAFKA_VERSION on :$XINFANG_KAFKA_PORT"
  # shellcheck disable=SC2086  # XINFANG_KAFKA_JVM_OPTS is a list of flags
  nohup java -Xms256m -Xmx"$XINFANG_KAFKA_HEAP" -XX:+UseG1GC $XINFANG_KAFKA_JVM_OPTS -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$dir/log4j2.yaml" -cp "$libs/*" kafka.Kafka "$dir/server.properties" \
    >>"$XINFANG_LOGS/kafka.log" 2>&1 &
  echo $! > "$(pidfile kafka)"
  wait_port 127.0.0.1 "$XINFANG_KAFKA_PORT" 90 kafka "$XINFANG_LOGS/kafka.log"
}

start_ferretdb() {
  if port_open "$XINFANG_MONGO_PORT"; then log "ferretdb already up on :$XINFANG_MONGO_PORT"; return; fi
  mkdir -p "$XINFANG_DATA/ferretdb" "$XINFANG_LOGS"
  log "starting ferretdb $FERRETDB_VERSION on :$XINFANG_MONGO_PORT"
  nohup "$("$XINFANG_ROOT/scripts/install.sh" --ferretdb-bin)" \
    -listen "127.0.0.1:$XINFANG_MONGO_PORT" -data "$XINFANG_DATA/ferretdb" -log-level error \
    ${XINFANG_FERRETDB_PPROF:+-pprof "$XINFANG_FERRETDB_PPROF"} \
    >>"$XINFANG_LOGS/ferretdb.log" 2>&1 &
  echo $! > "$(pidfile ferretdb)"
  wait_port 127.0.0.1 "$XINFANG_MONGO_PORT" 30 ferretdb "$XINFANG_LOGS/ferretdb.log"
}

start_prometheus() {
  if port_open "$XINFANG_PROMETHEUS_PORT"; then log "prometheus already up on :$XINFANG_PROMETHEUS_PORT"; return; fi
  local dir="$XINFANG_DATA/prometheus"
  mkdir -p "$dir/tsdb" "$XINFANG_LOGS"
  cat > "$dir/prometheus.yml" <<YML
global:
  scrape_interval: 2s
  evaluation_interval: 2s
rule_files:
  - $XINFANG_ROOT/deploy/prometheus/rules/*.yml
scrape_configs:
  - job_name: xinfang
    static_configs:
      - targets: ['127.0.0.1:$XINFANG_INTAKE_METRICS']
        labels: {service: intake}
      - targets: ['127.0.0.1:$XINFANG_ASSIGNMENT_METRICS']
        labels: {service: assignment}
      - targets: ['127.0.0.1:$XINFANG_SUPERVISION_METRICS']
        labels: {service: supervision}
      - targets: ['127.0.0.1:$XINFANG_REPORTING_METRICS']
        labels: {service: reporting}
YML
  log "starting prometheus on :$XINFANG_PROMETHEUS_PORT"
  nohup prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
    --web.listen-address="127.0.0.1:$XINFANG_PROMETHEUS_PORT" --log.level=warn \
    >>"$XINFANG_LOGS/prometheus.log" 2>&1 &
  echo $! > "$(pidfile prometheus)"
  wait_port 127.0.0.1 "$XINFANG_PROMETHEUS_PORT" 30 prometheus "$XINFANG_LOGS/prometheus.log"
}

stop_one() {
  local f; f=$(pidfile "$1")
  if running "$1"; then
    local pid; pid=$(cat "$f")
    log "stopping $1 ($pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

case "${1:-}" in
  up)
    "$XINFANG_ROOT/scripts/install.sh" stack
    mkdir -p "$XINFANG_DATA"
    start_kafka; start_ferretdb; start_prometheus
    "$XINFANG_VENV/bin/python" -m xinfang.core.topics ensure
    log "stack is up (logs: $XINFANG_LOGS)"
    ;;
  down)
    stop_one prometheus; stop_one ferretdb; stop_one kafka ;;
  status)
    for c in kafka:$XINFANG_KAFKA_PORT ferretdb:$XINFANG_MONGO_PORT prometheus:$XINFANG_PROMETHEUS_PORT; do
      if port_open "${c#*:}"; then echo "${c%%:*} up (:${c#*:})"; else echo "${c%%:*} down"; fi
    done ;;
  reset)
    "$0" down; rm -rf "$XINFANG_DATA"; log "data removed" ;;
  *) echo "usage: $0 up|down|status|reset" >&2; exit 2 ;;
esac
