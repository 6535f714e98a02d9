#!/usr/bin/env bash
# Starts and stops the four services as local processes on loopback.
#   scripts/services.sh up|down|status
#   scripts/services.sh replica SERVICE [N]
# `replica` starts replica N (2 by default) of one service beside the first,
# if it is not running: the same consumer group and store, its own gRPC and
# metrics ports (the first replica's plus (N-1) * XINFANG_REPLICA_PORT_STEP,
# 100 by default), pid file, log (SERVICE-rN.log) and faust state folder.
# `down` stops every replica, `status` lists them.
set -euo pipefail
source "$(dirname "$0")/env.sh"

SERVICES=(intake assignment supervision reporting)

port_of() { local v="XINFANG_${1^^}_GRPC"; echo "${!v}"; }
metrics_of() { local v="XINFANG_${1^^}_METRICS"; echo "${!v}"; }
STEP=${XINFANG_REPLICA_PORT_STEP:-100}

# the pid listening on a local port, if any
listener() { { ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2; } || true; }

# alive PID: the process runs. A killed service is a zombie until init reaps
# it, which can take a while; kill -0 still succeeds on a zombie, and counting
# it as running kept `up` from restarting a service after a crash.
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ -n "$st" && "$st" != Z* ]]; }

stop_pid() { # pid name
  kill "$1" 2>/dev/null || true
  for _ in $(seq 1 50); do alive "$1" || return 0; sleep 0.2; done
  kill -9 "$1" 2>/dev/null || true
}

case "${1:-}" in
  up)
    dev_keys
    mkdir -p "$XINFANG_DATA" "$XINFANG_LOGS"
    for s in "${SERVICES[@]}"; do
      pf="$XINFANG_DATA/svc-$s.pid"
      if [[ -f "$pf" ]] && alive "$(cat "$pf")"; then log "$s already running"; continue; fi
      pid=$(listener "$(port_of "$s")")
      if [[ -n "$pid" ]]; then
        die "port $(port_of "$s") for $s is taken by pid $pid ($(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null)); scripts/services.sh down stops ours"
      fi
      log "starting $s (gRPC :$(port_of "$s"))"
      nohup "$XINFANG_VENV/bin/python" -m "xinfang.$s" >>"$XINFANG_LOGS/$s.log" 2>&1 &
      echo $! > "$pf"
    done
    for s in "${SERVICES[@]}"; do
      wait_port 127.0.0.1 "$(port_of "$s")" 60 "$s" "$XINFANG_LOGS/$s.log"
    done
    log "services are up (logs: $XINFANG_LOGS)"
    ;;
  replica)
    s=${2:-}; n=${3:-2}
    [[ " ${SERVICES[*]} " == *" $s "* ]] || die "usage: $0 replica intake|assignment|supervision|reporting [N]"
    [[ "$n" =~ ^[2-9]$ ]] || die "replica: N is 2..9 (1 is the one 'up' starts)"
    dev_keys
    mkdir -p "$XINFANG_DATA" "$XINFANG_LOGS"
    pf="$XINFANG_DATA/svc-$s-r$n.pid"
    if [[ -f "$pf" ]] && alive "$(cat "$pf")"; then log "$s replica $n already running"; exit 0; fi
    grpc=$(($(port_of "$s") + (n - 1) * STEP)); metrics=$(($(metrics_of "$s") + (n - 1) * STEP))
    pid=$(listener "$grpc")
    [[ -z "$pid" ]] || die "port $grpc for $s replica $n is taken by pid $pid"
    log "starting $s replica $n (gRPC :$grpc, metrics :$metrics)"
    env "XINFANG_${s^^}_GRPC=$grpc" "XINFANG_${s^^}_METRICS=$metrics" \
      "XINFANG_STATE_DIR=$XINFANG_STATE_DIR/r$n" \
      nohup "$XINFANG_VENV/bin/python" -m "xinfang.$s" >>"$XINFANG_LOGS/$s-r$n.log" 2>&1 &
    echo $! > "$pf"
    wait_port 127.0.0.1 "$grpc" 60 "$s replica $n" "$XINFANG_LOGS/$s-r$n.log"
    ;;
  down)
    for pf in "$XINFANG_DATA"/svc-*-r[0-9].pid; do
      [[ -f "$pf" ]] || continue
      pid=$(cat "$pf"); name=$(basename "$pf" .pid)
      if alive "$pid"; then log "stopping ${name#svc-} ($pid)"; stop_pid "$pid"; fi
      rm -f "$pf"
    done
    for s in "${SERVICES[@]}"; do
      pf="$XINFANG_DATA/svc-$s.pid"
      if [[ -f "$pf" ]]; then
        pid=$(cat "$pf")
        if alive "$pid"; then log "stopping $s ($pid)"; stop_pid "$pid"; fi
        rm -f "$pf"
      fi
      # ours without a pid file (its data folder was reset, or it hung while
      # crashing): the same service, started for this XINFANG_HOME
      for pid in $(pgrep -f "python -m xinfang\.$s\$" || true); do
        if tr '\0' '\n' </proc/"$pid"/environ 2>/dev/null | grep -qx "XINFANG_HOME=$XINFANG_HOME"; then
          log "stopping $s ($pid, no pid file)"; stop_pid "$pid"
        fi
      done
    done ;;
  status)
    for s in "${SERVICES[@]}"; do
      pf="$XINFANG_DATA/svc-$s.pid"
      if [[ -f "$pf" ]] && alive "$(cat "$pf")"; then echo "$s up ($(cat "$pf"))"; else echo "$s down"; fi
      for pf in "$XINFANG_DATA/svc-$s"-r[0-9].pid; do
        [[ -f "$pf" ]] || continue
        r=$(basename "$pf" .pid); r=${r##*-}
        if alive "$(cat "$pf")"; then echo "$s-$r up ($(cat "$pf"))"; else echo "$s-$r down"; fi
      done
    done ;;
  *) echo "usage: $0 up|down|status|replica SERVICE [N]" >&2; exit 2 ;;
esac
