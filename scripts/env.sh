# Sourced by the other scripts: where builds go (outside the clone, so rebuilds reuse work).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/stock-dashboard/target}"
export PATH="$HOME/.cargo/bin:$PATH"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
# In CI every run is a fresh clone at a new path: incremental caches would only pile up
# (tens of GB on this machine's disk) and never be reused.
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"; fi
