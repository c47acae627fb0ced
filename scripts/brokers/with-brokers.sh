#!/usr/bin/env bash
# Runs a command with the test brokers up (Kafka, RabbitMQ and RocketMQ, data in a fresh
# temp dir) and stops them, removing the dir, whatever the command's outcome. The command
# sees FERRYMQ_TEST_KAFKA (host:port), FERRYMQ_TEST_AMQP (a URI) and FERRYMQ_TEST_ROCKETMQ
# (the name server's host:port). Ports as the scripts take them (FERRYMQ_KAFKA_PORT,
# FERRYMQ_RABBITMQ_PORT, FERRYMQ_ROCKETMQ_PORT).
#
#   scripts/brokers/with-brokers.sh cargo test -p ferrymq-bridge --test brokers
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="$(mktemp -d)"
export FERRYMQ_BROKERS_DIR="$dir"
trap 'bash "$here/kafka.sh" stop; bash "$here/rabbitmq.sh" stop; bash "$here/rocketmq.sh" clean; rm -rf "$dir"' EXIT
bash "$here/kafka.sh" start
bash "$here/rabbitmq.sh" start
bash "$here/rocketmq.sh" start
bash "$here/kafka.sh" wait
bash "$here/rabbitmq.sh" wait
bash "$here/rocketmq.sh" wait
export FERRYMQ_TEST_KAFKA="127.0.0.1:${FERRYMQ_KAFKA_PORT:-19092}"
export FERRYMQ_TEST_ROCKETMQ="127.0.0.1:${FERRYMQ_ROCKETMQ_PORT:-19876}"
export FERRYMQ_TEST_AMQP="amqp://guest:guest@127.0.0.1:${FERRYMQ_RABBITMQ_PORT:-5682}/%2f"
"$@"
