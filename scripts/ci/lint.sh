#!/usr/bin/env bash
# Stage 1, lint: the patched crates are what their upstream.diff says and cargo uses them;
# cargo fmt; clippy -D warnings once per target (Linux, then Windows: nothing Linux-only
# slips in).
set -euo pipefail
source "$(dirname "$0")/../env.sh"
cd "$ROOT"
echo "==> the patched crates: each upstream.diff is its whole change, and cargo uses every patch"
bash scripts/check-patches.sh
echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> clippy -D warnings (Linux)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> clippy -D warnings (Windows, x86_64-pc-windows-gnu)"
cargo clippy --workspace --all-targets --locked --target x86_64-pc-windows-gnu -- -D warnings
