#!/usr/bin/env bash
# Stage 3, page and interop: the official socket.io v4 client against our bridge and our
# client against the old Node bridge; the page's modules; the page in headless Chromium;
# the bridge's fleet page in headless Chromium.
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$ROOT"
cargo build --workspace --locked
mkdir -p tests/artifacts
echo "==> node: socket.io-client interop and the page in headless Chromium"
(cd tests/node && timeout 600 node --test --test-concurrency=1 interop.test.js ui-modules.test.js ui.test.js fleet-page.test.js)
