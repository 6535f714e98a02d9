#!/usr/bin/env bash
# The fault harness (scripts/chaos.py --help): on a fresh stack of its own
# (ports from XINFANG_CHAOS_PORT_BASE, default 25000, data under .local/chaos), a steady load
# of registrations while each service, Kafka and FerretDB is SIGKILLed and
# restarted in turn (and FerretDB left down, and poison written); then every
# acknowledged registration is checked, and a figure per victim printed.
#   scripts/chaos.sh [--n 600] [--rate 20] [--kill intake,kafka,...] [--replicas 2] [--json FILE]
# Everything is on loopback; every wait is bounded; the stack is stopped on exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
XINFANG_ROOT=$root
source "$root/scripts/env.sh"
isolated_stack chaos "${XINFANG_CHAOS_PORT_BASE:-25000}"
# the scanner and the figures' refresh as the tests run them
export XINFANG_METRICS_REFRESH_SECONDS=${XINFANG_METRICS_REFRESH_SECONDS:-2}
"$root/scripts/install.sh" all
trap '"$root/scripts/services.sh" down >/dev/null 2>&1; "$root/scripts/stack.sh" down >/dev/null 2>&1' EXIT
"$root/scripts/services.sh" down >/dev/null 2>&1 || true
"$root/scripts/stack.sh" reset >/dev/null
"$root/scripts/stack.sh" up
dev_keys
"$root/scripts/services.sh" up
export XINFANG_DATA XINFANG_LOGS
"$XINFANG_VENV/bin/python" "$root/scripts/chaos.py" "$@"
