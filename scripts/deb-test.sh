#!/usr/bin/env bash
# The .deb as an operator gets it: built, installed with dpkg -i, the installed binary started
# under Xvfb and driven to its login screen through WebDriver, removed with dpkg -r, and
# nothing of the package left behind. Needs root (dpkg).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
bash scripts/package-linux.sh --debug
deb=$(find "$CARGO_TARGET_DIR/debug/bundle/deb" -name '*.deb' | head -n1)
[ -n "$deb" ] || { echo "no .deb was built" >&2; exit 1; }
pkg=$(dpkg-deb -f "$deb" Package)
echo "==> $pkg: depends on $(dpkg-deb -f "$deb" Depends)"
dpkg-deb -f "$deb" Depends | grep -q 'libwebkit2gtk-4.1-0' || { echo "the package must declare WebKitGTK 4.1" >&2; exit 1; }
files=$(dpkg-deb -c "$deb" | awk '{ print $NF }' | sed 's|^\.||' | grep -v '/$')
$SUDO dpkg -i "$deb"
trap '$SUDO dpkg -r "$pkg" >/dev/null 2>&1 || true' EXIT
bin=$(dpkg -L "$pkg" | grep -m1 '^/usr/bin/')
echo "==> installed $bin"
export STOCK_DASHBOARD_BIN="$bin"
timeout 300 bash scripts/with-keyring.sh xvfb-run -a -s "-screen 0 1280x800x24" node --test tests/node/installed.test.js
$SUDO dpkg -r "$pkg"
trap - EXIT
left=0
for f in $files; do
  if [ -e "$f" ]; then echo "left behind: $f" >&2; left=1; fi
done
if dpkg -s "$pkg" >/dev/null 2>&1 && dpkg -s "$pkg" | grep -q '^Status: install'; then
  echo "$pkg is still installed" >&2; left=1
fi
[ "$left" -eq 0 ] && echo "==> removed: nothing of $pkg is left ($(echo "$files" | wc -l) files checked)"
exit "$left"
