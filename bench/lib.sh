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

# nuncio (1 worker) on $1 to origin $2, HTTP/1.1 and h2c on the same port;
# with $3, the mesh hop too (see nuncio_config).
start_nuncio() {
  local port=$1 origin=$2 conf="$OUT/nuncio.yaml"
  nuncio_config "$port" "$origin" "${3:-}" >"$conf"
  taskset -c "$PROXY_CPU" "$NUNCIO" -c "$conf" --concurrency "${NUNCIO_WORKERS:-1}" -l warn & pids+=($!)
  wait_port "$port"
}

# The HTTP filters of the benchmark's connection managers, before the
# router. FILTERS=3 puts three that do nothing for the benchmark's requests
# ahead of it: cors (no route has a CorsPolicy: one lookup of the route's
# policies), fault with header_abort only (no x-envoy-fault-* header is
# sent: header lookups, no fault) and header_mutation with empty mutations.
http_filters_yaml() {
  local indent=$1
  if [ "${FILTERS:-0}" = 3 ]; then
    cat <<YAML
${indent}- name: envoy.filters.http.cors
${indent}  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
${indent}- name: envoy.filters.http.fault
${indent}  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault, abort: {header_abort: {}, percentage: {numerator: 100}}}
${indent}- name: envoy.filters.http.header_mutation
${indent}  typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation, mutations: {}}
YAML
  elif [ "${FILTERS:-0}" != 0 ]; then
    echo "FILTERS must be 0 or 3" >&2; exit 2
  fi
  echo "${indent}- {name: envoy.filters.http.router, typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}"
}

# A listener (port $1) whose every request goes to cluster $2: the mesh hop.
mesh_listener_yaml() {
  cat <<YAML
  - address: {socket_address: {address: 127.0.0.1, port_value: $1}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: mesh
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - {match: {prefix: /}, route: {cluster: $2}}
          http_filters:
$(http_filters_yaml "          ")
YAML
}

# An HTTP/2 (h2c, prior knowledge) cluster $1 with one endpoint, port $2.
h2_cluster_yaml() {
  cat <<YAML
  - name: $1
    type: STATIC
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: $1
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $2}}}}]}]
YAML
}

# The benchmark's nuncio config (listener $1, origin $2, admin $1+9) on
# stdout. With $3: a second listener on $3 for the mesh hop, every request
# to the origin's h2c port ($2+1) over HTTP/2.
nuncio_config() {
  local port=$1 origin=$2 mesh=${3:-}
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
          http_filters:
$(http_filters_yaml "          ")
$([ -n "$mesh" ] && mesh_listener_yaml "$mesh" origin_h2)
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
$([ -n "$mesh" ] && h2_cluster_yaml origin_h2 $((origin + 1)))
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: $((port + 9))}}
YAML
}

# Real Envoy (--concurrency 1) for the mesh hop: listener $1 (admin $1+9),
# every request to the origin's h2c port ($2+1) over HTTP/2.
ENVOY=${ENVOY:-$ROOT/.venv/bin/envoy}
envoy_mesh_config() {
  local port=$1 origin=$2
  cat <<YAML
static_resources:
  listeners:
$(mesh_listener_yaml "$port" origin_h2)
  clusters:
$(h2_cluster_yaml origin_h2 $((origin + 1)))
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: $((port + 9))}}
YAML
}
start_envoy_mesh() {
  local port=$1 origin=$2 conf="$OUT/envoy-mesh.yaml"
  envoy_mesh_config "$port" "$origin" >"$conf"
  taskset -c "$PROXY_CPU" "$ENVOY" -c "$conf" --concurrency 1 -l warn \
    --base-id 18540 --log-path "$OUT/envoy-mesh.log" & pids+=($!)
  wait_port "$port"
}

