#!/usr/bin/env bash
# Do nuncio's stats feed a public Envoy Grafana dashboard as Envoy's do?
#
#   bash bench/dashboards/check.sh
#   NUNCIO=/path/to/nuncio ROUNDS=20 bash bench/dashboards/check.sh
#
# Starts an origin (`nuncio echo`), real Envoy and nuncio side by side on
# the same v3 config (loopback ports), drives the same bounded traffic
# through both (HTTP/1.1, h2c, a POST, a failing upstream, a 404), has
# Prometheus scrape both admins' /stats/prometheus (jobs `envoy` and
# `nuncio`), then evaluates every PromQL expression of adinhodovic/envoy-mixin's
# dashboards (envoy-mixin-queries.txt) for each job and prints whether it
# has data. Exits 1 if a query has data for Envoy but not for nuncio,
# unless its id is listed in docs/envoy-differences.md.
# Needs envoy on PATH; installs prometheus and curl from Debian if missing
# (as root). Nothing outside 127.0.0.1 is used.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=${ROUNDS:-20}
WORK=$(mktemp -d /tmp/nuncio-dashboards.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

missing=()
command -v prometheus >/dev/null || missing+=(prometheus)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "please install: ${missing[*]}" >&2; exit 1
  fi
fi
command -v envoy >/dev/null || { echo "envoy is not on PATH" >&2; exit 1; }
if [ -z "${NUNCIO:-}" ]; then
  (cd "$ROOT" && cargo build --release --quiet -p nuncio)
  NUNCIO=${CARGO_TARGET_DIR:-$ROOT/target}/release/nuncio
fi

read -r ORIGIN DEAD E_PORT E_ADMIN N_PORT N_ADMIN PROM < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(7)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
PY
)

wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 did not open" >&2; return 1
}

config() { # listen admin
  cat <<YAML
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: $2}}
static_resources:
  listeners:
  - name: ingress
    address: {socket_address: {address: 127.0.0.1, port_value: $1}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          codec_type: AUTO
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/dead"}
                route: {cluster: dead}
              - match: {prefix: "/"}
                route: {cluster: backend}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: backend
    connect_timeout: 0.25s
    type: STATIC
    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $ORIGIN}}}
  - name: dead
    connect_timeout: 0.25s
    type: STATIC
    load_assignment:
      cluster_name: dead
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: $DEAD}}}
YAML
}
config "$E_PORT" "$E_ADMIN" > "$WORK/envoy.yaml"
config "$N_PORT" "$N_ADMIN" > "$WORK/nuncio.yaml"
cat > "$WORK/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
- job_name: envoy
  metrics_path: /stats/prometheus
  static_configs:
  - targets: ["127.0.0.1:$E_ADMIN"]
    labels: {cluster: check, namespace: check, pod: envoy-0}
- job_name: nuncio
  metrics_path: /stats/prometheus
  static_configs:
  - targets: ["127.0.0.1:$N_ADMIN"]
    labels: {cluster: check, namespace: check, pod: nuncio-0}
YAML

"$NUNCIO" -l warn echo --listen "127.0.0.1:$ORIGIN" >"$WORK/origin.log" 2>&1 & pids+=($!)
envoy --disable-hot-restart --concurrency 1 -l warn -c "$WORK/envoy.yaml" >"$WORK/envoy.log" 2>&1 & pids+=($!)
"$NUNCIO" --concurrency 1 -l warn -c "$WORK/nuncio.yaml" >"$WORK/nuncio.log" 2>&1 & pids+=($!)
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PROM" >"$WORK/prometheus.log" 2>&1 & pids+=($!)
for p in "$ORIGIN" "$E_PORT" "$E_ADMIN" "$N_PORT" "$N_ADMIN" "$PROM"; do wait_port "$p"; done
echo "envoy $(envoy --version | sed -n 's/.*version: [^/]*\/\([^/]*\)\/.*/\1/p'), nuncio $NUNCIO, $(prometheus --version 2>&1 | head -1 | cut -d' ' -f1-3)"

echo "traffic: $ROUNDS rounds, 1 s apart, through each proxy"
for _ in $(seq 1 "$ROUNDS"); do
  for port in "$E_PORT" "$N_PORT"; do
    u="http://127.0.0.1:$port"
    # A failed request is part of the traffic, not a failure of the check.
    curl -s -o /dev/null -o /dev/null -o /dev/null -o /dev/null -o /dev/null "$u/" "$u/" "$u/" "$u/" "$u/hello" || true
    curl -s --http2-prior-knowledge -o /dev/null "$u/" || true
    curl -s --http2-prior-knowledge -o /dev/null "$u/hello" || true
    curl -s -o /dev/null -d '{"a":1}' -H 'content-type: application/json' "$u/echo" || true
    curl -s -o /dev/null "$u/dead" || true
    curl -s -o /dev/null "$u/missing" || true
  done
  sleep 1
done
sleep 4

python3 "$HERE/check.py" "http://127.0.0.1:$PROM" "$HERE/envoy-mixin-queries.txt" \
  "$ROOT/docs/envoy-differences.md" envoy nuncio
