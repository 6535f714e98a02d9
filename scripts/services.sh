#!/usr/bin/env bash
# Starts and stops the four services as local processes on loopback.
#   scripts/services.sh up|down|status
set -euo pipefail
source "$(dirname "$0")/env.sh"

SERVICES=(intake assignment supervision reporting)

identity_key() {
  # A development key, made once per checkout. Production sets
  # XINFANG_IDENTITY_KEY from a secret store (see charts/).
  if [[ -z "${XINFANG_IDENTITY_KEY:-}" ]]; then
    local f="$XINFANG_HOME/identity.key"
    if [[ ! -f "$f" ]]; then
      mkdir -p "$XINFANG_HOME"
      (umask 077 && "$XINFANG_VENV/bin/python" -c 'import base64,os;print(base64.b64encode(os.urandom(32)).decode())' > "$f")
    fi
    XINFANG_IDENTITY_KEY=$(cat "$f")
  fi
  export XINFANG_IDENTITY_KEY
}

port_of() { local v="XINFANG_${1^^}_GRPC"; echo "${!v}"; }

case "${1:-}" in
  up)
    identity_key
    mkdir -p "$XINFANG_DATA" "$XINFANG_LOGS"
    for s in "${SERVICES[@]}"; do
      pf="$XINFANG_DATA/svc-$s.pid"
      if [[ -f "$pf" ]] && kill -0 "$(cat "$pf")" 2>/dev/null; then log "$s already running"; continue; fi
      log "starting $s (gRPC :$(port_of "$s"))"
      nohup "$XINFANG_VENV/bin/python" -m "xinfang.$s" >>"$XINFANG_LOGS/$s.log" 2>&1 &
      echo $! > "$pf"
    done
    for s in "${SERVICES[@]}"; do
      wait_port 127.0.0.1 "$(port_of "$s")" 60 "$s" "$XINFANG_LOGS/$s.log"
    done
    log "services are up (logs: $XINFANG_LOGS)"
    ;;
  down)
    for s in "${SERVICES[@]}"; do
      pf="$XINFANG_DATA/svc-$s.pid"
      [[ -f "$pf" ]] || continue
      pid=$(cat "$pf")
      if kill -0 "$pid" 2>/dev/null; then
        log "stopping $s ($pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$pid" 2>/dev/null || true
      fi
      rm -f "$pf"
    done ;;
  status)
    for s in "${SERVICES[@]}"; do
      pf="$XINFANG_DATA/svc-$s.pid"
      if [[ -f "$pf" ]] && kill -0 "$(cat "$pf")" 2>/dev/null; then echo "$s up ($(cat "$pf"))"; else echo "$s down"; fi
    done ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
