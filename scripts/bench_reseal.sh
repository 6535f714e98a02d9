#!/usr/bin/env bash
# The identity-key rotation's figures on a fresh stack of its own (ports from
# XINFANG_BENCH_PORT_BASE, data under .local/bench-keys): scripts/bench_reseal.py.
#   scripts/bench_reseal.sh [--n 2000] [--load 4]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
XINFANG_ROOT=$root
source "$root/scripts/env.sh"
isolated_stack bench-keys "${XINFANG_BENCH_PORT_BASE:-24000}"
"$root/scripts/install.sh" all
trap '"$root/scripts/services.sh" down >/dev/null; "$root/scripts/stack.sh" down >/dev/null' EXIT
"$root/scripts/stack.sh" reset >/dev/null
"$root/scripts/stack.sh" up
dev_keys
"$root/scripts/services.sh" up
"$XINFANG_VENV/bin/python" "$root/scripts/bench_reseal.py" "$@"
