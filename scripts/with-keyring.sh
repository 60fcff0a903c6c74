#!/usr/bin/env bash
# Runs a command on a private D-Bus session bus with gnome-keyring's Secret Service,
# unlocked with a throwaway password, its keyring in a throwaway folder: the command can
# use the OS credential store without touching (or being prompted by) a real one.
# Usage: bash scripts/with-keyring.sh COMMAND [ARGS...]
set -euo pipefail
for tool in dbus-run-session gnome-keyring-daemon; do
  command -v "$tool" >/dev/null || { echo "with-keyring: $tool is missing (bash scripts/setup-debian.sh)" >&2; exit 1; }
done
KEYRING_HOME="$(mktemp -d)"
trap 'rm -rf "$KEYRING_HOME"' EXIT
mkdir -p "$KEYRING_HOME/data" "$KEYRING_HOME/run" && chmod 700 "$KEYRING_HOME/run"
export WITH_KEYRING_DATA="$KEYRING_HOME/data" WITH_KEYRING_RUN="$KEYRING_HOME/run"
exec dbus-run-session -- bash -c '
  # (An empty password makes gnome-keyring ask through a GUI prompter; a throwaway one does not.)
  printf "throwaway-test-keyring" | XDG_DATA_HOME="$WITH_KEYRING_DATA" XDG_RUNTIME_DIR="$WITH_KEYRING_RUN" \
    gnome-keyring-daemon --unlock --components=secrets >/dev/null
  exec "$@"
' with-keyring "$@"
