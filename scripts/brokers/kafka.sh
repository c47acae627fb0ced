#!/usr/bin/env bash
# Kafka 4.4.0 in KRaft combined mode (one node: broker + controller) for the bridge tests,
# from Maven Central jars on the local JDK (17+). No download outside Maven.
#
#   scripts/brokers/kafka.sh start   fetch the jars once, format storage once, start
#   scripts/brokers/kafka.sh wait    block until the broker serves (up to 120 s)
#   scripts/brokers/kafka.sh stop    SIGTERM (controlled shutdown), data kept
#   scripts/brokers/kafka.sh clean   stop and delete the data
#
# stop + start keeps the data, so a test can restart the broker mid-run.
# Env: FERRYMQ_BROKERS_DIR (data, logs, pid; default /tmp/ferrymq-brokers),
#      FERRYMQ_BROKERS_CACHE (the jars; default ~/.cache/ferrymq-brokers),
#      FERRYMQ_KAFKA_PORT (default 19092; the controller listens on the next port).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"
base="${FERRYMQ_BROKERS_DIR:-/tmp/ferrymq-brokers}/kafka"
cache="${FERRYMQ_BROKERS_CACHE:-$HOME/.cache/ferrymq-brokers}/kafka-4.4.0"
port="${FERRYMQ_KAFKA_PORT:-19092}"
cport=$((port + 1))
pidfile="$base/kafka.pid"
log="$base/server.log"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

fetch() { fetch_jars "$here/kafka-pom.xml" "$cache"; }

java_cmd() {
  java -Xms256m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$base/log4j2.properties" \
    -cp "$cache/lib/*" "$@"
}

configure() {
  mkdir -p "$base/data"
  cat > "$base/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$base/data
num.partitions=4
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
  cat > "$base/log4j2.properties" <<PROPS
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $log
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
PROPS
}

start() {
  if running; then echo "kafka: already running (pid $(cat "$pidfile"))"; return; fi
  fetch
  configure
  if [ ! -f "$base/data/meta.properties" ]; then
    local id
    id="$(java_cmd kafka.tools.StorageTool random-uuid | tail -1)"
    java_cmd kafka.tools.StorageTool format -t "$id" -c "$base/server.properties" --standalone >/dev/null
  fi
  echo "=== start $(date -u +%FT%TZ)" >> "$log"
  nohup java -Xms256m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$base/log4j2.properties" \
    -cp "$cache/lib/*" kafka.Kafka "$base/server.properties" \
    >> "$base/stdout.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  echo "kafka: started (pid $!, 127.0.0.1:$port, data $base/data)"
}

# Ready when the log of the latest start says the server started and the port answers.
wait_ready() {
  for _ in $(seq 1 240); do
    if ! running; then echo "kafka: not running; see $log $base/stdout.log" >&2; tail -20 "$base/stdout.log" >&2 || true; exit 1; fi
    if sed -n '/^=== start/h;//!H;${x;p}' "$log" 2>/dev/null | grep -q "Kafka Server started" \
       && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "kafka: ready on 127.0.0.1:$port"; return
    fi
    sleep 0.5
  done
  echo "kafka: not ready after 120 s; see $log" >&2; exit 1
}

stop() {
  running || { rm -f "$pidfile"; echo "kafka: not running"; return; }
  local pid; pid="$(cat "$pidfile")"
  kill -TERM "$pid"
  await_exit "$pid" || kill -KILL "$pid"
  rm -f "$pidfile"
  echo "kafka: stopped"
}

main "$@"
