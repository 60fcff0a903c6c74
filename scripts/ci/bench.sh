#!/usr/bin/env bash
# Stage 6, benchmark and soak at a small size (three bridge nodes on Redis with one killed,
# the cluster placements beside the Node cluster peer, clients in generator processes of 30):
# they must finish and lose nothing; their figures are printed, never asserted.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$ROOT"
cargo build --workspace --locked
echo "==> fan-out benchmark, small configuration, beside the Node bridge, socket.io on uWebSockets.js and the floor"
timeout 600 "$CARGO_TARGET_DIR/debug/fanout-bench" --bridge "$CARGO_TARGET_DIR/debug/stock-bridge" \
  --cases "20x100@0,50x50@50,50x500@batch,50x500@batch/slow,3x20x20@10" --redis --wss --kill-node --clients-per-process 30 --strict
echo "==> soak, 2 x 30 s (a fifth of the clients misbehave; must lose nothing, keep answering, and memory must settle)"
timeout 300 "$CARGO_TARGET_DIR/debug/soak" --bridge "$CARGO_TARGET_DIR/debug/stock-bridge" \
  --clients "${SOAK_CLIENTS:-300}" --rate 50 --secs 30 --rounds 2
