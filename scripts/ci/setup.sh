#!/usr/bin/env bash
# Stage 0, host setup (changes the machine; the test stages never do): Debian packages,
# Rust targets and tauri-driver (scripts/setup-debian.sh), and the npm packages the tests
# use (tests/node, pinned by package-lock.json).
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$ROOT"
bash scripts/setup-debian.sh
echo "==> npm ci (reference peers, socket.io-client, playwright-core, tauri-cli)"
(cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
