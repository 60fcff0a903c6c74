#!/usr/bin/env bash
# Installs what building, running and testing need on Debian (12 or newer). Idempotent:
# packages already present are not fetched again. Run as root or with sudo available.
set -euo pipefail

need_apt=(
  build-essential pkg-config libssl-dev curl
  libwebkit2gtk-4.1-dev librsvg2-dev libayatana-appindicator3-dev   # the desktop app
  xvfb xauth webkit2gtk-driver                                      # the real-window tests
  chromium                                                           # the page tests
  redis-server                                                       # multi-node tests
)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)

missing=()
for pkg in "${need_apt[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "==> installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "Rust is missing: install it with rustup (https://rustup.rs), then run this again." >&2
  exit 1
fi
if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
if ! command -v tauri-driver >/dev/null 2>&1; then
  echo "==> installing tauri-driver (WebDriver for the real app window)"
  cargo install tauri-driver --locked --version '^2' -q
fi
