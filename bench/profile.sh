#!/usr/bin/env bash
# Where nuncio's instructions go on the small-GET mix (callgrind).
#
#   bash bench/profile.sh            # top functions, exclusive and inclusive
#   N=20000 TOP=60 bash bench/profile.sh
#   MIX=h2c bash bench/profile.sh    # h2c downstream, 10 streams a connection
#   MIX=mesh bash bench/profile.sh   # the mesh hop: HTTP/1.1 client, h2c upstream
#   FILTERS=3 bash bench/profile.sh  # three filters that do nothing for these
#                                    # requests before the router (lib.sh)
#
# Collection is switched on only after a warm-up, so the profile holds
# N requests and nothing of startup. Output: bench/out/profile.callgrind
# (open it with callgrind_annotate or kcachegrind) and a summary on stdout.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
need h2load:nghttp2-client nginx:nginx-light valgrind:valgrind callgrind_control:valgrind
ORIGIN=18700 PORT=18730 MESH=18732 N=${N:-10000} TOP=${TOP:-40} MIX=${MIX:-h1}
LOADPORT=$PORT
case "$MIX" in
  h1) LOADOPTS=(--h1 -c 10) ;;
  h2c) LOADOPTS=(-c 10 -m 10) ;;
  mesh) LOADOPTS=(--h1 -c 10); LOADPORT=$MESH ;;
  *) echo "MIX must be h1, h2c or mesh" >&2; exit 2 ;;
esac
port_free $ORIGIN $((ORIGIN + 1)) $PORT $MESH $((PORT + 9))
build_nuncio
start_origin $ORIGIN
nuncio_config $PORT $ORIGIN "$([ "$MIX" = mesh ] && echo $MESH)" > "$OUT/nuncio-profile.yaml"
rm -f "$OUT"/profile.callgrind*
taskset -c "$PROXY_CPU" valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$OUT/profile.callgrind" \
  "$NUNCIO" -c "$OUT/nuncio-profile.yaml" --concurrency 1 -l warn >/dev/null 2>&1 & vpid=$!
pids+=($vpid)
for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
taskset -c "$LOAD_CPU" h2load "${LOADOPTS[@]}" -n 2000 "http://127.0.0.1:$LOADPORT/" >/dev/null
callgrind_control -i on "$vpid" >/dev/null 2>&1
taskset -c "$LOAD_CPU" h2load "${LOADOPTS[@]}" -n "$N" "http://127.0.0.1:$LOADPORT/" >/dev/null
callgrind_control -i off "$vpid" >/dev/null 2>&1
kill "$vpid"; wait "$vpid" 2>/dev/null || true
total=$(callgrind_annotate --auto=no "$OUT/profile.callgrind" | awk '/PROGRAM TOTALS/ && !done {gsub(",", "", $1); print $1; done=1}')
echo "instructions per request: $(( total / N ))  (N=$N, MIX=$MIX, FILTERS=${FILTERS:-0})"
echo "--- exclusive"
callgrind_annotate --auto=no "$OUT/profile.callgrind" | grep -E '^ *[0-9,]+ \(' | head -"$TOP" || true
echo "--- inclusive"
callgrind_annotate --auto=no --inclusive=yes "$OUT/profile.callgrind" | grep -E '^ *[0-9,]+ \(' | head -"$TOP" || true
