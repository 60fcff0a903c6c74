#!/usr/bin/env bash
# Builds the Windows installer on Linux: the app (tauri build --no-bundle) and stock-watch
# cross-built for x86_64-pc-windows-gnu with mingw-w64, packed with WebView2Loader.dll by
# Debian's makensis from our own script, packaging/windows/installer.nsi (Tauri's NSIS
# bundler cannot run here: README "Installers"). The app inside is marked as installed by
# NSIS, as Tauri's bundler marks it, so its updater asks for `windows-x86_64-nsis`.
# When TAURI_SIGNING_PRIVATE_KEY (or _PATH) is set, the installer is signed for the updater
# (a .sig beside it). Prints where it is and what it weighs.
# Usage: bash scripts/package-windows.sh [--debug]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
profile=release
tauri_args=()
cargo_args=(--release)
for arg in "$@"; do
  case "$arg" in
    --debug) profile=debug; tauri_args+=(--debug); cargo_args=() ;;
    *) echo "usage: $0 [--debug]" >&2; exit 2 ;;
  esac
done
target=x86_64-pc-windows-gnu
command -v makensis >/dev/null 2>&1 && command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || bash scripts/setup-debian.sh
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
tauri=$(bash scripts/tauri-cli.sh)

echo "==> the app and stock-watch for Windows ($profile)"
"$tauri" build --ci --no-bundle --target "$target" "${tauri_args[@]}"
cargo build "${cargo_args[@]}" --target "$target" -p stock-watch

dir="$CARGO_TARGET_DIR/$target/$profile"
# webview2-com-sys's build puts the loader beside the binaries for gnu targets.
loader="$dir/WebView2Loader.dll"
[ -f "$loader" ] || loader=$(find "$dir/build" -path '*x64*' -name WebView2Loader.dll -print -quit)
[ -n "$loader" ] && [ -f "$loader" ] || { echo "WebView2Loader.dll was not found under $dir" >&2; exit 1; }
version=$(node -p "require('./src-tauri/tauri.conf.json').version")
out="$dir/installer"
stage="$out/stage"
rm -rf "$out"
mkdir -p "$stage"
# Without their symbols (a third of the app's size; crash reports name functions through
# the build's own copy, kept in the target folder).
x86_64-w64-mingw32-strip -o "$stage/stock-dashboard.exe" "$dir/stock-dashboard.exe"
x86_64-w64-mingw32-strip -o "$stage/stock-watch.exe" "$dir/stock-watch.exe"
# The bundle-type marker (tauri-utils, platform::bundle_type): same length, replaced in place.
marks=$(grep -c -a -o '__TAURI_BUNDLE_TYPE_VAR_UNK' "$stage/stock-dashboard.exe" || true)
[ "$marks" = 1 ] || { echo "expected one bundle-type marker in stock-dashboard.exe, found ${marks:-0}" >&2; exit 1; }
perl -0777 -pi -e 's/__TAURI_BUNDLE_TYPE_VAR_UNK/__TAURI_BUNDLE_TYPE_VAR_NSS/' "$stage/stock-dashboard.exe"
installer="$out/Stock Dashboard_${version}_x64-setup.exe"
echo "==> the installer (makensis $(makensis -VERSION))"
makensis -V2 -WX \
  "-DVERSION=$version" \
  "-DAPP_EXE=$stage/stock-dashboard.exe" \
  "-DWATCH_EXE=$stage/stock-watch.exe" \
  "-DLOADER_DLL=$loader" \
  "-DICON=$ROOT/src-tauri/icons/icon.ico" \
  "-DOUTFILE=$installer" \
  packaging/windows/installer.nsi
if [ -n "${TAURI_SIGNING_PRIVATE_KEY:-}${TAURI_SIGNING_PRIVATE_KEY_PATH:-}" ]; then
  "$tauri" signer sign --app-version "$version" "$installer" >/dev/null
  echo "==> signed: $installer.sig"
fi
echo "==> Windows installer ($profile):"
for f in "$stage/stock-dashboard.exe" "$stage/stock-watch.exe" "$installer"; do
  stat -c '%s %n' "$f" | awk '{ size = $1; $1 = ""; printf "  %6.1f MB %s\n", size / 1e6, $0 }'
done
