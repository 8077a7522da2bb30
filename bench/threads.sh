#!/usr/bin/env bash
# Threading models side by side: nuncio --runtime per-worker (default) vs
# --runtime work-stealing, with 1 and 2 workers, small GETs (wrk) and h2c
# (h2load). 1 worker: proxy alone on CPU 1. 2 workers: proxy on CPUs 0-1,
# sharing CPU 0 with the origin and the load generator (all this 2-core
# machine has). Reports req/s (median of RUNS) and proxy CPU us/request.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need wrk:wrk h2load:nghttp2-client nginx:nginx-light taskset:util-linux
DURATION=${DURATION:-5}; RUNS=${RUNS:-3}
build_nuncio
ORIGIN=18800; P=18830
port_free $ORIGIN $((ORIGIN + 1)) $P
start_origin $ORIGIN
echo "| model | workers | small GET req/s | CPU us/req | h2c req/s | CPU us/req |"
echo "|---|---|---|---|---|---|"
for model in per-worker work-stealing; do
  for w in 1 2; do
    cpus=$PROXY_CPU; [ "$w" = 2 ] && cpus=0-1
    conf="$OUT/threads-$model-$w.yaml"
    NUNCIO_WORKERS=$w PROXY_CPU=$cpus start_nuncio $P $ORIGIN >/dev/null 2>&1 || true
    pid=$(pgrep -f "$OUT/nuncio.yaml" -n)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    taskset -c "$cpus" "$NUNCIO" -c "$OUT/nuncio.yaml" --concurrency "$w" --runtime "$model" -l warn & pid=$!
    wait_port $P
    row="| $model | $w |"
    for load in small h2c; do
      res=()
      for _ in $(seq 1 "$RUNS"); do
        c0=$(cpu_seconds "$pid")
        if [ $load = small ]; then
          out=$(taskset -c "$LOAD_CPU" wrk -t1 -c50 -d"${DURATION}s" "http://127.0.0.1:$P/")
          rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}'); n=$(echo "$out" | awk '/requests in/ {print $1}')
        else
          out=$(taskset -c "$LOAD_CPU" h2load -D "$DURATION" -c 10 -m 10 "http://127.0.0.1:$P/")
          rps=$(echo "$out" | awk '/^finished in/ { sub(",", "", $4); print $4 }'); n=$(echo "$out" | awk '/^requests:/ {print $8}')
        fi
        c1=$(cpu_seconds "$pid")
        res+=("$rps $(awk -v a="$c0" -v b="$c1" -v n="$n" 'BEGIN { printf "%.1f", (b - a) * 1e6 / n }')")
      done
      med=$(printf '%s\n' "${res[@]}" | sort -n | awk -v k=$(( (RUNS + 1) / 2 )) 'NR == k')
      row="$row $(echo "$med" | awk '{print $1}') | $(echo "$med" | awk '{print $2}') |"
    done
    echo "$row"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done | tee "$OUT/threads.md"
