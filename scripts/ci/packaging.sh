#!/usr/bin/env bash
# Stage 5, Linux packaging: the .deb built (with the .rpm), installed with dpkg -i, started,
# removed with dpkg -r; the .rpm read, installed into a scratch root, started, erased; and
# signed automatic updates end to end (a tampered 0.1.1 refused, the real one installed
# through the window, the app back as 0.1.1).
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$ROOT"
echo "==> the .deb (and .rpm): built; the .deb installed, started, removed"
bash scripts/deb-test.sh
echo "==> the .rpm: read, installed into a scratch root, started, erased"
bash scripts/rpm-test.sh --no-build
echo "==> signed updates: 0.1.0 installed, a tampered 0.1.1 refused, the real one installed from the window"
bash scripts/update-test.sh
