# Sourced by kafka.sh, rabbitmq.sh and rocketmq.sh: what they do the same way.

# Copies the runtime jars POM $1 depends on (from Maven Central) into $2/lib, once: the
# marker file says a copy finished.
fetch_jars() {
  local pom="$1" cache="$2"
  [ -f "$cache/.complete" ] && return
  command -v mvn >/dev/null || { echo "$(basename "$0"): mvn is required" >&2; exit 1; }
  mkdir -p "$cache"
  mvn -q -B -f "$pom" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$cache/lib"
  touch "$cache/.complete"
}

# Waits up to 30 s for process $1 to exit; fails if it is still there.
await_exit() {
  for _ in $(seq 1 120); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.25; done
  return 1
}

# The command line each takes; each script defines start, wait_ready and stop.
main() {
  case "${1:-}" in
    start) start ;;
    wait) wait_ready ;;
    stop) stop ;;
    clean) stop; rm -rf "$base" ;;
    *) echo "usage: $0 start|wait|stop|clean" >&2; exit 2 ;;
  esac
}
