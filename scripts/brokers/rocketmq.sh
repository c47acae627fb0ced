#!/usr/bin/env bash
# RocketMQ 5.5.0 (a name server and one broker, remoting protocol) for the bridge tests,
# from Maven Central jars on the local JDK (17+). No download outside Maven.
#
#   scripts/brokers/rocketmq.sh start   fetch the jars once, start the name server (if
#                                       down) and the broker
#   scripts/brokers/rocketmq.sh wait    block until the broker said it booted and both
#                                       ports answer (up to 120 s)
#   scripts/brokers/rocketmq.sh stop    SIGTERM the broker (it flushes and deregisters);
#                                       the name server keeps running, its store is kept
#   scripts/brokers/rocketmq.sh clean   stop both and delete the data
#
# stop + start restarts the broker with its store, so a test can do it mid-run; the
# clients' name server stays up throughout, as it would in a cluster.
# Env: FERRYMQ_BROKERS_DIR (data, logs, pids; default /tmp/ferrymq-brokers),
#      FERRYMQ_BROKERS_CACHE (the jars; default ~/.cache/ferrymq-brokers),
#      FERRYMQ_ROCKETMQ_PORT (the name server, default 19876; the broker listens on
#      that + 1000, and RocketMQ also takes the broker's port - 2 and + 1).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"
base="${FERRYMQ_BROKERS_DIR:-/tmp/ferrymq-brokers}/rocketmq"
cache="${FERRYMQ_BROKERS_CACHE:-$HOME/.cache/ferrymq-brokers}/rocketmq-5.5.0"
port="${FERRYMQ_ROCKETMQ_PORT:-19876}"
bport=$((port + 1000))
pidfile="$base/broker.pid"
nspidfile="$base/namesrv.pid"

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
running() { alive "$pidfile"; }

fetch() { fetch_jars "$here/rocketmq-pom.xml" "$cache"; }

# ROCKETMQ_HOME is required by both mains; user.home is where they write their logs.
launch() { # launch PIDFILE OUT MAIN ARGS...
  local pidf="$1" out="$2"; shift 2
  echo "=== start $(date -u +%FT%TZ)" >> "$out"
  ROCKETMQ_HOME="$base" nohup java -Xms256m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true \
    -Duser.home="$base" -Drocketmq.home.dir="$base" \
    -Drocketmq.broker.diskSpaceWarningLevelRatio=0.98 -Drocketmq.broker.diskSpaceCleanForciblyRatio=0.97 \
    -cp "$cache/lib/*" "$@" >> "$out" 2>&1 < /dev/null &
  echo $! > "$pidf"
}

configure() {
  mkdir -p "$base/store" "$base/conf"
  # Small commit-log files (the default maps 1 GiB each); four queues per topic, as Kafka's
  # partitions. The disk ratios: a CI disk fuller than RocketMQ's defaults (75% starts
  # deleting, 90% refuses writes) must not fail the tests.
  cat > "$base/conf/broker.conf" <<PROPS
brokerClusterName=ferrymq
brokerName=broker-a
brokerId=0
brokerIP1=127.0.0.1
listenPort=$bport
namesrvAddr=127.0.0.1:$port
storePathRootDir=$base/store
storePathCommitLog=$base/store/commitlog
mappedFileSizeCommitLog=67108864
autoCreateTopicEnable=true
defaultTopicQueueNums=4
deleteWhen=04
fileReservedTime=48
diskMaxUsedSpaceRatio=95
brokerRole=ASYNC_MASTER
flushDiskType=ASYNC_FLUSH
PROPS
  cat > "$base/conf/namesrv.conf" <<PROPS
listenPort=$port
PROPS
}

start() {
  fetch
  configure
  if ! alive "$nspidfile"; then
    launch "$nspidfile" "$base/namesrv.out" org.apache.rocketmq.namesrv.NamesrvStartup -c "$base/conf/namesrv.conf"
    echo "rocketmq: name server started (pid $(cat "$nspidfile"), 127.0.0.1:$port)"
  fi
  if running; then echo "rocketmq: broker already running (pid $(cat "$pidfile"))"; return; fi
  launch "$pidfile" "$base/broker.out" org.apache.rocketmq.broker.BrokerStartup -c "$base/conf/broker.conf"
  echo "rocketmq: broker started (pid $(cat "$pidfile"), 127.0.0.1:$bport, store $base/store)"
}

# Ready when the latest start's output says the broker booted and both ports answer.
wait_ready() {
  for _ in $(seq 1 240); do
    if ! running; then echo "rocketmq: broker not running; see $base/broker.out" >&2; tail -20 "$base/broker.out" >&2 || true; exit 1; fi
    if sed -n '/^=== start/h;//!H;${x;p}' "$base/broker.out" 2>/dev/null | grep -q "boot success" \
       && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null \
       && (exec 3<>"/dev/tcp/127.0.0.1/$bport") 2>/dev/null; then
      echo "rocketmq: ready (name server 127.0.0.1:$port)"; return
    fi
    sleep 0.5
  done
  echo "rocketmq: not ready after 120 s; see $base/broker.out" >&2; exit 1
}

stop_one() { # stop_one PIDFILE NAME
  alive "$1" || { rm -f "$1"; echo "rocketmq: $2 not running"; return; }
  local pid; pid="$(cat "$1")"
  kill -TERM "$pid" 2>/dev/null || true
  await_exit "$pid" || kill -KILL "$pid" 2>/dev/null || true
  rm -f "$1"
  echo "rocketmq: $2 stopped"
}

stop() { stop_one "$pidfile" broker; }

case "${1:-}" in
  clean) stop; stop_one "$nspidfile" "name server"; rm -rf "$base" ;;
  *) main "$@" ;;
esac
