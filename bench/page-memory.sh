#!/usr/bin/env bash
# The dashboard page alone in WebKitGTK (MiniBrowser, no app, no IPC: the UI tests' Tauri
# stand-in fed by bench/page-memory/feed.js), and the web process's PSS as updates go in.
# Separates what the page's own work costs from what the app's IPC path adds (compare with
# the per-process figures of bench/app-run.sh).
#   bash bench/page-memory.sh [seconds=240] [rate=200] [products=500]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECONDS_TO_RUN="${1:-240}"; RATE="${2:-200}"; PRODUCTS="${3:-500}"
MINIBROWSER="${MINIBROWSER:-/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser}"
[ -x "$MINIBROWSER" ] || { echo "page-memory: $MINIBROWSER not found (package libwebkit2gtk-4.1-0)" >&2; exit 2; }
[[ "$SECONDS_TO_RUN" =~ ^[0-9]+$ && "$RATE" =~ ^[0-9]+$ && "$PRODUCTS" =~ ^[0-9]+$ ]] \
  || { echo "page-memory: seconds, rate and products must be whole numbers" >&2; exit 2; }
[ "$SECONDS_TO_RUN" -le 3600 ] || { echo "page-memory: at most 3600 seconds" >&2; exit 2; }

WORK="$(mktemp -d)"
BROWSER_GROUP=""
cleanup() {
  # The browser runs in its own process group (xvfb-run, Xvfb, MiniBrowser, WebKit helpers).
  [ -n "$BROWSER_GROUP" ] && kill -TERM -- "-$BROWSER_GROUP" 2>/dev/null
  kill $(jobs -p) 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/site" "$WORK/home"
cp "$ROOT"/ui/* "$WORK/site/"
cp "$ROOT/tests/node/tauri-standin.js" "$ROOT/bench/page-memory/feed.js" "$WORK/site/"
# The stand-in answers with the app's own samples (tests/node/page-samples.json).
{ printf 'window.__pageSamples = '; cat "$ROOT/tests/node/page-samples.json"; printf ';\n'; } > "$WORK/site/samples.js"
sed 's|<script type="module" src="main.js"></script>|<script src="samples.js"></script><script src="tauri-standin.js"></script><script src="feed.js"></script><script type="module" src="main.js"></script>|' \
  "$ROOT/ui/index.html" > "$WORK/site/index.html"
grep -q feed.js "$WORK/site/index.html" || { echo "page-memory: ui/index.html no longer loads main.js as expected" >&2; exit 1; }

# An ephemeral port, read back from the server's first line.
python3 -u -m http.server 0 --bind 127.0.0.1 -d "$WORK/site" > "$WORK/http.log" 2>&1 &
for _ in $(seq 50); do grep -q "port" "$WORK/http.log" 2>/dev/null && break; sleep 0.1; done
PORT="$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$WORK/http.log" | head -1)"
[ -n "$PORT" ] || { echo "page-memory: the page server did not start" >&2; exit 1; }

export HOME="$WORK/home" XDG_CACHE_HOME="$WORK/home/cache" XDG_DATA_HOME="$WORK/home/data"
export WEBKIT_DISABLE_COMPOSITING_MODE=1 # the app renders without it too (src-tauri/src/webview.rs)
URL="http://127.0.0.1:$PORT/index.html#rate=$RATE&products=$PRODUCTS&n=$((RATE * SECONDS_TO_RUN))"
setsid xvfb-run -a -s "-screen 0 1280x800x24" "$MINIBROWSER" --enable-write-console-messages-to-stdout=true "$URL" \
  > "$WORK/browser.log" 2>&1 &
BROWSER_GROUP=$!

web_pss_kib() {
  local total=0 p v
  for p in $(pgrep -x WebKitWebProces -u "$(id -u)" 2>/dev/null); do
    # only ours: the web process whose environment has our HOME
    tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "HOME=$WORK/home" || continue
    v="$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null)"
    total=$((total + ${v:-0}))
  done
  echo "$total"
}
sent() { tr -d '\0' < "$WORK/browser.log" | sed -n 's/.*CONSOLE LOG sent \([0-9]*\).*/\1/p' | tail -1; }

for _ in $(seq 300); do [ -n "$(sent)" ] && break; sleep 0.1; done
[ -n "$(sent)" ] || { echo "page-memory: the page did not start feeding (see $WORK/browser.log)" >&2; tr -d '\0' < "$WORK/browser.log" | tail -5 >&2; exit 1; }
echo "page alone in WebKitGTK: $RATE updates/s over $PRODUCTS products, $SECONDS_TO_RUN s"
echo "| seconds | updates | web process PSS MiB |"
echo "|---|---|---|"
first_pss=""; first_sent=""
for t in $(seq 10 10 "$SECONDS_TO_RUN"); do
  sleep 10
  pss="$(web_pss_kib)"; n="$(sent)"
  echo "| $t | ${n:-0} | $(awk -v k="$pss" 'BEGIN{printf "%.1f", k/1024}') |"
  if [ -z "$first_pss" ]; then first_pss="$pss"; first_sent="${n:-0}"; fi
done
awk -v a="$first_pss" -v b="$pss" -v x="$first_sent" -v y="${n:-0}" \
  'BEGIN{ if (y > x) printf "growth after the first sample: %.2f MiB per 1,000 updates\n", (b-a)/1024/((y-x)/1000) }'
