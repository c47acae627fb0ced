# Sourced by kafka.sh and rabbitmq.sh: what both do the same way.

# Waits up to 30 s for process $1 to exit; fails if it is still there.
await_exit() {
  for _ in $(seq 1 120); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.25; done
  return 1
}

# The command line both take; each script defines start, wait_ready and stop.
main() {
  case "${1:-}" in
    start) start ;;
    wait) wait_ready ;;
    stop) stop ;;
    clean) stop; rm -rf "$base" ;;
    *) echo "usage: $0 start|wait|stop|clean" >&2; exit 2 ;;
  esac
}
