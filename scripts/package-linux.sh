#!/usr/bin/env bash
# Builds the Linux installers with Tauri's bundler (tauri-cli from npm, pinned by the
# lockfile): the .deb and the .rpm, in one run (each marked with its bundle type, which the
# updater reads). No AppImage: its bundler downloads AppRun and linuxdeploy from github.com
# at build time, which this network cannot reach (README "Installers").
# When TAURI_SIGNING_PRIVATE_KEY (or _PATH) is set, each package is signed for the updater
# (a .sig beside it). Extra arguments go to `tauri build` (the update test passes --config).
# Prints where they are and what they weigh.
# Usage: bash scripts/package-linux.sh [--debug] [tauri build arguments...]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
profile=release
args=()
for arg in "$@"; do
  case "$arg" in
    --debug) profile=debug; args+=(--debug) ;;
    *) args+=("$arg") ;;
  esac
done
tauri=$(bash scripts/tauri-cli.sh)
# The bundles land under the target folder; stale ones from an earlier version would be listed too.
out="$CARGO_TARGET_DIR/$profile/bundle"
rm -rf "$out/deb" "$out/rpm" "$out/appimage"
"$tauri" build --ci --bundles deb,rpm "${args[@]}"
if [ -n "${TAURI_SIGNING_PRIVATE_KEY:-}${TAURI_SIGNING_PRIVATE_KEY_PATH:-}" ]; then
  for package in "$out"/deb/*.deb; do
    "$tauri" signer sign --app-version "$(dpkg-deb -f "$package" Version)" "$package" >/dev/null
  done
  for package in "$out"/rpm/*.rpm; do
    "$tauri" signer sign --app-version "$(rpm -qp --qf '%{VERSION}' "$package" 2>/dev/null)" "$package" >/dev/null
  done
  echo "==> signed (.sig beside each package)"
fi
echo "==> installers ($profile):"
find "$out" -maxdepth 2 -type f \( -name '*.deb' -o -name '*.rpm' \) -printf '%s\t%p\n' |
  awk -F'\t' '{ printf "  %6.1f MB  %s\n", $1 / 1e6, $2 }'
