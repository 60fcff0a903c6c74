#!/usr/bin/env bash
# The Windows installer as a shop's till gets it, tried on Linux under Wine (Debian's
# wine64, a scratch prefix and HOME: nothing leaks into this machine's menus or desktop):
#  1. without Wine: `7zz l` lists exactly the files meant to be inside, and the app inside
#     is marked as installed by NSIS (what its updater asks for);
#  2. without WebView2 the silent install takes its "missing" path (exit 3), writes nothing;
#  3. with WebView2 (its registry key, as the real runtime writes it) a silent install puts
#     the files, the HKCU Uninstall entry (every value) and the shortcuts in place;
#  4. the installed stock-watch.exe logs in to a Linux `stock-bridge demo` on loopback and
#     prints a live add_stock, over ws:// (not wss://: Wine 8's crypt32 reports a private
#     CA's certificate as "revocation offline" and its SSL policy refuses it even with the
#     ignore-revocation flags SChannel's callers set; Windows itself accepts it. README);
#  5. an update as Tauri's updater runs it (/P /UPDATE) keeps the app's data and does not
#     bring back a desktop shortcut the user deleted;
#  6. a silent uninstall leaves no file, key or shortcut (and keeps the data: removing it is
#     asked, or /CLEANDATA, checked last).
# Rust programs need a ProcessPrng shim to load under Wine 8.0 (tests/windows/
# processprng-shim.c): put beside stock-watch.exe for step 4 only, never shipped.
# Usage: bash scripts/windows-test.sh [installer.exe]   (default: the one package-windows.sh built)
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "==> $*"; }

installer="${1:-}"
if [ -z "$installer" ]; then
  for profile in release debug; do
    found=$(find "$CARGO_TARGET_DIR/x86_64-pc-windows-gnu/$profile/installer" -maxdepth 1 -name '*-setup.exe' 2>/dev/null | head -n1)
    if [ -n "$found" ]; then installer="$found"; break; fi
  done
fi
[ -n "$installer" ] && [ -f "$installer" ] || fail "no installer: build it with scripts/package-windows.sh, or name it"
version=$(node -p "require('./src-tauri/tauri.conf.json').version")
wine=$(command -v wine64 || echo /usr/lib/wine/wine64)
[ -x "$wine" ] || fail "wine64 is missing (apt-get install wine64)"
wineserver=$(command -v wineserver || echo /usr/lib/wine/wineserver)
for tool in 7zz x86_64-w64-mingw32-gcc; do command -v "$tool" >/dev/null || fail "$tool is missing (scripts/setup-debian.sh)"; done
[ -n "${DISPLAY:-}" ] || fail "run under an X server (xvfb-run -a bash $0)"

# The Linux side of step 4 (built before HOME moves to the scratch folder: rustup reads it).
cargo build -q -p stock-bridge --bin stock-bridge
bridge_bin="$CARGO_TARGET_DIR/debug/stock-bridge"

work=$(mktemp -d /tmp/windows-test.XXXXXX)
bridge_pid=""
cleanup() {
  [ -n "$bridge_pid" ] && kill "$bridge_pid" 2>/dev/null || true
  WINEPREFIX="$work/prefix" "$wineserver" -k 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export HOME="$work/home" WINEPREFIX="$work/prefix" WINEDEBUG=-all WINEARCH=win64
# No menu entries on this machine, no Mono or Gecko prompts.
export WINEDLLOVERRIDES="winemenubuilder.exe=d;mscoree=d;mshtml=d"
mkdir -p "$HOME"
w() { timeout 180 "$wine" "$@"; }
# Waits for every process of the prefix (the uninstaller runs a copy of itself and returns at once).
settle() { timeout 120 "$wineserver" -w; }

step "1. what is inside $(basename "$installer") ($(stat -c %s "$installer") bytes)"
listing=$(7zz l -ba -slt "$installer" | sed -n 's/^Path = //p' | sort)
ours=$(echo "$listing" | grep -v '^\$PLUGINSDIR/' | tr '\n' ' ')
[ "$ours" = "WebView2Loader.dll stock-dashboard.exe stock-watch.exe uninstall.exe " ] || fail "unexpected files inside: $ours"
plugins=$(echo "$listing" | grep '^\$PLUGINSDIR/' | tr '\n' ' ')
for p in $plugins; do
  case "$p" in '$PLUGINSDIR/modern-wizard.bmp' | '$PLUGINSDIR/nsDialogs.dll' | '$PLUGINSDIR/System.dll') ;; *) fail "unexpected installer plugin: $p" ;; esac
