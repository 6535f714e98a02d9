#!/usr/bin/env bash
# Hostile input, on a fresh stack of its own (ports from XINFANG_FUZZ_PORT_BASE,
# default 41000): every gRPC method fuzzed from its request descriptor,
# --n requests (default 10,000), then the count of every status code per
# method, INTERNAL/UNKNOWN, unnamed refusals, crashed processes, and the check
# that refused requests stored and published nothing (scripts/fuzz.py).
#   scripts/fuzz.sh [--n 10000] [--seed 1] [--round 25] [--concurrency 8]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
XINFANG_ROOT=$root
source "$root/scripts/env.sh"
isolated_stack fuzz "${XINFANG_FUZZ_PORT_BASE:-41000}"
# the scanner and metrics run every second, so the stack settles fast between rounds
export XINFANG_METRICS_REFRESH_SECONDS=1 XINFANG_SCAN_SECONDS=1
"$root/scripts/install.sh" all
trap '"$root/scripts/services.sh" down >/dev/null; "$root/scripts/stack.sh" down >/dev/null' EXIT
"$root/scripts/stack.sh" reset >/dev/null
"$root/scripts/stack.sh" up
dev_keys
"$root/scripts/services.sh" up
export XINFANG_DATA
set +e
"$XINFANG_VENV/bin/python" "$root/scripts/fuzz.py" "$@"
rc=$?
set -e
if grep -l "Traceback" "$XINFANG_LOGS"/*.log >/dev/null 2>&1; then
  echo "tracebacks in the services' logs:"; grep -c "Traceback" "$XINFANG_LOGS"/{intake,assignment,supervision,reporting}.log || true
fi
exit $rc
