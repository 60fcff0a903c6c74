#!/usr/bin/env bash
# Cross-builds the Windows installer on Linux: the app for x86_64-pc-windows-gnu (mingw-w64)
# and Tauri's NSIS bundle (makensis from Debian's nsis). Prints where it is and its size.
# Usage: bash scripts/package-windows.sh
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
command -v makensis >/dev/null 2>&1 && command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || bash scripts/setup-debian.sh
tauri=$(bash scripts/tauri-cli.sh)
# Tauri's NSIS template needs its plugin DLL, which the bundler downloads from github.com.
# Fetched here first, so that a machine without access says so plainly (put the file there
# by hand and run this again).
plugin="${XDG_CACHE_HOME:-$HOME/.cache}/tauri/NSIS/Plugins/x86-unicode/additional/nsis_tauri_utils.dll"
plugin_url=https://github.com/tauri-apps/nsis-tauri-utils/releases/download/nsis_tauri_utils-v0.5.3/nsis_tauri_utils.dll
plugin_sha1=75197fee3c6a814fe035788d1c34ead39349b860
if [ ! -f "$plugin" ]; then
  mkdir -p "$(dirname "$plugin")"
  if ! curl -fsSL --max-time 30 "$plugin_url" -o "$plugin.part" ||
     [ "$(sha1sum "$plugin.part" | cut -d' ' -f1)" != "$plugin_sha1" ]; then
    rm -f "$plugin.part"
    echo "cannot fetch Tauri's NSIS plugin: $plugin_url (SHA-1 $plugin_sha1)." >&2
    echo "Copy that file to $plugin and run this again." >&2
    exit 1
  fi
  mv "$plugin.part" "$plugin"
fi
target=x86_64-pc-windows-gnu
out="$CARGO_TARGET_DIR/$target/release/bundle/nsis"
rm -rf "$out"
"$tauri" build --ci --target "$target" --bundles nsis
echo "==> Windows installer:"
find "$out" -maxdepth 1 -type f -name '*.exe' -printf '%s\t%p\n' | awk -F'\t' '{ printf "  %6.1f MB  %s\n", $1 / 1e6, $2 }'