done
mkdir -p "$work/inside"
7zz e -y -o"$work/inside" "$installer" stock-dashboard.exe >/dev/null
grep -q -a '__TAURI_BUNDLE_TYPE_VAR_NSS' "$work/inside/stock-dashboard.exe" || fail "the app is not marked as installed by NSIS"
! grep -q -a '__TAURI_BUNDLE_TYPE_VAR_UNK' "$work/inside/stock-dashboard.exe" || fail "the app still has the unknown bundle marker"
echo "   $ours+ NSIS's own: $plugins; the app is marked NSIS"

step "2. a scratch Wine prefix; the installer without WebView2"
w wineboot --init >/dev/null 2>&1 || fail "wineboot failed"
settle
users="$WINEPREFIX/drive_c/users/$(whoami)"
instdir="$users/AppData/Local/Stock Dashboard"
menu="$users/AppData/Roaming/Microsoft/Windows/Start Menu/Programs/Stock Dashboard"
desktop="$users/Desktop/Stock Dashboard.lnk"
data="$users/AppData/Roaming/com.mediboy.stockdashboard"
key='HKCU\Software\Microsoft\Windows\CurrentVersion\Uninstall\Stock Dashboard'
# Wine links the profile's Desktop to $HOME (scratch here); make it a folder of its own.
rm -f "$users/Desktop" && mkdir -p "$users/Desktop"
set +e
w "$installer" /S
status=$?
set -e
[ "$status" = 3 ] || fail "without WebView2 the installer must exit 3, got $status"
[ ! -e "$instdir" ] || fail "without WebView2 nothing may be installed, found $instdir"
! w reg query "$key" >/dev/null 2>&1 || fail "without WebView2 no uninstall entry may be written"
echo "   exit 3, nothing written"

step "3. with WebView2: a silent install"
w reg add 'HKCU\Software\Microsoft\EdgeUpdate\Clients\{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}' /v pv /t REG_SZ /d 120.0.2210.91 /f >/dev/null
w "$installer" /S || fail "the silent install failed (exit $?)"
settle
files=$(cd "$instdir" && ls | tr '\n' ' ')
[ "$files" = "WebView2Loader.dll stock-dashboard.exe stock-watch.exe uninstall.exe " ] || fail "installed: $files"
entry=$(w reg query "$key" | tr -d '\r')
winpath='C:\users\'"$(whoami)"'\AppData\Local\Stock Dashboard'
expect_value() {
  echo "$entry" | grep -qF "$1    $2    $3" || fail "uninstall entry: $1 is not $3: $(echo "$entry" | grep -F "$1" || echo missing)"
}
expect_value DisplayName REG_SZ "Stock Dashboard"
expect_value DisplayVersion REG_SZ "$version"
expect_value Publisher REG_SZ "Mediboy"
expect_value DisplayIcon REG_SZ "\"$winpath\\stock-dashboard.exe\""
expect_value InstallLocation REG_SZ "$winpath"
expect_value UninstallString REG_SZ "\"$winpath\\uninstall.exe\""
expect_value QuietUninstallString REG_SZ "\"$winpath\\uninstall.exe\" /S"
expect_value NoModify REG_DWORD 0x1
expect_value NoRepair REG_DWORD 0x1
size_kb=$(( $(echo "$entry" | sed -n 's/.*EstimatedSize    REG_DWORD    //p') ))
actual_kb=$(( $(du -sk --apparent-size "$instdir" | cut -f1) ))
[ "$size_kb" -gt $(( actual_kb * 9 / 10 )) ] && [ "$size_kb" -le $(( actual_kb + 64 )) ] || fail "EstimatedSize $size_kb KB, the folder holds $actual_kb KB"
[ -f "$menu/Stock Dashboard.lnk" ] && [ -f "$menu/Stock Watch (console).lnk" ] || fail "Start-menu shortcuts missing: $(ls "$menu" 2>&1)"
[ -f "$desktop" ] || fail "no desktop shortcut"
strings -e l "$menu/Stock Watch (console).lnk" | grep -q 'stock-watch.exe' || fail "the console shortcut does not start stock-watch"
echo "   files: $files; uninstall entry complete (EstimatedSize $size_kb KB); 2 Start-menu shortcuts and a desktop one"

