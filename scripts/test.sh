#!/usr/bin/env bash
# Command 2: install what is missing, then run every check and test.
#   lint (ruff), types (mypy), generated code up to date, the FerretDB
#   wrapper vetted, then pytest over tests/: unit tests (no I/O) and
#   integration/e2e tests against a real stack this script starts on its own
#   ports and data folder, so a running demo is not disturbed.
# Extra arguments go to pytest (e.g. scripts/test.sh -k pipeline).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

# a separate home and ports for the test stack; the download cache is shared
export XINFANG_CACHE=${XINFANG_CACHE:-$root/.local/cache}
export XINFANG_HOME=${XINFANG_TEST_HOME:-$root/.local/test}
export XINFANG_KAFKA_PORT=29092 XINFANG_KAFKA_CONTROLLER_PORT=29093
export XINFANG_MONGO_PORT=28018 XINFANG_PROMETHEUS_PORT=29090
export XINFANG_INTAKE_GRPC=51061 XINFANG_ASSIGNMENT_GRPC=51062
export XINFANG_SUPERVISION_GRPC=51063 XINFANG_REPORTING_GRPC=51064
export XINFANG_INTAKE_METRICS=9261 XINFANG_ASSIGNMENT_METRICS=9262
export XINFANG_SUPERVISION_METRICS=9263 XINFANG_REPORTING_METRICS=9264
export XINFANG_METRICS_REFRESH_SECONDS=1
source "$root/scripts/env.sh"

"$root/scripts/install.sh" all
py="$XINFANG_VENV/bin"

log "lint and types"
"$py/ruff" check "$root"
"$py/ruff" format --check "$root"
(cd "$root" && "$py/mypy")
"$root/scripts/gen_protos.sh" --check
(cd "$root/scripts/ferretdb" && go vet ./...)

cleanup() {
  "$root/scripts/services.sh" down || true
  "$root/scripts/stack.sh" down || true
}
trap cleanup EXIT
"$root/scripts/stack.sh" reset
"$root/scripts/stack.sh" up
"$root/scripts/services.sh" up

log "pytest"
set +e
(cd "$root" && "$py/python" -m pytest tests -p no:cacheprovider "$@")
rc=$?
set -e
if ((rc != 0)); then
  for s in intake assignment supervision reporting; do
    echo "--- last lines of $s.log" >&2; tail -n 20 "$XINFANG_LOGS/$s.log" >&2 || true
  done
fi
exit $rc
