#!/usr/bin/env bash
# The app's credential store for real on Linux (called by scripts/test-all.sh):
#  1. on a private session bus with gnome-keyring's Secret Service (scripts/with-keyring.sh):
#     remember me keeps the token there, survives a restart, and logging out removes it
#     (read back with libsecret's secret-tool);
#  2. with no session bus at all: the store reports itself unavailable.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
command -v secret-tool >/dev/null || { echo "keyring-test: secret-tool is missing (bash scripts/setup-debian.sh)" >&2; exit 1; }
cargo test --locked -p stock-dashboard --test commands --no-run

echo "==> credential store: gnome-keyring on a private session bus"
timeout 300 bash scripts/with-keyring.sh cargo test --locked -p stock-dashboard --test commands -- --ignored --exact \
  os_store::secret_service_remember_me_survives_a_restart_and_logout_removes_the_token

echo "==> credential store: no session bus"
NO_BUS="$(mktemp -d)"
trap 'rm -rf "$NO_BUS"' EXIT
env -u DBUS_SESSION_BUS_ADDRESS DBUS_SESSION_BUS_ADDRESS="unix:path=$NO_BUS/no-bus" \
  timeout 300 cargo test --locked -p stock-dashboard --test commands -- --ignored --exact \
  os_store::no_secret_service_makes_the_os_store_unavailable
