#!/usr/bin/env bash
# Builds the Linux installers with Tauri's bundler (tauri-cli, pinned in setup-debian.sh):
# the .deb and, unless --deb-only, the AppImage. Prints where they are and what they weigh.
# Usage: bash scripts/package-linux.sh [--debug] [--deb-only]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
profile=release
bundles=deb,appimage
args=()
for arg in "$@"; do
  case "$arg" in
    --debug) profile=debug; args+=(--debug) ;;
    --deb-only) bundles=deb ;;
    *) echo "usage: $0 [--debug] [--deb-only]" >&2; exit 2 ;;
  esac
done
command -v cargo-tauri >/dev/null 2>&1 || bash scripts/setup-debian.sh
# The bundles land under the target folder; stale ones from an earlier version would be listed too.
out="$CARGO_TARGET_DIR/$profile/bundle"
rm -rf "$out/deb" "$out/appimage"
cargo tauri build --ci --bundles "$bundles" "${args[@]}"
echo "==> installers ($profile):"
find "$out" -maxdepth 2 -type f \( -name '*.deb' -o -name '*.AppImage' \) -printf '%s %p\n' |
  awk '{ printf "  %6.1f MB  %s\n", $1 / 1e6, $2 }'
