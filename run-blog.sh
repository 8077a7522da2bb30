#!/usr/bin/env bash
# Runs the blog's setup on this machine, no Docker, all on loopback.
#
#   ./run-blog.sh          scenario 1: front proxy + two echo services
#   ./run-blog.sh ws       scenario 1 with the blog's WebSocket route
#   ./run-blog.sh mesh     scenario 2: front proxy --h2c--> two sidecars --> echo
#   ./run-blog.sh mesh-mtls  scenario 2 over mutual TLS: front proxy --h2 over
#                          mTLS--> sidecars, and HTTPS for curl on :PROXY_TLS_PORT
#   ./run-blog.sh mesh-as-printed
#                          scenario 2 with the sidecar config exactly as the
#                          blog printed it (it routes back to the sidecars:
#                          nuncio answers 508 Loop Detected and says why)
#
# The blog's configs are used unchanged (examples/blog/, copies of the
# seed). What docker-compose did is done with two visible flags:
#   --hosts examples/hosts     the network aliases service1, service2
#                              (127.0.0.2, 127.0.0.3, one per "container")
#   --remap 0.0.0.0:80=...     the published port (docker's -p 9000:80)
# In the mesh each "container" is a loopback address: service1 is
# 127.0.0.2 (sidecar on :SIDECAR_PORT, echo on :ECHO_PORT, sidecar admin
# :8081), service2 is 127.0.0.3. The sidecars' :80 becomes SIDECAR_PORT.
# Ports: PROXY_PORT (default 9000), ADMIN_PORT (8001), ECHO_PORT (8080),
# SIDECAR_PORT (10080), SIDECAR_ADMIN_PORT (8081), PROXY_TLS_PORT (9443,
# mesh-mtls: the front proxy's :443). mesh-mtls makes a CA and the
# certificates at each start (scripts/make-certs.sh, into a temporary
# directory, or into .certs/ kept between runs with KEEP_CERTS=1); no
# private key is in the repository.
# NUNCIO_BIN picks a binary; otherwise a release build is made.
set -euo pipefail
cd "$(dirname "$0")"

scenario=${1:-simple}
PROXY_PORT=${PROXY_PORT:-9000}
ADMIN_PORT=${ADMIN_PORT:-8001}
ECHO_PORT=${ECHO_PORT:-8080}
SIDECAR_PORT=${SIDECAR_PORT:-10080}
SIDECAR_ADMIN_PORT=${SIDECAR_ADMIN_PORT:-8081}
PROXY_TLS_PORT=${PROXY_TLS_PORT:-9443}
ROOT=$PWD

case "$scenario" in
  simple) config=examples/blog/simple-proxy.yaml ;;
  ws) config=examples/blog/simple-proxy-ws.yaml ;;
  mesh) config=examples/blog/proxy-envoy.yaml; sidecar=examples/blog/service-envoy.fixed.yaml ;;
  mesh-mtls) config=examples/blog/proxy-envoy.mtls.yaml; sidecar=examples/blog/service-envoy.mtls.yaml; tls=1 ;;
  mesh-as-printed) config=examples/blog/proxy-envoy.yaml; sidecar=examples/blog/service-envoy.yaml ;;
  *) echo "usage: $0 [simple|ws|mesh|mesh-mtls|mesh-as-printed]" >&2; exit 2 ;;
esac

if [ -z "${NUNCIO_BIN:-}" ]; then
  command -v cargo >/dev/null || { echo "cargo is needed to build nuncio (https://rustup.rs)" >&2; exit 1; }
  echo "building nuncio (release)..." >&2
  cargo build --release --quiet -p nuncio
  NUNCIO_BIN=target/release/nuncio
fi

