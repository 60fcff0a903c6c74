#!/usr/bin/env bash
# Prints the path of Tauri's bundler, tauri-cli, installing it first if needed: the prebuilt
# npm package @tauri-apps/cli at an exact version (a `cargo install tauri-cli` compiles for
# ~15 minutes on this machine). Not in tests/node's lockfile: the registry mirror here has
# only the Linux builds of its per-platform packages, so a lockfile naming them all cannot
# be written, and `npm ci` refuses one that does not.
set -euo pipefail
source "$(dirname "$0")/env.sh"
TAURI_CLI_VERSION=2.12.4
dir="${XDG_CACHE_HOME:-$HOME/.cache}/stock-dashboard/tauri-cli-$TAURI_CLI_VERSION"
bin="$dir/node_modules/.bin/tauri"
if [ "$("$bin" --version 2>/dev/null)" != "tauri-cli $TAURI_CLI_VERSION" ]; then
  echo "==> installing tauri-cli $TAURI_CLI_VERSION (npm @tauri-apps/cli)" >&2
  mkdir -p "$dir"
  (cd "$dir" && npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
    "@tauri-apps/cli@$TAURI_CLI_VERSION" >&2)
fi
echo "$bin"
