# Shared helpers for the benchmarks in bench/ (sourced, not run).
# Everything listens on 127.0.0.1; every load run is bounded by -D/--duration.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
OUT=${OUT:-$BENCH_DIR/out}
mkdir -p "$OUT"

# CPU placement (2-core machines): proxies on CPU 1, origin and load
# generator on CPU 0, so every proxy competes on equal terms.
PROXY_CPU=${PROXY_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}

need() {
  local missing=()
  for pair in "$@"; do
    local cmd=${pair%%:*} pkg=${pair##*:}
    command -v "$cmd" >/dev/null || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "please install: ${missing[*]}" >&2; exit 1
    fi
  fi
}

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# Fails if something already listens on a port (a stale server would be
# measured instead of ours).
port_free() {
  for p in "$@"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "port $p is already in use: stop whatever listens there first" >&2; exit 1
    fi
  done
}

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 did not open" >&2; return 1
}

# nginx origin answering `return 200` on $1 (HTTP/1.1 and h2c).
start_origin() {
  local port=$1 conf="$OUT/origin.conf"
  head -c 65536 /dev/urandom > "$OUT/64k.bin"
  cat >"$conf" <<NGINX
worker_processes 1;
daemon off;
error_log $OUT/origin-error.log warn;
pid $OUT/origin.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port;
    listen 127.0.0.1:$((port + 1)) http2;
    location / { return 200 "hello from origin\n"; }
    location = /64k { alias $OUT/64k.bin; }
  }
}
NGINX
  taskset -c "$LOAD_CPU" nginx -c "$conf" -p "$OUT" & pids+=($!)
  wait_port "$port"
}

# nginx as a reverse proxy (1 worker) on $1 (h1) and $1+1 (h2c) to origin $2.
start_nginx_proxy() {
  local port=$1 origin=$2 conf="$OUT/nginx-proxy.conf"
  cat >"$conf" <<NGINX
worker_processes 1;
daemon off;
error_log $OUT/nginx-proxy-error.log warn;
pid $OUT/nginx-proxy.pid;
events { worker_connections 20000; }
worker_rlimit_nofile 40000;
http {
  access_log off;
  keepalive_requests 1000000;
  upstream origin { server 127.0.0.1:$origin; keepalive 64; }
  server {
    listen 127.0.0.1:$port;
    listen 127.0.0.1:$((port + 1)) http2;
    http2_max_concurrent_streams 128;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location /ws {
      proxy_pass http://127.0.0.1:${WS_BACKEND:-18090};
      proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Connection "upgrade";
    }
  }
}
NGINX
  taskset -c "$PROXY_CPU" nginx -c "$conf" -p "$OUT" & pids+=($!)
  wait_port "$port"
}

# nuncio (1 worker) on $1 to origin $2, HTTP/1.1 and h2c on the same port.
start_nuncio() {
  local port=$1 origin=$2 conf="$OUT/nuncio.yaml"
  nuncio_config "$port" "$origin" >"$conf"
  taskset -c "$PROXY_CPU" "$NUNCIO" -c "$conf" --concurrency "${NUNCIO_WORKERS:-1}" -l warn & pids+=($!)
  wait_port "$port"
}

# The benchmark's nuncio config (listener $1, origin $2, admin $1+9) on stdout.
nuncio_config() {
  local port=$1 origin=$2
  cat <<YAML
static_resources:
  listeners:
  - address: {socket_address: {address: 127.0.0.1, port_value: $port}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - {match: {prefix: /ws}, route: {cluster: ws, use_websocket: true}}
              - {match: {prefix: /}, route: {cluster: origin}}
          http_filters: [{name: envoy.filters.http.router, typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}]
  clusters:
  - name: origin
    type: STATIC
    load_assignment:
      cluster_name: origin
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $origin}}}}]}]
  - name: ws
    type: STATIC
    load_assignment:
      cluster_name: ws
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ${WS_BACKEND:-18090}}}}}]}]
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: $((port + 9))}}
YAML
}

build_nuncio() {
  if [ -z "${NUNCIO:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet -p nuncio)
    NUNCIO=$ROOT/target/release/nuncio
  fi
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# The benchmark's HAProxy config (1 thread, http mode): $1 (h1) and $1+1
# (h2c) to origin $2, /ws to the WebSocket backend; on stdout.
haproxy_config() {
  local port=$1 origin=$2
  cat <<CFG
global
  nbthread 1
  maxconn 9500
  tune.bufsize 16384
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind 127.0.0.1:$port
  bind 127.0.0.1:$((port + 1)) proto h2
  default_backend be
  acl ws path_beg /ws
  use_backend wsbe if ws
backend be
  server origin 127.0.0.1:$origin
backend wsbe
  server ws 127.0.0.1:${WS_BACKEND:-18090}
CFG
}

# HAProxy (1 thread, http mode) on $1 (h1) and $1+1 (h2c) to origin $2.
start_haproxy() {
  local port=$1 origin=$2 conf="$OUT/haproxy.cfg"
  haproxy_config "$port" "$origin" >"$conf"
  taskset -c "$PROXY_CPU" haproxy -db -f "$conf" & pids+=($!)
  wait_port "$port"
}

# The WebSocket echo backend (nuncio echo) on $WS_BACKEND, on the load CPU.
start_ws_backend() {
  taskset -c "$LOAD_CPU" "$NUNCIO" -l warn echo --listen "127.0.0.1:${WS_BACKEND:-18090}" & pids+=($!)
  wait_port "${WS_BACKEND:-18090}"
}

# CPU seconds (user+system) a process has used.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.4f", ($14 + $15) / hz }' "/proc/$1/stat"
}

# Resident memory of a process in KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
