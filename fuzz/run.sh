#!/usr/bin/env bash
# Runs one fuzz target for SECONDS (default 600) on the stable toolchain.
# New inputs go to fuzz/work/TARGET (not committed); the committed seeds in
# fuzz/corpus/TARGET are read, never written. A crash lands in
# fuzz/artifacts/TARGET: copy it to fuzz/regressions/TARGET so the normal
# test run (crates/fuzzing/tests/replay.rs) replays it, then fix the bug.
#
#   bash fuzz/run.sh config_load 600
#   bash fuzz/run.sh http1_request 600
#   bash fuzz/run.sh h2_frames 600
#   bash fuzz/run.sh client_hello 600
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET [SECONDS]}
secs=${2:-600}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p "work/$target"
RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$target" "work/$target" "corpus/$target" -- \
  -max_total_time="$secs" -timeout=30 -print_final_stats=1
