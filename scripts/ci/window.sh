#!/usr/bin/env bash
# Stage 4, the real app window under Xvfb, driven through WebDriver (tauri-driver +
# WebKitWebDriver).
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$ROOT"
bash scripts/window-test.sh