step "4. the installed stock-watch.exe against a Linux demo bridge on loopback"
x86_64-w64-mingw32-gcc -shared -O2 -s -o "$work/bcryptprimitives.dll" tests/windows/processprng-shim.c -ladvapi32
cp "$work/bcryptprimitives.dll" "$instdir/"
start_demo() { # -> sets demo_url
  : > "$work/demo.log"
  "$bridge_bin" demo --listen 127.0.0.1:0 --interval-ms 200 > "$work/demo.log" 2>&1 &
  bridge_pid=$!
  for _ in $(seq 100); do
    demo_url=$(sed -n 's/^stock-bridge demo listening on //p' "$work/demo.log")
    [ -n "$demo_url" ] && return 0
    sleep 0.1
  done
  cat "$work/demo.log" >&2
  fail "the demo bridge did not start"
}
watch_once() { # url
  (cd "$instdir" && w ./stock-watch.exe --api "$1" --socket "$1" --email demo@mediboy.local --password demo1234 --once) 2>"$work/watch.err" | tr -d '\r'
}
start_demo
out=$(watch_once "$demo_url") || { cat "$work/watch.err" >&2; fail "stock-watch.exe failed over ws://"; }
echo "$out" | grep -q 'socket connected' && echo "$out" | grep -q 'add_stock  product' || fail "no live add_stock over ws://: $out"
echo "   ws://:  $(echo "$out" | grep -m1 add_stock)"
kill "$bridge_pid"; wait "$bridge_pid" 2>/dev/null || true; bridge_pid=""
rm -f "$instdir/bcryptprimitives.dll"

step "5. an update as the updater runs it (/P /UPDATE): data kept, a deleted desktop shortcut stays deleted"
mkdir -p "$data"
echo '{"settings":{"till_name":"Counter 2"}}' > "$data/dashboard.json"
rm -f "$desktop"
w "$installer" /P /UPDATE || fail "the update failed (exit $?)"
settle
[ -f "$data/dashboard.json" ] || fail "the update removed the app's data"
[ ! -e "$desktop" ] || fail "the update brought back the desktop shortcut"
[ -f "$instdir/stock-dashboard.exe" ] || fail "the update left no app"
echo "   data kept, no desktop shortcut"

step "6. a silent uninstall"
w "$instdir/uninstall.exe" /S || fail "the silent uninstall failed (exit $?)"
settle
[ ! -e "$instdir" ] || fail "left behind: $(find "$instdir")"
[ ! -e "$menu" ] || fail "left behind: $(find "$menu")"
! w reg query "$key" >/dev/null 2>&1 || fail "the uninstall entry is left behind"
[ -f "$data/dashboard.json" ] || fail "a silent uninstall must keep the data (removing it is asked)"
w "$installer" /S || fail "reinstall failed"
settle
w "$instdir/uninstall.exe" /S /CLEANDATA || fail "uninstall /CLEANDATA failed"
settle
[ ! -e "$instdir" ] && [ ! -e "$data" ] || fail "/CLEANDATA left $(ls -d "$instdir" "$data" 2>/dev/null)"
echo "   nothing left; the data kept, then removed with /CLEANDATA"
echo "==> the Windows installer: all checks passed"
