#!/usr/bin/env bash
# The real desktop window, driven through WebDriver under a virtual display.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
cargo build --workspace --locked
export STOCK_DASHBOARD_BIN="$CARGO_TARGET_DIR/debug/stock-dashboard"
export STOCK_BRIDGE_BIN="$CARGO_TARGET_DIR/debug/stock-bridge"
mkdir -p tests/artifacts
# On a private session bus with an unlocked keyring: "remember me" works and nothing can
# prompt (a locked keyring would wait for a password no one types).
exec timeout 600 bash scripts/with-keyring.sh xvfb-run -a -s "-screen 0 1280x800x24" node --test tests/node/window.test.js
