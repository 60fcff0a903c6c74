#!/usr/bin/env bash
# The desktop app's benchmark (cold start, POST → drawn latency, memory against an empty
# Tauri window) on release builds under Xvfb. Prints a Markdown table.
set -euo pipefail
source "$(dirname "$0")/../scripts/env.sh"
cd "$ROOT"
cargo build --release --locked -p stock-dashboard -p stock-bridge -p empty-window --features stock-dashboard/custom-protocol,empty-window/custom-protocol
export STOCK_DASHBOARD_BIN="$CARGO_TARGET_DIR/release/stock-dashboard"
export EMPTY_WINDOW_BIN="$CARGO_TARGET_DIR/release/empty-window"
export STOCK_BRIDGE_BIN="$CARGO_TARGET_DIR/release/stock-bridge"
# On a private D-Bus session with an unlocked keyring, like the window tests: the app's
# credential store answers at once and nothing can prompt.
exec bash scripts/with-keyring.sh xvfb-run -a -s "-screen 0 1280x800x24" node bench/app-bench.js
