#!/usr/bin/env bash
# h2c throughput through the proxy, next to nginx, in one run:
#   direct (h2load → nginx origin over h2c), nginx proxy, nuncio proxy.
# Load: h2load, C connections x M streams each, D seconds, 3 runs, median.
# Proxies get CPU 1 to themselves; origin and h2load share CPU 0.
# Usage: bench/h2c.sh   (env: DURATION=5 CONNS=10 STREAMS=10 RUNS=3)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need h2load:nghttp2-client nginx:nginx-light taskset:util-linux
DURATION=${DURATION:-5}; CONNS=${CONNS:-10}; STREAMS=${STREAMS:-10}; RUNS=${RUNS:-3}
build_nuncio

ORIGIN=18100; NGINX=18110; NUNCIO_PORT=18120
port_free $ORIGIN $((ORIGIN + 1)) $NGINX $((NGINX + 1)) $NUNCIO_PORT
start_origin $ORIGIN
start_nginx_proxy $NGINX $ORIGIN
start_nuncio $NUNCIO_PORT $ORIGIN

run() { # name port
  local rates=()
  for _ in $(seq 1 "$RUNS"); do
    local out
    out=$(taskset -c "$LOAD_CPU" h2load -D "$DURATION" --warm-up-time=1 -c "$CONNS" -m "$STREAMS" "http://127.0.0.1:$2/" 2>&1)
    local failed; failed=$(echo "$out" | sed -n 's/.* \([0-9]*\) failed.*/\1/p' | head -1)
    [ "${failed:-0}" = 0 ] || { echo "$1: $failed failed requests" >&2; echo "$out" >&2; exit 1; }
    rates+=("$(echo "$out" | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p')")
    echo "$out" > "$OUT/h2c-$1-run${#rates[@]}.txt"
  done
  printf '%s\n' "${rates[@]}" | median
}

direct=$(run direct $((ORIGIN + 1)))
nginx=$(run nginx $((NGINX + 1)))
nuncio=$(run nuncio $NUNCIO_PORT)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
{
  echo "h2c, $CONNS connections x $STREAMS streams, ${DURATION}s x $RUNS runs (median req/s)"
  echo "| target | req/s | vs direct | vs nginx |"
  echo "|---|---|---|---|"
  echo "| direct (nginx origin, h2c) | $direct | 1.00 | |"
  echo "| nginx 1 worker (h2c → h1 keepalive) | $nginx | $(ratio "$nginx" "$direct") | 1.00 |"
  echo "| nuncio 1 worker (h2c → h1 pool) | $nuncio | $(ratio "$nuncio" "$direct") | $(ratio "$nuncio" "$nginx") |"
} | tee "$OUT/h2c-summary.md"
