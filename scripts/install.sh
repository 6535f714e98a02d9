#!/usr/bin/env bash
# Installs whatever is missing for the local stack and the services; safe to
# run again (each step is skipped when its result is already there).
#   scripts/install.sh [python|kafka|ferretdb|prometheus|all]
# Go >= the go line of scripts/ferretdb/go.mod builds FerretDB; XINFANG_GO names
# another go binary than the one on PATH.
set -euo pipefail
source "$(dirname "$0")/env.sh"

install_python() {
  local stamp="$XINFANG_VENV/.xinfang-deps"
  local want
  want=$(cat "$XINFANG_ROOT"/requirements*.txt "$XINFANG_ROOT/constraints.txt" | sha256sum | cut -c1-16)
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return 0; fi
  local py=${XINFANG_BASE_PYTHON:-}
  if [[ -z "$py" ]]; then
    for c in python3.11 python3.12 python3.13 python3; do
      if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then py=$c; break; fi
    done
  fi
  [[ -n "$py" ]] || die "Python >= 3.11 is required"
  need_apt fonts-noto-cjk # Chinese glyphs for the report charts (reporting/report/charts.py)
  if [[ ! -x "$XINFANG_VENV/bin/python" ]]; then
    log "creating virtualenv $XINFANG_VENV ($("$py" --version))"
    "$py" -m venv "$XINFANG_VENV" 2>/dev/null || { need_apt python3-venv; "$py" -m venv "$XINFANG_VENV"; }
  fi
  log "installing Python dependencies"
  "$XINFANG_VENV/bin/pip" install -q --disable-pip-version-check \
    -r "$XINFANG_ROOT/requirements-dev.txt" -c "$XINFANG_ROOT/constraints.txt"
  "$XINFANG_VENV/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation -e "$XINFANG_ROOT"
  echo "$want" > "$stamp"
}

install_kafka() {
  local dir="$XINFANG_CACHE/kafka-$KAFKA_VERSION"
  [[ -f "$dir/.complete" ]] && return 0
  command -v java >/dev/null || need_apt default-jre-headless
  command -v mvn >/dev/null || need_apt maven
  log "resolving Apache Kafka $KAFKA_VERSION jars with Maven"
  rm -rf "$dir"; mkdir -p "$dir"
  mvn -q -B -f "$XINFANG_ROOT/scripts/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dir/libs"
  ls "$dir/libs" | grep -q "^kafka_2.13-$KAFKA_VERSION.jar$" || die "kafka jars missing after Maven"
  touch "$dir/.complete"
}

ferretdb_bin() { # the wrapper's sources are part of the cache key
  local h; h=$(cat "$XINFANG_ROOT"/scripts/ferretdb/{main.go,go.mod,go.sum} | sha256sum | cut -c1-12)
  echo "$XINFANG_CACHE/ferretdb-$FERRETDB_VERSION-$h/xinfang-ferretdb"
}

# The Go the wrapper's module asks for (the "go" line of scripts/ferretdb/go.mod).
# Go older than that cannot build it: Debian 12's golang-go is 1.19, and Go
# before 1.21 cannot even fetch a newer toolchain by itself.
check_go() {
  local go=$1 want have
  want=$(awk '$1 == "go" {print $2; exit}' "$XINFANG_ROOT/scripts/ferretdb/go.mod")
  have=$("$go" env GOVERSION 2>/dev/null || "$go" version | awk '{print $3}')
  have=${have#go}
  if [[ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -1)" != "$want" ]]; then
    die "$("$go" version 2>/dev/null || echo "$go") cannot build the FerretDB wrapper: its go.mod needs Go >= $want.
  Install Go >= $want (Debian 13's golang-go is 1.24; on an older release a golang-1.24 or newer
  package where it has one, or Go's own release archive), then put its bin/ first on PATH or name
  it: XINFANG_GO=/usr/lib/go-1.24/bin/go scripts/install.sh ferretdb"
  fi
}

install_ferretdb() {
  local bin; bin=$(ferretdb_bin)
  [[ -x "$bin" ]] && return 0
  local go=${XINFANG_GO:-go}
  command -v "$go" >/dev/null || need_apt golang-go
  command -v "$go" >/dev/null || die "no Go found (XINFANG_GO=$go): install Go >= 1.24"
  check_go "$go"
  log "building FerretDB $FERRETDB_VERSION (embedded, SQLite backend) with $("$go" version | awk '{print $3}'); first build takes a few minutes"
  mkdir -p "$(dirname "$bin")"
  (cd "$XINFANG_ROOT/scripts/ferretdb" && "$go" build -trimpath -o "$bin.tmp" .) && mv "$bin.tmp" "$bin"
}

install_prometheus() {
  command -v prometheus >/dev/null && command -v promtool >/dev/null && return 0
  need_apt prometheus
}

what=${1:-all}
[[ "$what" == "--ferretdb-bin" ]] && { ferretdb_bin; exit 0; }
[[ "$what" == "--check-go" ]] && { check_go "${XINFANG_GO:-go}"; exit 0; }
case "$what" in
  python) install_python ;;
  kafka) install_kafka ;;
  ferretdb) install_ferretdb ;;
  prometheus) install_prometheus ;;
  stack) install_kafka; install_ferretdb; install_prometheus ;;
  all) install_python; install_kafka; install_ferretdb; install_prometheus ;;
  *) die "unknown component: $what" ;;
esac
