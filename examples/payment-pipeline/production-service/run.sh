#!/usr/bin/env bash
# Starts the production service built by `mvn package` here (see pom.xml): run.sh DB
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec java -cp "$HERE/target/classes:$(cat "$HERE/target/classpath.txt")" ferrymq.pipeline.ProductionServiceKt "$@"
