#!/usr/bin/env bash
# Stage 5, packaging: the .deb built, installed with dpkg -i, started to its login screen,
# removed with dpkg -r.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$ROOT"
echo "==> the .deb: built, installed, started, removed"
bash scripts/deb-test.sh
