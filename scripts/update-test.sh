#!/usr/bin/env bash
# Signed automatic updates end to end, offline: a throwaway signing key (made here, never
# kept), two .deb builds signed with it (0.1.0 and 0.1.1; their config adds the test key and
# allows http:// to loopback: the shipped config has neither), 0.1.0 installed with dpkg -i,
# then tests/node/update.test.js: a tampered 0.1.1 is refused and 0.1.0 stays; the real one
# is installed through the window's "Install and restart", dpkg reports 0.1.1, and the app
# comes back signed in and connected (the bridge's fleet view sees it, as 0.1.1).
# Needs root (dpkg) and sudo (how the updater runs dpkg when pkexec is not there).
# Usage: bash scripts/update-test.sh
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
command -v sudo >/dev/null || { echo "sudo is missing (apt-get install sudo): the updater installs a .deb through it" >&2; exit 1; }
tauri=$(bash scripts/tauri-cli.sh)
work=$(mktemp -d /tmp/update-test.XXXXXX)
pkg=stock-dashboard
cleanup() {
  pkill -f '^/usr/bin/stock-dashboard( |$)' 2>/dev/null || true
  $SUDO dpkg -r "$pkg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "==> a throwaway signing key"
"$tauri" signer generate --ci -p update-test -w "$work/test.key" >/dev/null
export TAURI_SIGNING_PRIVATE_KEY_PATH="$work/test.key" TAURI_SIGNING_PRIVATE_KEY_PASSWORD=update-test
# `signer sign` reads the key itself from TAURI_SIGNING_PRIVATE_KEY when set: leave it unset.
unset TAURI_SIGNING_PRIVATE_KEY
pubkey=$(cat "$work/test.key.pub")
out="$CARGO_TARGET_DIR/debug/bundle/deb"
for version in 0.1.0 0.1.1; do
  echo "==> $version, signed with the test key"
  printf '{"version":"%s","plugins":{"updater":{"pubkey":"%s","dangerousInsecureTransportProtocol":true}}}\n' \
    "$version" "$pubkey" > "$work/config-$version.json"
  bash scripts/package-linux.sh --debug --config "$work/config-$version.json"
  mkdir -p "$work/$version"
  cp "$out"/*.deb "$out"/*.deb.sig "$work/$version/"
  [ "$(dpkg-deb -f "$work/$version"/*.deb Version)" = "$version" ] || { echo "the .deb is not $version" >&2; exit 1; }
done

$SUDO dpkg -i "$work/0.1.0"/*.deb
echo "==> installed $(dpkg-query -W -f '${Package} ${Version}' "$pkg")"
export UPDATE_TEST_DIR="$work" STOCK_BRIDGE_BIN="${STOCK_BRIDGE_BIN:-$CARGO_TARGET_DIR/debug/stock-bridge}"
[ -x "$STOCK_BRIDGE_BIN" ] || cargo build -q -p stock-bridge --bin stock-bridge
timeout 600 bash scripts/with-keyring.sh xvfb-run -a -s "-screen 0 1280x800x24" node --test tests/node/update.test.js
