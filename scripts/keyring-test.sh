#!/usr/bin/env bash
# The app's credential store for real on Linux (called by scripts/test-all.sh after the
# workspace tests are built):
#  1. on a private session bus (dbus-run-session) with gnome-keyring's Secret Service in a
#     throwaway home, unlocked with a throwaway password: remember me keeps the token there, survives a
#     restart, and logging out removes it (read back with libsecret's secret-tool);
#  2. with no session bus at all: the store reports itself unavailable.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
for tool in dbus-run-session gnome-keyring-daemon secret-tool; do
  command -v "$tool" >/dev/null || { echo "keyring-test: $tool is missing (bash scripts/setup-debian.sh)" >&2; exit 1; }
done

echo "==> credential store: gnome-keyring on a private session bus"
# A fresh, empty keyring in a throwaway home, so the test never touches a real one (the
# toolchain stays where it is).
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
cargo test --locked -p stock-dashboard --test commands --no-run
KEYRING_HOME="$(mktemp -d)"
trap 'rm -rf "$KEYRING_HOME"' EXIT
HOME="$KEYRING_HOME" XDG_DATA_HOME="$KEYRING_HOME/data" XDG_RUNTIME_DIR="$KEYRING_HOME/run" \
  timeout 300 dbus-run-session -- bash -c '
    mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
    # (An empty password makes it ask through a GUI prompter; a throwaway one does not.)
    printf "throwaway-test-keyring" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
    cargo test --locked -p stock-dashboard --test commands -- --ignored --exact \
      os_store::secret_service_remember_me_survives_a_restart_and_logout_removes_the_token
  '

echo "==> credential store: no session bus"
env -u DBUS_SESSION_BUS_ADDRESS DBUS_SESSION_BUS_ADDRESS="unix:path=$KEYRING_HOME/no-bus" \
  timeout 300 cargo test --locked -p stock-dashboard --test commands -- --ignored --exact \
  os_store::no_secret_service_makes_the_os_store_unavailable
