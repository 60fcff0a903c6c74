#!/usr/bin/env bash
# Refreshes the README's pictures in docs/screenshots: the page in headless Chromium and
# the real window under Xvfb. Tests never write there; this script does, on purpose.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
export SCREENSHOT_DIR="$ROOT/docs/screenshots"
mkdir -p "$SCREENSHOT_DIR"
(cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/node && timeout 600 node --test --test-concurrency=1 ui.test.js)
bash scripts/window-test.sh
echo "==> pictures refreshed in docs/screenshots (review them, then commit)"
