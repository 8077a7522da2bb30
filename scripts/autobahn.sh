#!/usr/bin/env bash
# Runs the Autobahn|Testsuite fuzzing client (wstest -m fuzzingclient,
# autobahntestsuite 0.8.2, Python 2.7) against `nuncio echo`'s WebSocket
# echo on /ws, and prints
#   autobahn: P passed (OK/NON-STRICT/INFORMATIONAL), F failed, U unimplemented of N
# Exit status: 0 when no case FAILED, 1 when one did, 2 when the run itself
# could not be done (no Python 2.7, install failed, timed out, no report).
#
#   scripts/autobahn.sh                    # echo alone
#   MODE=proxy scripts/autobahn.sh         # nuncio (tests/autobahn/proxy-v3.yaml) in front of the echo
#   CASES='6.*,7.*' scripts/autobahn.sh    # some cases only (comma-separated, wstest patterns)
#
# Other settings: PROFILE=debug|release (default release), NUNCIO_BIN (a
# built binary: no build), PYTHON2 (a Python 2.7 interpreter),
# AUTOBAHN_TIMEOUT (seconds for the whole wstest run, default 2400),
# KEEP_REPORT=1 (keep the temp dir with the HTML/JSON reports).
#
# The Python 2.7 virtualenv lives in .venv-autobahn (pins:
# tests/autobahn/requirements-py27.txt); it is made once and reused while
# the pins are unchanged. Reports go to a temp dir, never the repo.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

MODE="${MODE:-echo}"
PROFILE="${PROFILE:-release}"
CASES="${CASES:-*}"
AUTOBAHN_TIMEOUT="${AUTOBAHN_TIMEOUT:-2400}"
VENV="$ROOT/.venv-autobahn"
REQS="$ROOT/tests/autobahn/requirements-py27.txt"

case "$MODE" in echo | proxy) ;; *) echo "autobahn: MODE must be echo or proxy, not '$MODE'" >&2; exit 2 ;; esac

say() { echo "autobahn: $*" >&2; }
export PIP_NO_PYTHON_VERSION_WARNING=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# --- Python 2.7 ------------------------------------------------------------
is_py27() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' >/dev/null 2>&1; }

find_python2() {
  local c
  for c in "${PYTHON2:-}" \
           "$(command -v pyenv >/dev/null 2>&1 && pyenv root 2>/dev/null)/versions/2.7.18/bin/python2.7" \
           "$HOME/.pyenv/versions/2.7.18/bin/python2.7" \
           "$(command -v python2.7 || true)" "$(command -v python2 || true)"; do
    if is_py27 "$c"; then echo "$c"; return 0; fi
  done
  for c in "$HOME"/.pyenv/versions/2.7*/bin/python2.7; do
    if is_py27 "$c"; then echo "$c"; return 0; fi
  done
  return 1
}

ensure_venv() {
  local stamp="$VENV/.pins.sha256" want
  want="$(sha256sum "$REQS" | cut -d' ' -f1)"
  if [ -x "$VENV/bin/wstest" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  local py
  if ! py="$(find_python2)"; then
    say "no Python 2.7 found (set PYTHON2, or: pyenv install 2.7.18)"; exit 2
  fi
  say "creating $VENV with $py"
  rm -rf "$VENV"
  # virtualenv 20.15 is the last that runs on and creates Python 2.7
  # environments; it is put in a throw-away dir, not into that Python.
  local boot
  boot="$(mktemp -d)"
  if ! "$py" -c 'import virtualenv' >/dev/null 2>&1; then
    timeout 300 "$py" -m pip install --quiet --disable-pip-version-check \
      --target "$boot" 'virtualenv==20.15.1' || { rm -rf "$boot"; say "could not install virtualenv"; exit 2; }
  fi
  PYTHONPATH="$boot" timeout 120 "$py" -m virtualenv --quiet "$VENV" || { rm -rf "$boot"; say "virtualenv failed"; exit 2; }
  rm -rf "$boot"
  timeout 900 "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-warn-script-location -r "$REQS" \
    || { say "pip install failed"; exit 2; }
  echo "$want" >"$stamp"
}

# --- helpers ---------------------------------------------------------------
# N distinct free loopback ports (all held open while they are chosen).
free_ports() {
  python3 -c '
import socket, sys
held = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in held:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in held))' "$1"
}

wait_port() {
  local port=$1 pid=$2 i
  for i in $(seq 1 200); do
    if ! kill -0 "$pid" 2>/dev/null; then say "process $pid exited early"; return 1; fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  say "port $port did not open"; return 1
}

PIDS=()
WORK="$(mktemp -d "${TMPDIR:-/tmp}/nuncio-autobahn.XXXXXX")"
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP_REPORT:-0}" = 1 ]; then say "reports kept in $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# --- build and start --------------------------------------------------------
ensure_venv

