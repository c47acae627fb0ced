#!/usr/bin/env bash
# RabbitMQ for the bridge tests: Debian's rabbitmq-server (installed with apt-get when
# missing), run as a plain process (not the system service) with its node, data, logs and
# Erlang cookie in a temp dir.
#
#   scripts/brokers/rabbitmq.sh start   install once, start the node
#   scripts/brokers/rabbitmq.sh wait    block until `rabbitmqctl await_startup` says it booted
#   scripts/brokers/rabbitmq.sh stop    `rabbitmqctl stop` (clean shutdown), data kept
#   scripts/brokers/rabbitmq.sh clean   stop and delete the data
#
# stop + start keeps the data (durable queues, persistent messages), so a test can restart
# the broker mid-run.
# Env: FERRYMQ_BROKERS_DIR (default /tmp/ferrymq-brokers), FERRYMQ_RABBITMQ_PORT (AMQP,
# default 5682; Erlang distribution on port + 20000).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"
base="${FERRYMQ_BROKERS_DIR:-/tmp/ferrymq-brokers}/rabbitmq"
port="${FERRYMQ_RABBITMQ_PORT:-5682}"
bin=/usr/lib/rabbitmq/bin
# The node name carries the port, so two runs on different ports do not meet in epmd.
node="ferrymq-test-$port@localhost"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

install() {
  [ -x "$bin/rabbitmq-server" ] && return
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq rabbitmq-server
  # The package starts the system service where there is an init system; this node is ours.
  $SUDO service rabbitmq-server stop >/dev/null 2>&1 || true
}

env_for_node() {
  export HOME="$base/home"
  export RABBITMQ_NODENAME="$node"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT="$port"
  export RABBITMQ_DIST_PORT=$((port + 20000))
  export RABBITMQ_MNESIA_BASE="$base/mnesia"
  export RABBITMQ_LOG_BASE="$base/log"
  export RABBITMQ_PID_FILE="$base/rabbit.pid"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$base/enabled_plugins"
  export RABBITMQ_CONFIG_FILE="$base/rabbitmq.conf"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$base/advanced.config"
  export RABBITMQ_CONF_ENV_FILE="$base/rabbitmq-env.conf"
  # A node that fails to boot writes its crash dump here, not into the caller's directory.
  export ERL_CRASH_DUMP="$base/erl_crash.dump"
}

configure() {
  mkdir -p "$base/home" "$base/mnesia" "$base/log"
  [ -f "$base/home/.erlang.cookie" ] || {
    head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$base/home/.erlang.cookie"
    chmod 400 "$base/home/.erlang.cookie"
  }
  echo "[]." > "$base/enabled_plugins"
  echo "[]." > "$base/advanced.config"
  : > "$base/rabbitmq-env.conf"
  cat > "$base/rabbitmq.conf" <<CONF
loopback_users = none
# The tests hold a backlog; do not block publishers on this small test machine.
disk_free_limit.absolute = 50MB
vm_memory_high_watermark.relative = 0.6
CONF
}

running() { env_for_node; "$bin/rabbitmqctl" -q -n "$node" ping >/dev/null 2>&1; }

start() {
  install
  configure
  env_for_node
  if running; then echo "rabbitmq: already running"; return; fi
  echo "=== start $(date -u +%FT%TZ)" >> "$base/stdout.log"
  nohup "$bin/rabbitmq-server" >> "$base/stdout.log" 2>&1 < /dev/null &
  echo $! > "$base/launcher.pid"
  echo "rabbitmq: starting (127.0.0.1:$port, data $base)"
}

wait_ready() {
  env_for_node
  for _ in $(seq 1 60); do
    [ -f "$base/rabbit.pid" ] && break
    sleep 0.5
  done
  if ! timeout 120 "$bin/rabbitmqctl" -q -n "$node" await_startup --timeout 110; then
    echo "rabbitmq: not ready; see $base/stdout.log $base/log" >&2
    tail -20 "$base/stdout.log" >&2 || true
    exit 1
  fi
  echo "rabbitmq: ready on 127.0.0.1:$port"
}

stop() {
  env_for_node
  if running; then "$bin/rabbitmqctl" -q -n "$node" stop "$base/rabbit.pid" >/dev/null; fi
  if [ -f "$base/launcher.pid" ]; then
    local pid; pid="$(cat "$base/launcher.pid")"
    await_exit "$pid" || true
    rm -f "$base/launcher.pid"
  fi
  echo "rabbitmq: stopped"
}

main "$@"
