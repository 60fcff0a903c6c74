#!/usr/bin/env bash
# Stage 6, Windows: the installer cross-built on Linux (release: the app and stock-watch for
# x86_64-pc-windows-gnu, our NSIS script, makensis) and tried under Wine in a scratch
# prefix (scripts/windows-test.sh: its contents, the WebView2-missing path, a silent install,
# stock-watch.exe live against a Linux demo bridge over ws://, an update keeping
# the data, a silent uninstall leaving nothing).
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$ROOT"
bash scripts/package-windows.sh
timeout 900 xvfb-run -a -s "-screen 0 1024x768x24" bash scripts/windows-test.sh
