#!/usr/bin/env bash
# Sets up and runs every test: Rust unit and integration tests (bridge, client core, app
# commands), the Node interop tests (official socket.io client, old Node bridge), the page
# in headless Chromium, the real app window under Xvfb through WebDriver, the .deb
# installed and removed, and the lints for Windows.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

bash scripts/setup-debian.sh
echo "==> npm ci (reference peers, socket.io-client, playwright-core)"
(cd tests/node && npm ci --no-audit --no-fund --loglevel=error)

echo "==> the patched crates: each upstream.diff is its whole change, and cargo uses every patch"
bash scripts/check-patches.sh

echo "==> cargo fmt --check and clippy -D warnings (before any test)"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p stock-bridge --no-default-features --all-targets --locked -- -D warnings
echo "==> the same lints for Windows (x86_64-pc-windows-gnu): nothing Linux-only slips in"
cargo clippy --workspace --all-targets --locked --target x86_64-pc-windows-gnu -- -D warnings

echo "==> cargo build --workspace (binaries the cross-process tests start)"
cargo build --workspace --locked

echo "==> the production bridge (--no-default-features) carries none of the demo's public secrets"
cargo build --locked -p stock-bridge --no-default-features --target-dir "$CARGO_TARGET_DIR/production-bridge"
DEMO_SECRETS=(-e demo-jwt-secret-not-for-production -e demo-broadcast-key-change-me -e demo@mediboy.local)
grep -aq "${DEMO_SECRETS[@]}" "$CARGO_TARGET_DIR/debug/stock-bridge" \
  || { echo "the check is broken: the demo build does not contain the demo's secrets either" >&2; exit 1; }
if grep -aq "${DEMO_SECRETS[@]}" "$CARGO_TARGET_DIR/production-bridge/debug/stock-bridge"; then
  echo "the production bridge contains the demo's secrets" >&2; exit 1
fi

echo "==> cargo test --workspace"
timeout 2400 cargo test --workspace --locked

bash scripts/keyring-test.sh

echo "==> node: socket.io-client interop and the page in headless Chromium"
mkdir -p tests/artifacts
(cd tests/node && timeout 600 node --test --test-concurrency=1 interop.test.js ui-modules.test.js ui.test.js)

echo "==> node: the real app window under Xvfb (tauri-driver + WebKitWebDriver)"
bash scripts/window-test.sh

echo "==> the .deb: built, installed with dpkg -i, started to its login screen, removed with dpkg -r"
bash scripts/deb-test.sh

echo "==> fan-out benchmark, small configuration, beside the Node bridge, socket.io on uWebSockets.js and the floor (must finish and lose nothing; figures not asserted)"
timeout 600 "$CARGO_TARGET_DIR/debug/fanout-bench" --bridge "$CARGO_TARGET_DIR/debug/stock-bridge" \
  --cases "20x100@0,50x50@50,50x500@batch" --redis --wss --strict

echo "==> soak, 2 x 30 s (a fifth of the clients misbehave; must lose nothing, keep answering, and memory must settle)"
timeout 300 "$CARGO_TARGET_DIR/debug/soak" --bridge "$CARGO_TARGET_DIR/debug/stock-bridge" \
  --clients "${SOAK_CLIENTS:-300}" --rate 50 --secs 30 --rounds 2

echo "==> the test run left the working tree as it found it"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  dirty="$(git -C "$ROOT" status --porcelain)"
  if [ -n "$dirty" ]; then
    echo "the tests changed tracked or unignored files:" >&2
    echo "$dirty" >&2
    exit 1
  fi
fi

echo "==> all tests passed"
