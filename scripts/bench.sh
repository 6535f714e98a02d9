#!/usr/bin/env bash
# Benchmark: N petitions through all four services on a fresh stack of its
# own, beside the broker's own ceiling for the same messages.
#   scripts/bench.sh [--n 5000] [--concurrency 32]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
XINFANG_ROOT=$root
source "$root/scripts/env.sh"
isolated_stack bench "${XINFANG_BENCH_PORT_BASE:-39000}"
"$root/scripts/install.sh" all
trap '"$root/scripts/services.sh" down >/dev/null; "$root/scripts/stack.sh" down >/dev/null' EXIT
"$root/scripts/stack.sh" reset >/dev/null
"$root/scripts/stack.sh" up
dev_keys
"$root/scripts/services.sh" up
export XINFANG_KAFKA_LIBS="$XINFANG_CACHE/kafka-$KAFKA_VERSION/libs" XINFANG_DATA
"$XINFANG_VENV/bin/python" "$root/scripts/bench.py" "$@"