# NUNCIO=path uses that binary; otherwise builds this tree, into
# CARGO_TARGET_DIR when set (relative to the repository, as cargo takes it).
build_nuncio() {
  if [ -z "${NUNCIO:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet -p nuncio)
    local target=${CARGO_TARGET_DIR:-target}
    case $target in /*) ;; *) target=$ROOT/$target;; esac
    NUNCIO=$target/release/nuncio
  fi
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# The benchmark's HAProxy config (1 thread, http mode): $1 (h1) and $1+1
# (h2c) to origin $2, /ws to the WebSocket backend; $1+2 (the mesh hop) to
# the origin's h2c port $2+1 over HTTP/2 (`proto h2`); on stdout.
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
frontend femesh
  bind 127.0.0.1:$((port + 2))
  default_backend beh2
backend beh2
  server s1 127.0.0.1:$((origin + 1)) proto h2
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

# ---- TLS (issue 14) ----
# Every proxy gets a second, TLS-only process (one worker, on PROXY_CPU) with
# three listeners from a base port B, each in front of the plain HTTP/1.1
# origin, ALPN h2,http/1.1:
#   B    serves $CERT, session resumption as the proxy's defaults have it
#        (the keep-alive, h2 and idle-memory workloads, and `tlsres`);
#   B+1  ECDSA P-256, resumption off (no tickets, no session cache);
#   B+2  RSA 2048, resumption off.
# B+1 and B+2 give a full handshake per connection whatever the client does
# (nginx, Envoy and nuncio send no session ticket there; HAProxy 2.6 has no
# way to stop OpenSSL's TLS 1.3 tickets, which then name a session it does
# not keep):
# wrk (and h2load) resume TLS sessions on reconnect (wrk keeps the SSL
# session across SSL_clear: TLS 1.3 tickets or TLS 1.2 session ids).
# Certificates: scripts/make-certs.sh into $OUT/certs at each start;
# front-proxy (ECDSA P-256) and rsa-server (RSA 2048), and for HAProxy each
# as one pem with its key (NAME.full.pem).
CERT=${CERT:-ecdsa}
case $CERT in ecdsa|rsa) ;; *) echo "CERT must be ecdsa or rsa" >&2; exit 2;; esac
cert_name() { case $1 in ecdsa) echo front-proxy;; rsa) echo rsa-server;; esac; }
make_bench_certs() {
  bash "$ROOT/scripts/make-certs.sh" "$OUT/certs"
  local n
  for n in front-proxy rsa-server; do
    (umask 077; cat "$OUT/certs/$n.pem" "$OUT/certs/$n.key" >"$OUT/certs/$n.full.pem")
  done
}

# nginx (1 worker) TLS listeners from $1, to origin $2. TLS_LOG=1 logs
# `$server_port $ssl_session_reused` a request (buffered) into
# $OUT/nginx-tls-access.log, to check resumption; it costs nginx CPU.
start_nginx_tls() {
  local port=$1 origin=$2 conf="$OUT/nginx-tls.conf" def ec rsa
  def=$OUT/certs/$(cert_name "$CERT"); ec=$OUT/certs/front-proxy; rsa=$OUT/certs/rsa-server
  local log="access_log off;"
  [ -n "${TLS_LOG:-}" ] && log="log_format reuse '\$server_port \$ssl_session_reused'; access_log $OUT/nginx-tls-access.log reuse buffer=64k flush=1s;"
  local loc='location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; }'
  : >"$OUT/nginx-tls-access.log"
  cat >"$conf" <<NGINX
worker_processes 1;
daemon off;
error_log $OUT/nginx-tls-error.log warn;
pid $OUT/nginx-tls.pid;
events { worker_connections 20000; }
worker_rlimit_nofile 40000;
http {
  $log
  keepalive_requests 1000000;
  ssl_protocols TLSv1.2 TLSv1.3;
  upstream origin { server 127.0.0.1:$origin; keepalive 64; }
  server {
    listen 127.0.0.1:$port ssl http2;
    ssl_certificate $def.pem;
    ssl_certificate_key $def.key;
    $loc
  }
  server {
    listen 127.0.0.1:$((port + 1)) ssl http2;
    ssl_certificate $ec.pem;
    ssl_certificate_key $ec.key;
    ssl_session_tickets off;
    ssl_session_cache off;
    ssl_conf_command NumTickets 0;
    $loc
  }
  server {
    listen 127.0.0.1:$((port + 2)) ssl http2;
    ssl_certificate $rsa.pem;
    ssl_certificate_key $rsa.key;
    ssl_session_tickets off;
    ssl_session_cache off;
    ssl_conf_command NumTickets 0;
    $loc
  }
}
NGINX
  taskset -c "$PROXY_CPU" nginx -c "$conf" -p "$OUT" & pids+=($!)
  wait_port "$port"
}

# HAProxy (1 thread) TLS listeners from $1, to origin $2. Its session cache
# is global, so it is off (`tune.ssl.cachesize 0`) for all three: B keeps
# stateless tickets, as nginx's defaults do (tickets on, no cache);
# B+1 and B+2 add `no-tls-tickets`. A stats socket at $OUT/haproxy-tls.sock.
haproxy_tls_config() {
  local port=$1 origin=$2 def ec rsa
  def=$OUT/certs/$(cert_name "$CERT").full.pem; ec=$OUT/certs/front-proxy.full.pem; rsa=$OUT/certs/rsa-server.full.pem
  cat <<CFG
global
  nbthread 1
  maxconn 9500
  tune.bufsize 16384
  tune.ssl.cachesize 0
  ssl-default-bind-options ssl-min-ver TLSv1.2
  stats socket $OUT/haproxy-tls.sock
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fetls
  bind 127.0.0.1:$port ssl crt $def alpn h2,http/1.1
  bind 127.0.0.1:$((port + 1)) ssl crt $ec alpn h2,http/1.1 no-tls-tickets
  bind 127.0.0.1:$((port + 2)) ssl crt $rsa alpn h2,http/1.1 no-tls-tickets
  default_backend be
backend be
  server origin 127.0.0.1:$origin
CFG
}
start_haproxy_tls() {
  local conf="$OUT/haproxy-tls.cfg"
  haproxy_tls_config "$1" "$2" >"$conf"
  taskset -c "$PROXY_CPU" haproxy -db -f "$conf" & pids+=($!)
  wait_port "$1"
}

# One TLS listener (port $1, name $2) with certificate $3 (a make-certs.sh
# name); with $4, session resumption off (no tickets, no session cache).
tls_listener_yaml() {
  local resume=""
  [ -n "${4:-}" ] && resume="
          disable_stateless_session_resumption: true
          disable_stateful_session_resumption: true"
  cat <<YAML
  - name: $2
    address: {socket_address: {address: 127.0.0.1, port_value: $1}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext$resume
          common_tls_context:
            alpn_protocols: [h2, http/1.1]
            tls_certificates:
            - certificate_chain: {filename: $OUT/certs/$3.pem}
              private_key: {filename: $OUT/certs/$3.key}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: $2
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - {match: {prefix: /}, route: {cluster: origin}}
          http_filters:
$(http_filters_yaml "          ")
YAML
}

# The TLS config of Envoy and nuncio (the same file): listeners from $1,
# origin $2 over plain HTTP/1.1, admin on $1+5.
tls_proxy_config() {
  local port=$1 origin=$2
  cat <<YAML
static_resources:
  listeners:
$(tls_listener_yaml "$port" tls "$(cert_name "$CERT")")
$(tls_listener_yaml $((port + 1)) tls_hs_ecdsa front-proxy off)
$(tls_listener_yaml $((port + 2)) tls_hs_rsa rsa-server off)
  clusters:
  - name: origin
    type: STATIC
    load_assignment:
      cluster_name: origin
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $origin}}}}]}]
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: $((port + 5))}}
YAML
}
start_nuncio_tls() {
  local conf="$OUT/nuncio-tls.yaml"
  tls_proxy_config "$1" "$2" >"$conf"
  taskset -c "$PROXY_CPU" "$NUNCIO" -c "$conf" --concurrency "${NUNCIO_WORKERS:-1}" -l warn & pids+=($!)
  wait_port "$1"
}
start_envoy_tls() {
  local conf="$OUT/envoy-tls.yaml"
  tls_proxy_config "$1" "$2" >"$conf"
  taskset -c "$PROXY_CPU" "$ENVOY" -c "$conf" --concurrency 1 -l warn \
    --base-id "$1" --log-path "$OUT/envoy-tls.log" & pids+=($!)
  wait_port "$1"
}

# What a server does about resumption on port $1, asked with openssl
# s_client (a GET, then the same with the session it got): prints
# "TLSv1.3 TLS_AES_256_GCM_SHA384 X25519 ECDSA" and then `resumed`,
# `not-resumed` or `no-ticket` (the server issued no session to resume).
tls_probe() {
  local port=$1 sess="$OUT/probe.$1.sess" out
  rm -f "$sess"
  out=$(printf 'GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n' |
    timeout 5 openssl s_client -connect "127.0.0.1:$port" -servername localhost -ign_eof -sess_out "$sess" 2>&1) || true
  local what
  what=$(echo "$out" | awk '
    /^(New|Reused), / { sub(",", "", $2); proto=$2; cipher=$NF }
    /^Server Temp Key:/ { sub(",", "", $4); kx=$4 }
    /^Peer signature type:/ { sig=$4 }
    END { printf "%s %s %s %s", proto, cipher, kx, sig }')
  if [ ! -s "$sess" ]; then echo "$what no-ticket"; return; fi
  out=$(printf 'GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n' |
    timeout 5 openssl s_client -connect "127.0.0.1:$port" -servername localhost -ign_eof -sess_in "$sess" 2>&1) || true
  if echo "$out" | grep -q '^Reused, '; then echo "$what resumed"; else echo "$what not-resumed"; fi
}
