#!/usr/bin/env bash
# Sets up this machine (stage 0) and runs every test stage in order: lint, Rust, page and
# interop, the real window, Linux packaging and updates, the Windows installer, benchmark
# and soak. Each stage is a script of its own under scripts/ci/ and runs alone too
# (`bash scripts/ci/rust.sh`). A failing stage
# does not hide the later ones: all run, each is timed, and the summary says which failed
# (the exit status is 1 if any did). STAGES="lint rust" runs only those.
set -uo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

bash scripts/ci/setup.sh || { echo "==> host setup failed: nothing can be tested" >&2; exit 1; }

stages=(${STAGES:-lint rust page window packaging windows bench})
results=()
failed=0
started_all=$SECONDS
for stage in "${stages[@]}"; do
  echo
  echo "################ stage: $stage ################"
  started=$SECONDS
  if bash "scripts/ci/$stage.sh"; then
    results+=("$(printf '%-10s passed  %5d s' "$stage" $((SECONDS - started)))")
  else
    results+=("$(printf '%-10s FAILED  %5d s' "$stage" $((SECONDS - started)))")
    failed=1
  fi
done

echo
echo "==> the test run left the working tree as it found it"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  dirty="$(git -C "$ROOT" status --porcelain)"
  if [ -n "$dirty" ]; then
    echo "the tests changed tracked or unignored files:" >&2
    echo "$dirty" >&2
    results+=("tree      FAILED  (changed by the tests)")
    failed=1
  fi
fi

echo
echo "################ summary ($((SECONDS - started_all)) s after setup) ################"
printf '%s\n' "${results[@]}"
if [ "$failed" -ne 0 ]; then
  echo "==> some stages failed" >&2
  exit 1
fi
echo "==> all tests passed"
