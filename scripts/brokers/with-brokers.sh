#!/usr/bin/env bash
# Runs a command with the test brokers up (data in a fresh temp dir) and stops them,
# removing the dir, whatever the command's outcome. FERRYMQ_BROKERS names the brokers
# (default "kafka rabbitmq rocketmq"). The command sees FERRYMQ_TEST_KAFKA (host:port),
# FERRYMQ_TEST_AMQP (a URI) and FERRYMQ_TEST_ROCKETMQ (the name server's host:port) for
# those started. Ports as the scripts take them (FERRYMQ_KAFKA_PORT,
# FERRYMQ_RABBITMQ_PORT, FERRYMQ_ROCKETMQ_PORT).
#
#   scripts/brokers/with-brokers.sh cargo test -p ferrymq-bridge --test brokers
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="$(mktemp -d)"
export FERRYMQ_BROKERS_DIR="$dir"
brokers="${FERRYMQ_BROKERS:-kafka rabbitmq rocketmq}"
# Every broker is stopped even if stopping another fails (errexit is off in here).
cleanup() {
  set +e
  for b in $brokers; do bash "$here/$b.sh" clean; done
  rm -rf "$dir"
}
trap cleanup EXIT
for b in $brokers; do bash "$here/$b.sh" start; done
for b in $brokers; do bash "$here/$b.sh" wait; done
for b in $brokers; do
  case "$b" in
    kafka) export FERRYMQ_TEST_KAFKA="127.0.0.1:${FERRYMQ_KAFKA_PORT:-19092}" ;;
    rabbitmq) export FERRYMQ_TEST_AMQP="amqp://guest:guest@127.0.0.1:${FERRYMQ_RABBITMQ_PORT:-5682}/%2f" ;;
    rocketmq) export FERRYMQ_TEST_ROCKETMQ="127.0.0.1:${FERRYMQ_ROCKETMQ_PORT:-19876}" ;;
    *) echo "with-brokers.sh: unknown broker $b" >&2; exit 2 ;;
  esac
done
"$@"
