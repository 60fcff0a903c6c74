#!/usr/bin/env bash
# The fan-out benchmark on release builds: our bridge, the Node bridge, socket.io on
# uWebSockets.js and the floor (fanout-floor) on the same work,
# the servers pinned to CPU 0 and the load generator to CPU 1. Prints a Markdown table.
# Usage: bash bench/run.sh [--cases "1x2000@0,1000x200@50,1000x1000@batch,10000x50@10"] (a case may end in /slow: slow readers) [--wss] [--no-node] [--no-floor]
set -euo pipefail
source "$(dirname "$0")/../scripts/env.sh"
cd "$ROOT"
(cd tests/node && [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error)
cargo build --release --locked -p stock-bridge -p stock-bench
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); node $(node --version)"
exec taskset -c 1 "$CARGO_TARGET_DIR/release/fanout-bench" --bridge "$CARGO_TARGET_DIR/release/stock-bridge" --server-cpu 0 --redis "$@"