case "$NUNCIO_BIN" in /*) ;; *) NUNCIO_BIN=$ROOT/$NUNCIO_BIN ;; esac

# Where each process runs: its certs/ when the scenario has TLS.
rundir_front=$ROOT; rundir_1=$ROOT; rundir_2=$ROOT
if [ -n "${tls:-}" ]; then
  if [ -n "${KEEP_CERTS:-}" ]; then CERTS=$ROOT/.certs; else CERTS=$(mktemp -d); fi
  [ -f "$CERTS/ca.pem" ] || bash scripts/make-certs.sh "$CERTS"
  for who in front service1 service2; do
    mkdir -p "$CERTS/run-$who/certs"
    ln -sf "$CERTS/ca.pem" "$CERTS/run-$who/certs/ca.pem"
  done
  ln -sf "$CERTS/front-proxy.pem" "$CERTS/run-front/certs/front-proxy.pem"
  ln -sf "$CERTS/front-proxy.key" "$CERTS/run-front/certs/front-proxy.key"
  for i in 1 2; do
    ln -sf "$CERTS/service$i.pem" "$CERTS/run-service$i/certs/sidecar.pem"
    ln -sf "$CERTS/service$i.key" "$CERTS/run-service$i/certs/sidecar.key"
  done
  rundir_front=$CERTS/run-front; rundir_1=$CERTS/run-service1; rundir_2=$CERTS/run-service2
fi

pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true
  if [ -n "${tls:-}" ] && [ -z "${KEEP_CERTS:-}" ]; then rm -rf "$CERTS"; fi
}
trap cleanup EXIT
trap 'exit 0' INT TERM

"$NUNCIO_BIN" echo --listen "127.0.0.2:$ECHO_PORT" --name service1 & pids+=($!)
"$NUNCIO_BIN" echo --listen "127.0.0.3:$ECHO_PORT" --name service2 & pids+=($!)
if [ -n "${sidecar:-}" ]; then
  # One sidecar per service host, as start.sh ran it in each container.
  for i in 1 2; do
    ip=127.0.0.$((i + 1))
    rundir_var=rundir_$i
    (cd "${!rundir_var}" && exec "$NUNCIO_BIN" -c "$ROOT/$sidecar" --hosts "$ROOT/examples/hosts" --concurrency 1 --service-cluster "service$i" \
      --remap "0.0.0.0:80=$ip:$SIDECAR_PORT" \
      --remap "0.0.0.0:8081=$ip:$SIDECAR_ADMIN_PORT" \
      --remap "0.0.0.0:8001=$ip:$SIDECAR_ADMIN_PORT" \
      --remap "127.0.0.1:8080=$ip:$ECHO_PORT" \
      --remap "127.0.0.2:80=127.0.0.2:$SIDECAR_PORT" \
      --remap "127.0.0.3:80=127.0.0.3:$SIDECAR_PORT") & pids+=($!)
  done
fi
(cd "$rundir_front" && exec "$NUNCIO_BIN" -c "$ROOT/$config" --hosts "$ROOT/examples/hosts" --concurrency 1 --service-cluster front-proxy \
  --remap "0.0.0.0:80=127.0.0.1:$PROXY_PORT" \
  --remap "0.0.0.0:443=127.0.0.1:$PROXY_TLS_PORT" \
  --remap "0.0.0.0:8001=127.0.0.1:$ADMIN_PORT" \
  --remap "127.0.0.2:8080=127.0.0.2:$ECHO_PORT" \
  --remap "127.0.0.3:8080=127.0.0.3:$ECHO_PORT" \
  --remap "127.0.0.2:80=127.0.0.2:$SIDECAR_PORT" \
  --remap "127.0.0.3:80=127.0.0.3:$SIDECAR_PORT") & pids+=($!)
front=$!

for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$ADMIN_PORT/ready" 2>/dev/null && break
  sleep 0.1
done

cat <<MSG

The blog's scenario '$scenario' is running ($config, unchanged):
  front proxy   http://127.0.0.1:$PROXY_PORT   (the blog's :80, published as :9000)
  admin         http://127.0.0.1:$ADMIN_PORT
  service1      127.0.0.2:$ECHO_PORT   service2  127.0.0.3:$ECHO_PORT
MSG
if [ -n "${sidecar:-}" ]; then cat <<MSG
  sidecars      127.0.0.2:$SIDECAR_PORT, 127.0.0.3:$SIDECAR_PORT (HTTP/2 from the front proxy; $sidecar)
                admin on 127.0.0.2:$SIDECAR_ADMIN_PORT, 127.0.0.3:$SIDECAR_ADMIN_PORT
MSG
fi
if [ -n "${tls:-}" ]; then cat <<MSG
  HTTPS         https://localhost:$PROXY_TLS_PORT   (the front proxy's :443; certificate front-proxy)
  certificates  $CERTS   (CA ca.pem; front-proxy, service1, service2)
  the sidecars take only mutual TLS: the front proxy's certificate, from the mesh CA

Over TLS:
  curl --cacert $CERTS/ca.pem https://localhost:$PROXY_TLS_PORT/
  curl --cacert $CERTS/ca.pem --http2 https://localhost:$PROXY_TLS_PORT/echo -d '{"name": "zcong"}'
  curl -s localhost:$ADMIN_PORT/stats | grep -E 'cluster.myservice.ssl.handshake|upstream_cx_http2_total|ssl.versions'
  curl -s 127.0.0.2:$SIDECAR_ADMIN_PORT/stats | grep -E 'ssl.(handshake|no_certificate|fail_verify)'
MSG
fi
cat <<MSG

Try it:
  export BASE=localhost:$PROXY_PORT
  curl \$BASE
  curl -X POST \$BASE/echo -H 'Content-Type: application/json' -d '{"name": "zcong"}'
  curl -s localhost:$ADMIN_PORT/stats | grep -E 'upstream_rq_2xx|upstream_cx_http2_total'
Press Ctrl-C to stop.
MSG
wait "$front"
