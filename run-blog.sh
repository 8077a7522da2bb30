#!/usr/bin/env bash
# Runs the blog's setup on this machine, no Docker, all on loopback.
#
#   ./run-blog.sh          scenario 1: front proxy + two echo services
#   ./run-blog.sh ws       scenario 1 with the blog's WebSocket route
#
# The blog's configs are used unchanged (examples/blog/, copies of the
# seed). What docker-compose did is done with two visible flags:
#   --hosts examples/hosts     the network aliases service1, service2
#                              (127.0.0.2, 127.0.0.3, one per "container")
#   --remap 0.0.0.0:80=...     the published port (docker's -p 9000:80)
# Ports: PROXY_PORT (default 9000), ADMIN_PORT (8001), ECHO_PORT (8080).
# NUNCIO_BIN picks a binary; otherwise a release build is made.
set -euo pipefail
cd "$(dirname "$0")"

scenario=${1:-simple}
PROXY_PORT=${PROXY_PORT:-9000}
ADMIN_PORT=${ADMIN_PORT:-8001}
ECHO_PORT=${ECHO_PORT:-8080}

case "$scenario" in
  simple) config=examples/blog/simple-proxy.yaml ;;
  ws) config=examples/blog/simple-proxy-ws.yaml ;;
  *) echo "usage: $0 [simple|ws]" >&2; exit 2 ;;
esac

if [ -z "${NUNCIO_BIN:-}" ]; then
  command -v cargo >/dev/null || { echo "cargo is needed to build nuncio (https://rustup.rs)" >&2; exit 1; }
  echo "building nuncio (release)..." >&2
  cargo build --release --quiet -p nuncio
  NUNCIO_BIN=target/release/nuncio
fi

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 0' INT TERM

"$NUNCIO_BIN" echo --listen "127.0.0.2:$ECHO_PORT" --name service1 & pids+=($!)
"$NUNCIO_BIN" echo --listen "127.0.0.3:$ECHO_PORT" --name service2 & pids+=($!)
"$NUNCIO_BIN" -c "$config" --hosts examples/hosts --concurrency 1 \
  --remap "0.0.0.0:80=127.0.0.1:$PROXY_PORT" \
  --remap "0.0.0.0:8001=127.0.0.1:$ADMIN_PORT" \
  --remap "127.0.0.2:8080=127.0.0.2:$ECHO_PORT" \
  --remap "127.0.0.3:8080=127.0.0.3:$ECHO_PORT" & pids+=($!)

for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$ADMIN_PORT/ready" 2>/dev/null && break
  sleep 0.1
done

cat <<MSG

The blog's scenario '$scenario' is running ($config, unchanged):
  front proxy   http://127.0.0.1:$PROXY_PORT   (the blog's :80, published as :9000)
  admin         http://127.0.0.1:$ADMIN_PORT
  service1      127.0.0.2:$ECHO_PORT   service2  127.0.0.3:$ECHO_PORT

Try it:
  export BASE=localhost:$PROXY_PORT
  curl \$BASE
  curl -X POST \$BASE/echo -H 'Content-Type: application/json' -d '{"name": "zcong"}'
  curl -s localhost:$ADMIN_PORT/stats | grep myservice.upstream_rq
Press Ctrl-C to stop.
MSG
wait "${pids[2]}"
