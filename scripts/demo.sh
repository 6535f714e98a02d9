#!/usr/bin/env bash
# Command 1: install what is missing, start the local stack (Kafka, FerretDB,
# Prometheus) and the four services, feed the sample district's petitions
# through them and print the result.
#   scripts/demo.sh [--keep] [xinfang demo options: --n 2000 --lang en --seed 7]
# --keep leaves everything running afterwards (Prometheus on :19090).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/env.sh"

keep=0
args=()
for a in "$@"; do
  if [[ "$a" == "--keep" ]]; then keep=1; else args+=("$a"); fi
done

"$root/scripts/install.sh" all
"$root/scripts/stack.sh" up
if ((keep == 0)); then
  trap '"$root/scripts/services.sh" down; "$root/scripts/stack.sh" down' EXIT
fi
dev_keys
"$root/scripts/services.sh" up
up_at=$SECONDS
"$XINFANG_VENV/bin/xinfang" demo "${args[@]}"
log "demo: $((SECONDS - up_at)) s after the stack and the services were up"
if ((keep == 1)); then
  log "still running: scripts/services.sh down && scripts/stack.sh down to stop"
  log "Prometheus: $XINFANG_PROMETHEUS_URL  logs: $XINFANG_LOGS"
fi
