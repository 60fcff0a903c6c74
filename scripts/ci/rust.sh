#!/usr/bin/env bash
# Stage 2, Rust: the production bridge carries none of the demo's public secrets; every
# crate's unit and integration tests (bridge, client core, app commands, testkit); the
# app's credential store for real (scripts/keyring-test.sh).
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$ROOT"
echo "==> the production bridge (--no-default-features) carries none of the demo's public secrets"
# Built in the shared target folder (only the bridge crate itself is compiled again) and
# set aside before the workspace build puts the demo build back in its place.
cargo build --locked -p stock-bridge --no-default-features
mkdir -p "$CARGO_TARGET_DIR/production-bridge"
cp "$CARGO_TARGET_DIR/debug/stock-bridge" "$CARGO_TARGET_DIR/production-bridge/stock-bridge"
echo "==> cargo build --workspace (binaries the cross-process tests start)"
cargo build --workspace --locked
DEMO_SECRETS=(-e demo-jwt-secret-not-for-production -e demo-broadcast-key-change-me -e demo-support-key-change-me -e demo@mediboy.local)
grep -aq "${DEMO_SECRETS[@]}" "$CARGO_TARGET_DIR/debug/stock-bridge" \
  || { echo "the check is broken: the demo build does not contain the demo's secrets either" >&2; exit 1; }
if grep -aq "${DEMO_SECRETS[@]}" "$CARGO_TARGET_DIR/production-bridge/stock-bridge"; then
  echo "the production bridge contains the demo's secrets" >&2; exit 1
fi
"$CARGO_TARGET_DIR/production-bridge/stock-bridge" --help | grep -q ' demo ' \
  && { echo "the production bridge still offers the demo command" >&2; exit 1; }
echo "==> cargo test --workspace"
timeout 2400 cargo test --workspace --locked
bash scripts/keyring-test.sh
