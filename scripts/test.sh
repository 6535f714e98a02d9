#!/usr/bin/env bash
# Command 2: install what is missing, then run every check and test.
#   lint (ruff), types (mypy), generated code up to date, the FerretDB
#   wrapper vetted, then pytest over tests/: unit tests (no I/O) and
#   integration/e2e tests against a real stack this script starts on its own
#   ports and data folder, so a running demo is not disturbed.
# Extra arguments go to pytest (e.g. scripts/test.sh -k pipeline).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

XINFANG_ROOT=$root
source "$root/scripts/env.sh"
# XINFANG_TEST_PORT_BASE: another base lets two checkouts test side by side
isolated_stack test "${XINFANG_TEST_PORT_BASE:-29000}"
export XINFANG_METRICS_REFRESH_SECONDS=1 XINFANG_SCAN_SECONDS=1
source "$root/scripts/env.sh"

"$root/scripts/install.sh" all
py="$XINFANG_VENV/bin"

log "lint and types"
"$py/ruff" check "$root"
"$py/ruff" format --check "$root"
(cd "$root" && "$py/mypy" && "$py/mypy" tests scripts/*.py)
"$root/scripts/gen_protos.sh" --check
(cd "$root/scripts/ferretdb" && go vet ./... && go test ./...)
(promtool check rules "$root"/deploy/prometheus/rules/*.yml && promtool test rules "$root"/deploy/prometheus/tests/*.yml)
"$root/scripts/validate_deploy.sh"

cleanup() {
  "$root/scripts/services.sh" down || true
  "$root/scripts/stack.sh" down || true
}
trap cleanup EXIT
"$root/scripts/services.sh" down
"$root/scripts/stack.sh" reset
"$root/scripts/stack.sh" up
dev_keys
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
