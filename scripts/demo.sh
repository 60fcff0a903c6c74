#!/usr/bin/env bash
# Sets up and runs the product on the embedded default: a local demo bridge (login, feed)
# and the desktop app pointed at it. Ctrl-C stops both.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
bash scripts/setup-debian.sh
cargo build --workspace --locked
"$CARGO_TARGET_DIR/debug/stock-bridge" demo &
bridge=$!
trap 'kill $bridge 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 50); do
  curl -fsS http://127.0.0.1:3001/healthz >/dev/null 2>&1 && break
  sleep 0.1
done
echo "Sign in with demo@mediboy.local / demo1234"
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "No display found: the bridge runs; try 'stock-watch' in another terminal, or run this from a desktop session." >&2
  wait $bridge
else
  MEDIBOY_API_BASE_URL=http://127.0.0.1:3001 VITE_SOCKET_URL=http://127.0.0.1:3001 "$CARGO_TARGET_DIR/debug/stock-dashboard"
fi
