# Shared settings for the local stack; sourced by the other scripts.
# Every value can be overridden from the environment.
XINFANG_ROOT=${XINFANG_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

# isolated_stack NAME BASE: a stack of its own (data under .local/NAME, ports
# from BASE) for the tests and the benchmark, so a running demo is left alone.
# The download cache stays shared.
isolated_stack() {
  local name=$1 b=$2
  export XINFANG_CACHE=${XINFANG_CACHE:-$XINFANG_ROOT/.local/cache}
  export XINFANG_HOME=$XINFANG_ROOT/.local/$name
  export XINFANG_KAFKA_PORT=$((b + 92)) XINFANG_KAFKA_CONTROLLER_PORT=$((b + 93))
  export XINFANG_MONGO_PORT=$((b + 17)) XINFANG_PROMETHEUS_PORT=$((b + 90))
  export XINFANG_INTAKE_GRPC=$((b + 61)) XINFANG_ASSIGNMENT_GRPC=$((b + 62))
  export XINFANG_SUPERVISION_GRPC=$((b + 63)) XINFANG_REPORTING_GRPC=$((b + 64))
  export XINFANG_INTAKE_METRICS=$((b + 71)) XINFANG_ASSIGNMENT_METRICS=$((b + 72))
  export XINFANG_SUPERVISION_METRICS=$((b + 73)) XINFANG_REPORTING_METRICS=$((b + 74))
  unset XINFANG_DATA XINFANG_LOGS XINFANG_STATE_DIR XINFANG_KAFKA_BOOTSTRAP XINFANG_MONGO_URI XINFANG_PROMETHEUS_URL
  source "$XINFANG_ROOT/scripts/env.sh"
}
# dev_keys: development keys, made once per data folder and exported:
# XINFANG_IDENTITY_KEY (seals petitioner identity; intake only) and
# XINFANG_AUTH_KEY (signs the gRPC bearer tokens; services and local tools),
# and XINFANG_IDENTITY_KEYS_FILE, the identity key ring intake reads again while
# it runs (empty at first: the key above is version 1; add {"keys": {"2": ...}}
# to rotate, then `xinfang keys reseal`). Production sets them from a secret
# store (see charts/).
dev_keys() {
  local name var f
  for name in identity auth; do
    var=XINFANG_${name^^}_KEY
    if [[ -z "${!var:-}" ]]; then
      f="$XINFANG_HOME/$name.key"
      if [[ ! -f "$f" ]]; then
        mkdir -p "$XINFANG_HOME"
        (umask 077 && head -c 32 /dev/urandom | base64 > "$f")
      fi
      printf -v "$var" '%s' "$(cat "$f")"
    fi
    export "${var?}"
  done
  if [[ -z "${XINFANG_IDENTITY_KEYS_FILE:-}" ]]; then
    XINFANG_IDENTITY_KEYS_FILE="$XINFANG_HOME/identity-keys.json"
    [[ -f "$XINFANG_IDENTITY_KEYS_FILE" ]] \
      || (umask 077 && echo '{"keys": {}}' > "$XINFANG_IDENTITY_KEYS_FILE")
  fi
  export XINFANG_IDENTITY_KEYS_FILE
}
XINFANG_HOME=${XINFANG_HOME:-$XINFANG_ROOT/.local}       # caches, data, logs (git-ignored)
XINFANG_CACHE=${XINFANG_CACHE:-$XINFANG_HOME/cache}      # kafka jars, ferretdb binary
XINFANG_DATA=${XINFANG_DATA:-$XINFANG_HOME/data}
XINFANG_LOGS=${XINFANG_LOGS:-$XINFANG_HOME/logs}
XINFANG_VENV=${XINFANG_VENV:-$XINFANG_ROOT/.venv}

KAFKA_VERSION=${KAFKA_VERSION:-4.1.1}                   # also in scripts/kafka/pom.xml
FERRETDB_VERSION=${FERRETDB_VERSION:-v1.24.2}           # also in scripts/ferretdb/go.mod
XINFANG_KAFKA_PORT=${XINFANG_KAFKA_PORT:-19092}
XINFANG_KAFKA_CONTROLLER_PORT=${XINFANG_KAFKA_CONTROLLER_PORT:-19093}
XINFANG_KAFKA_HEAP=${XINFANG_KAFKA_HEAP:-1g}
# the local broker's code is compiled by the JVM's quick compiler only: its
# optimising one (C2) spent more CPU than the broker's own request work in a
# burst after a 1,000-case warm-up (2.6-4.0 against 1.8-2.6 CPU-seconds), on
# 2 cores the services share, and the requests cost the same on C1's code
XINFANG_KAFKA_JVM_OPTS=${XINFANG_KAFKA_JVM_OPTS--XX:TieredStopAtLevel=1}
XINFANG_MONGO_PORT=${XINFANG_MONGO_PORT:-27018}
XINFANG_PROMETHEUS_PORT=${XINFANG_PROMETHEUS_PORT:-19090}
XINFANG_PARTITIONS=${XINFANG_PARTITIONS:-4}

# the services' own ports (gRPC, metrics); Prometheus scrapes the metrics ports
XINFANG_INTAKE_GRPC=${XINFANG_INTAKE_GRPC:-50061};         XINFANG_INTAKE_METRICS=${XINFANG_INTAKE_METRICS:-9161}
XINFANG_ASSIGNMENT_GRPC=${XINFANG_ASSIGNMENT_GRPC:-50062}; XINFANG_ASSIGNMENT_METRICS=${XINFANG_ASSIGNMENT_METRICS:-9162}
XINFANG_SUPERVISION_GRPC=${XINFANG_SUPERVISION_GRPC:-50063}; XINFANG_SUPERVISION_METRICS=${XINFANG_SUPERVISION_METRICS:-9163}
XINFANG_REPORTING_GRPC=${XINFANG_REPORTING_GRPC:-50064};   XINFANG_REPORTING_METRICS=${XINFANG_REPORTING_METRICS:-9164}

# what the Python services read (see services/xinfang/core/config.py)
export XINFANG_KAFKA_BOOTSTRAP=${XINFANG_KAFKA_BOOTSTRAP:-127.0.0.1:$XINFANG_KAFKA_PORT}
export XINFANG_MONGO_URI=${XINFANG_MONGO_URI:-mongodb://127.0.0.1:$XINFANG_MONGO_PORT/}
export XINFANG_PROMETHEUS_URL=${XINFANG_PROMETHEUS_URL:-http://127.0.0.1:$XINFANG_PROMETHEUS_PORT}
export XINFANG_PARTITIONS
export XINFANG_INTAKE_GRPC XINFANG_INTAKE_METRICS XINFANG_ASSIGNMENT_GRPC XINFANG_ASSIGNMENT_METRICS
export XINFANG_SUPERVISION_GRPC XINFANG_SUPERVISION_METRICS XINFANG_REPORTING_GRPC XINFANG_REPORTING_METRICS
export XINFANG_STATE_DIR=${XINFANG_STATE_DIR:-$XINFANG_HOME/state}
export XINFANG_HOME XINFANG_LOGS XINFANG_ROOT

log() { printf '\033[1;34m[xinfang]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[xinfang] error:\033[0m %s\n' "$*" >&2; exit 1; }

# need_apt PACKAGE...: install Debian packages that are missing
need_apt() { # packages...
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null || die "missing system packages (${missing[*]}) and no apt-get"
  local sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  log "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# wait_port HOST PORT SECONDS NAME [LOGFILE]
wait_port() {
  local host=$1 port=$2 secs=$3 name=$4 logf=${5:-}
  local i
  for ((i = 0; i < secs * 5; i++)); do
    if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  [[ -n "$logf" && -f "$logf" ]] && tail -n 30 "$logf" >&2
  die "$name did not open $host:$port within ${secs}s"
}
