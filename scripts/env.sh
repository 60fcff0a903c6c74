# Sourced by the other scripts: where builds go (outside the clone, so rebuilds reuse work).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/stock-dashboard/target}"
export PATH="$HOME/.cargo/bin:$PATH"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
