#!/usr/bin/env bash
# The .rpm, as far as a Debian machine can take it: built (with the .deb, by
# scripts/package-linux.sh, unless --no-build), its files and dependencies read with
# `rpm -qpl` / `rpm -qpR`, the app inside marked as installed from an RPM (what its updater
# asks for), then installed with rpm into a scratch root (--nodeps: this machine's packages
# are in dpkg's database, not rpm's), the installed binary started under Xvfb to its login
# screen through WebDriver, erased with rpm -e, and nothing of it left.
# Usage: bash scripts/rpm-test.sh [--no-build]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "${1:-}" = --no-build ] || bash scripts/package-linux.sh --debug
package=$(find "$CARGO_TARGET_DIR/debug/bundle/rpm" -name '*.rpm' | head -n1)
[ -n "$package" ] || fail "no .rpm was built"
name=$(rpm -qp --qf '%{NAME}' "$package" 2>/dev/null)
echo "==> $(basename "$package"): $name $(rpm -qp --qf '%{VERSION}-%{RELEASE} %{ARCH}' "$package" 2>/dev/null)"
files=$(rpm -qpl "$package" 2>/dev/null)
for f in /usr/bin/stock-dashboard "/usr/share/applications/Stock Dashboard.desktop"; do
  echo "$files" | grep -qxF "$f" || fail "the package has no $f: $files"
done
requires=$(rpm -qpR "$package" 2>/dev/null)
# WebKitGTK 4.1 and GTK 3 by their libraries (rpmbuild's automatic requires, which every
# rpm distribution resolves to its own package names), the tray's library by its package.
for dep in 'libwebkit2gtk-4.1.so.0()(64bit)' 'libgtk-3.so.0()(64bit)' libayatana-appindicator-gtk3; do
  echo "$requires" | grep -qxF "$dep" || fail "the package must require $dep: $(echo "$requires" | tr '\n' ' ')"
done
echo "==> files: $(echo "$files" | wc -l); requires: $(echo "$requires" | grep -v '^rpmlib' | tr '\n' ' ')"
# The bundler turns the app's one `__TAURI_BUNDLE_TYPE_VAR_UNK` into `..._RPM` (the name is
# also in the app's list of known types: twice in all once marked).
app=$(mktemp /tmp/rpm-app.XXXXXX)
# Debian's rpm2cpio exits 1 on this payload though it writes all of it: cpio then reading
# the app whole (its size matches the package's record) is the check.
rpm2cpio "$package" > "$app.cpio" || true
cpio -i --quiet --to-stdout ./usr/bin/stock-dashboard < "$app.cpio" > "$app"
expected=$(rpm -qp --dump "$package" 2>/dev/null | awk '$1 == "/usr/bin/stock-dashboard" { print $2 }')
[ -n "$expected" ] && [ "$(stat -c %s "$app")" = "$expected" ] || fail "the app could not be read whole from the package"
rm -f "$app.cpio"
count() { perl -0777 -ne "print scalar(() = /\Q$1\E/g)" "$app"; }
unmarked=$(count __TAURI_BUNDLE_TYPE_VAR_UNK)
marked=$(count __TAURI_BUNDLE_TYPE_VAR_RPM)
rm -f "$app"
[ "$unmarked" = 0 ] && [ "$marked" = 2 ] || fail "the app inside is not marked as installed from an RPM (UNK $unmarked, RPM $marked)"

root=$(mktemp -d /tmp/rpm-root.XXXXXX)
trap 'rm -rf "$root"' EXIT
rpm --root "$root" --initdb
rpm --root "$root" -i --nodeps "$package"
rpm --root "$root" -q "$name" >/dev/null || fail "rpm does not list $name as installed"
while IFS= read -r f; do [ -e "$root$f" ] || fail "not installed: $f"; done <<< "$files"
echo "==> installed into $root"
export STOCK_DASHBOARD_BIN="$root/usr/bin/stock-dashboard"
timeout 300 bash scripts/with-keyring.sh xvfb-run -a -s "-screen 0 1280x800x24" node --test tests/node/installed.test.js
rpm --root "$root" -e "$name"
left=$(while IFS= read -r f; do if [ -e "$root$f" ] && [ ! -d "$root$f" ]; then echo "$f"; fi; done <<< "$files")
[ -z "$left" ] || fail "left behind: $left"
! rpm --root "$root" -q "$name" >/dev/null 2>&1 || fail "$name is still installed"
echo "==> erased: nothing of $name is left ($(echo "$files" | wc -l) files checked)"
