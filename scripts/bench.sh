#!/usr/bin/env bash
# Benchmark, on a fresh stack of its own (ports from XINFANG_BENCH_PORT_BASE,
# default 24000, below the kernel's ephemeral ports; data under .local/bench,
# reset at every run), printing every figure of one run and a summary with
# each figure's target:
#   bench.py        a warm-up of --warmup cases (not counted: the broker's JIT
#                   and the pools), a burst of --n cases (cases/s, store
#                   calls per case), a steady phase at --steady-rate cases/s (p50/p99/max latency),
#                   the rebuild by replay, Kafka's own producer/consumer ceilings
#   bench_store.py  the store's own ceilings on the same FerretDB: raw
#                   updates/s by _id, and the services' write calls of the
#                   run replayed straight at the store
#   bench_clocks.py supervision's scanner and re-evaluation on the store
# Usage, with the defaults:
#   scripts/bench.sh [--n 5000] [--warmup 1000] [--concurrency 32] [--seed 42] [--rate 0]
#                    [--steady-n 1500] [--steady-rate 50]
#                    [--kafka-records 200000] [--kafka-warmup 50000] [--clocks 2000]
#   --rate 0: the burst is not paced; --warmup 0, --steady-n 0, --kafka-records 0, --clocks 0: skip
#   that phase. A quick run: scripts/bench.sh --n 300 --steady-n 150
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
XINFANG_ROOT=$root
source "$root/scripts/env.sh"
isolated_stack bench "${XINFANG_BENCH_PORT_BASE:-24000}"
clocks=2000
args=()
while (($#)); do
  case "$1" in
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --clocks) clocks=$2; shift 2 ;;
    --clocks=*) clocks=${1#*=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
"$root/scripts/install.sh" all
trap '"$root/scripts/services.sh" down >/dev/null; "$root/scripts/stack.sh" down >/dev/null' EXIT
"$root/scripts/stack.sh" reset >/dev/null
"$root/scripts/stack.sh" up
dev_keys
# every write the services send is kept, for bench_store.py to replay at the store
export XINFANG_STORE_TRACE="$XINFANG_DATA/store-trace"
"$root/scripts/services.sh" up
mkdir -p "$XINFANG_DATA"
export XINFANG_KAFKA_LIBS="$XINFANG_CACHE/kafka-$KAFKA_VERSION/libs" XINFANG_DATA
export XINFANG_BENCH_RESULTS="$XINFANG_DATA/bench-results.json"
py="$XINFANG_VENV/bin/python"
"$py" "$root/scripts/bench.py" "${args[@]}"
"$py" "$root/scripts/bench_store.py"
if ((clocks > 0)); then "$py" "$root/scripts/bench_clocks.py" --n "$clocks"; fi
echo
"$py" "$root/scripts/bench.py" --summary
echo "(figures of this run: $XINFANG_BENCH_RESULTS; 2 cores, shared: indicative only)"
