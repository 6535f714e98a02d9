#!/usr/bin/env bash
# Restart benchmark: how fast each service is back after a crash.
#   scripts/bench_restart.sh [--rounds N]
# On a fresh stack of its own (ports from XINFANG_RESTART_PORT_BASE, data
# under .local/restart), for each of the four services: SIGKILL it, start it
# again with scripts/services.sh up (which starts what is down), and print
#   health     seconds from the restart to gRPC health SERVING
#   processed  (consumers) seconds from the restart until the consumer has
#              finished an event registered after the restart
# Every wait is bounded (scripts/health_wait.py --timeout), everything is on
# loopback, and the stack is stopped on exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
XINFANG_ROOT=$root
source "$root/scripts/env.sh"
isolated_stack restart "${XINFANG_RESTART_PORT_BASE:-37000}"

rounds=1
while (($#)); do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N]" >&2; exit 2 ;;
  esac
done

"$root/scripts/install.sh" all
trap '"$root/scripts/services.sh" down >/dev/null 2>&1; "$root/scripts/stack.sh" down >/dev/null 2>&1' EXIT
"$root/scripts/stack.sh" reset >/dev/null
"$root/scripts/stack.sh" up
dev_keys
"$root/scripts/services.sh" up
py="$XINFANG_VENV/bin/python"
probe() { "$py" "$root/scripts/health_wait.py" "$@"; }

# steady state first: every consumer has joined its group and processed an event
for s in assignment supervision reporting; do
  probe processed "$s" --since "$(date +%s.%N)" --timeout 120 >/dev/null
done

kill9() { # service: SIGKILL it and wait until it is gone (a zombie counts as gone)
  local pid st; pid=$(cat "$XINFANG_DATA/svc-$1.pid")
  kill -9 "$pid"
  for _ in $(seq 1 50); do
    st=$(ps -o stat= -p "$pid" 2>/dev/null) || return 0
    [[ "$st" == Z* ]] && return 0
    sleep 0.1
  done
  die "$1 ($pid) survived SIGKILL"
}

printf '%-12s %5s %10s %12s\n' service round health_s processed_s
for ((r = 1; r <= rounds; r++)); do
  for s in intake assignment supervision reporting; do
    kill9 "$s"
    t0=$(date +%s.%N)
    "$root/scripts/services.sh" up >>"$XINFANG_LOGS/bench-restart-up.log" 2>&1 &
    up=$!
    health=$(probe health "$s" --since "$t0" --timeout 90 || echo timeout)
    processed=-
    if [[ $s != intake ]]; then processed=$(probe processed "$s" --since "$t0" --timeout 120 || echo timeout); fi
    # services.sh up waits (bounded) for every port; its result is part of the figure
    wait "$up" || health="$health(up failed: see $XINFANG_LOGS/bench-restart-up.log)"
    printf '%-12s %5d %10s %12s\n' "$s" "$r" "$health" "$processed"
  done
done
