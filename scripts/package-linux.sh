#!/usr/bin/env bash
# Builds the Linux installers with Tauri's bundler (tauri-cli from npm, pinned by the lockfile):
# the .deb and, unless --deb-only, the AppImage. Prints where they are and what they weigh.
# The AppImage step downloads AppRun and linuxdeploy from github.com: without access to it,
# the .deb is still built and the script says why the AppImage is not (exit 1).
# Usage: bash scripts/package-linux.sh [--debug] [--deb-only]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
profile=release
appimage=yes
args=()
for arg in "$@"; do
  case "$arg" in
    --debug) profile=debug; args+=(--debug) ;;
    --deb-only) appimage=no ;;
    *) echo "usage: $0 [--debug] [--deb-only]" >&2; exit 2 ;;
  esac
done
tauri=$(bash scripts/tauri-cli.sh)
# The bundles land under the target folder; stale ones from an earlier version would be listed too.
out="$CARGO_TARGET_DIR/$profile/bundle"
rm -rf "$out/deb" "$out/appimage"
"$tauri" build --ci --bundles deb "${args[@]}"
status=0
if [ "$appimage" = yes ] && ! "$tauri" build --ci --bundles appimage "${args[@]}" 2>&1 | tee /tmp/appimage-build.log; then
  echo "==> the AppImage was not built: $(grep -m1 -i 'error' /tmp/appimage-build.log || echo 'see above')" >&2
  status=1
fi
echo "==> installers ($profile):"
find "$out" -maxdepth 2 -type f \( -name '*.deb' -o -name '*.AppImage' \) -printf '%s\t%p\n' |
  awk -F'\t' '{ printf "  %6.1f MB  %s\n", $1 / 1e6, $2 }'
exit "$status"