if [ -z "${NUNCIO_BIN:-}" ]; then
  flag=(); [ "$PROFILE" = release ] && flag=(--release)
  say "building nuncio ($PROFILE)"
  timeout 1800 cargo build --quiet "${flag[@]}" -p nuncio
  NUNCIO_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/$PROFILE/nuncio"
fi

read -r ECHO_PORT LISTEN_PORT ADMIN_PORT <<<"$(free_ports 3)"
"$NUNCIO_BIN" echo --listen "127.0.0.1:$ECHO_PORT" --name autobahn >"$WORK/echo.log" 2>&1 &
PIDS+=($!)
wait_port "$ECHO_PORT" "$!"
URL="ws://127.0.0.1:$ECHO_PORT/ws"
AGENT="nuncio-echo"

if [ "$MODE" = proxy ]; then
  sed -e "s/LISTEN_PORT/$LISTEN_PORT/" -e "s/ADMIN_PORT/$ADMIN_PORT/" -e "s/ECHO_PORT/$ECHO_PORT/" \
    tests/autobahn/proxy-v3.yaml >"$WORK/proxy.yaml"
  "$NUNCIO_BIN" -c "$WORK/proxy.yaml" --concurrency 1 -l warn >"$WORK/proxy.log" 2>&1 &
  PIDS+=($!)
  wait_port "$LISTEN_PORT" "$!"
  URL="ws://127.0.0.1:$LISTEN_PORT/ws"
  AGENT="nuncio-proxy"
fi

# --- run -------------------------------------------------------------------
python3 - "$ROOT/tests/autobahn/fuzzingclient.json" "$WORK/spec.json" "$WORK/reports" "$AGENT" "$URL" "$CASES" <<'EOF'
import json, sys
src, dst, outdir, agent, url, cases = sys.argv[1:]
spec = json.load(open(src))
spec["outdir"] = outdir
spec["servers"] = [{"agent": agent, "url": url}]
spec["cases"] = [c.strip() for c in cases.split(",") if c.strip()]
json.dump(spec, open(dst, "w"), indent=2)
EOF

say "MODE=$MODE: wstest -m fuzzingclient against $URL (cases: $CASES, at most ${AUTOBAHN_TIMEOUT}s)"
start=$(date +%s)
set +e
(cd "$WORK" && timeout "$AUTOBAHN_TIMEOUT" "$VENV/bin/wstest" -m fuzzingclient -s spec.json >"$WORK/wstest.log" 2>&1)
rc=$?
set -e
say "wstest took $(( $(date +%s) - start ))s"
if [ "$rc" = 124 ]; then say "wstest timed out after ${AUTOBAHN_TIMEOUT}s"; tail -5 "$WORK/wstest.log" >&2; exit 2; fi
if [ ! -f "$WORK/reports/index.json" ]; then
  say "wstest wrote no report (exit $rc)"; tail -20 "$WORK/wstest.log" >&2; exit 2
fi

# --- summarise ---------------------------------------------------------------
python3 - "$WORK/reports/index.json" "$AGENT" <<'EOF'
import json, sys
index = json.load(open(sys.argv[1]))[sys.argv[2]]

def key(case):
    return [int(x) for x in case.split(".")]

passed, failed, unimpl, other, close_issues = [], [], [], [], []
for case in sorted(index, key=key):
    r = index[case]
    b = r["behavior"]
    if b in ("OK", "NON-STRICT", "INFORMATIONAL"):
        passed.append(case)
    elif b == "FAILED":
        failed.append(case)
    elif b == "UNIMPLEMENTED":
        unimpl.append(case)
    else:
        other.append(case)
    if b != "UNIMPLEMENTED" and r.get("behaviorClose") not in ("OK", "INFORMATIONAL"):
        close_issues.append("%s (%s)" % (case, r.get("behaviorClose")))

def show(label, cases, limit=40):
    if cases:
        more = " ... and %d more" % (len(cases) - limit) if len(cases) > limit else ""
        print("autobahn: %s (%d): %s%s" % (label, len(cases), " ".join(cases[:limit]), more))

show("FAILED", failed)
show("NON-STRICT", [c for c in passed if index[c]["behavior"] == "NON-STRICT"])
show("closing behaviour not OK", close_issues)
show("other results", ["%s (%s)" % (c, index[c]["behavior"]) for c in other])
print("autobahn: %d passed (OK/NON-STRICT/INFORMATIONAL), %d failed, %d unimplemented of %d"
      % (len(passed), len(failed), len(unimpl), len(index)))
sys.exit(1 if failed or other else 0)
EOF
