#!/usr/bin/env bash
# System calls per request through nuncio and HAProxy (strace -c -f), on
# the small-GET mix over HTTP/1.1 or h2c. Counts, not times: run it to see
# where a proxy's kernel time goes, never as a timed benchmark.
#
#   bash bench/syscalls.sh            # MIX=h1: h2load --h1 -c 10
#   MIX=h2c bash bench/syscalls.sh    # h2c, 10 connections x 10 streams
#   MIX=mesh bash bench/syscalls.sh   # the mesh hop: HTTP/1.1 client (wrk -c10,
#                                     # 2 s + 5 s), h2c upstream (HAProxy `proto h2`)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need h2load:nghttp2-client nginx:nginx-light haproxy:haproxy strace:strace wrk:wrk
ORIGIN=18800 PORT=18830 HAP=18840 N=${N:-10000} MIX=${MIX:-h1}
NU_PORT=$PORT MESH=""
case "$MIX" in
  h1) LOADOPTS=(--h1 -c 10); HAP_PORT=$HAP ;;
  h2c) LOADOPTS=(-c 10 -m 10); HAP_PORT=$((HAP + 1)) ;;
  # h2load's HTTP/1.1 parser refuses HAProxy's empty reason phrase here
  # ("HTTP/1.1 200 "), so the mesh mix is loaded with wrk for a set time.
  mesh) HAP_PORT=$((HAP + 2)); NU_PORT=$((PORT + 2)); MESH=$NU_PORT ;;
  *) echo "MIX must be h1, h2c or mesh" >&2; exit 2 ;;
esac
port_free $ORIGIN $((ORIGIN + 1)) $PORT $((PORT + 2)) $((PORT + 9)) $HAP $((HAP + 1)) $((HAP + 2))
build_nuncio
start_origin $ORIGIN
nuncio_config $PORT $ORIGIN "$MESH" > "$OUT/nuncio-syscalls.yaml"

# Sends the mix to port $1; prints how many requests were sent.
load() {
  if [ "$MIX" = mesh ]; then
    local a b
    a=$(wrk -t1 -c10 -d2s "http://127.0.0.1:$1/" | awk '/requests in/ {print $1}')
    b=$(wrk -t1 -c10 -d5s "http://127.0.0.1:$1/" | awk '/requests in/ {print $1}')
    echo $((a + b))
  else
    h2load "${LOADOPTS[@]}" -n 2000 "http://127.0.0.1:$1/" >/dev/null   # warm-up, counted below too
    h2load "${LOADOPTS[@]}" -n "$N" "http://127.0.0.1:$1/" >/dev/null
    echo $((N + 2000))
  fi
}

count() { # name port command...
  local name=$1 port=$2; shift 2
  rm -f "$OUT/syscalls-$name.txt"
  strace -c -f -o "$OUT/syscalls-$name.txt" taskset -c "$PROXY_CPU" "$@" >/dev/null 2>&1 & local spid=$!
  pids+=($spid)
  wait_port "$port"
  local n; n=$(load "$port")
  # Stop the traced proxy; strace writes its table when it exits.
  pkill -TERM -P "$spid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
  kill -INT "$spid" 2>/dev/null || true
  for _ in $(seq 1 300); do grep -q total "$OUT/syscalls-$name.txt" 2>/dev/null && break; sleep 0.1; done
  sleep 1  # the table may still be being written
  echo "--- $name ($MIX, $n requests): calls per request"
  awk -v n="$n" '/^ *[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+/ && $NF != "total" { t += $4; if ($4 / n >= 0.01) printf "  %-16s %6.2f\n", $NF, $4 / n } END { printf "  %-16s %6.2f\n", "total", t / n }' "$OUT/syscalls-$name.txt"
}

count nuncio $NU_PORT "$NUNCIO" -c "$OUT/nuncio-syscalls.yaml" --concurrency 1 -l warn
haproxy_config $HAP $ORIGIN > "$OUT/haproxy-syscalls.cfg"
count haproxy $HAP_PORT haproxy -db -f "$OUT/haproxy-syscalls.cfg"
