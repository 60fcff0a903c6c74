#!/usr/bin/env bash
# The crates we carry patched (patches/*, see each PATCH.md), made visible and kept honest:
# - each folder's `upstream.diff` must be exactly its change against the crates.io release
#   it names (name and version from its Cargo.toml), file by file, over the files the folder
#   holds (files dropped from the copy, such as benches, are not part of the diff);
# - cargo must use every `[patch.crates-io]` entry (it only warns "patch ... was not used"
#   and builds the upstream crate when a version drifts), and Cargo.lock must name no
#   registry source for a patched crate's version.
# `--write` regenerates every upstream.diff from the tree (after an intended change).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

write=false
[ "${1:-}" = "--write" ] && write=true

# The pristine sources of `name` `version`, from cargo's registry (fetched when missing).
pristine() {
  local name="$1" version="$2" dir
  dir="$(ls -d "$HOME"/.cargo/registry/src/*/"$name-$version" 2>/dev/null | head -1 || true)"
  if [ -z "$dir" ]; then
    local tmp
    tmp="$(mktemp -d)"
    mkdir -p "$tmp/src"
    : >"$tmp/src/lib.rs"
    printf '[package]\nname = "pristine-fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n%s = "=%s"\n' \
      "$name" "$version" >"$tmp/Cargo.toml"
    (cd "$tmp" && cargo fetch -q) >&2
    rm -rf "$tmp"
    dir="$(ls -d "$HOME"/.cargo/registry/src/*/"$name-$version" | head -1)"
  fi
  echo "$dir"
}

failed=0
for folder in patches/*/; do
  folder="${folder%/}"
  [ -f "$folder/PATCH.md" ] || { echo "$folder: no PATCH.md saying what is changed and why" >&2; failed=1; continue; }
  name="$(sed -n 's/^name = "\(.*\)"$/\1/p' "$folder/Cargo.toml" | head -1)"
  version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$folder/Cargo.toml" | head -1)"
  upstream="$(pristine "$name" "$version")"
  diff_now="$(mktemp)"
  (
    cd "$folder"
    find . -type f ! -name PATCH.md ! -name upstream.diff | sed 's|^\./||' | LC_ALL=C sort | while read -r file; do
      diff -uN --label "a/$file" --label "b/$file" "$upstream/$file" "$file" || true
    done
  ) >"$diff_now"
  changed="$(grep -c '^[+-][^+-]' "$diff_now" || true)"
  if $write; then
    cp "$diff_now" "$folder/upstream.diff"
    echo "$folder: upstream.diff written ($name $version, $changed changed lines)"
  elif [ ! -f "$folder/upstream.diff" ]; then
    echo "$folder: no upstream.diff (run scripts/check-patches.sh --write)" >&2
    failed=1
  elif ! cmp -s "$diff_now" "$folder/upstream.diff"; then
    echo "$folder: upstream.diff is not the folder's change against $name $version:" >&2
    diff -u "$folder/upstream.diff" "$diff_now" | head -40 >&2 || true
    echo "(after an intended change: scripts/check-patches.sh --write)" >&2
    failed=1
  else
    echo "$folder: $name $version, $changed changed lines, as upstream.diff says"
  fi
  # Cargo.lock: the package built is this folder (a path package has no `source`).
  locked_source="$(awk -v n="$name" -v v="$version" '
    /^\[\[package\]\]/ { hit = 0 }
    $0 == "name = \"" n "\"" { named = 1; next }
    named && $0 == "version = \"" v "\"" { hit = 1 }
    { named = 0 }
    hit && /^source = / { print; exit }' Cargo.lock)"
  if ! grep -q "^name = \"$name\"\$" Cargo.lock; then
    echo "$folder: Cargo.lock has no $name at all" >&2
    failed=1
  elif [ -n "$locked_source" ]; then
    echo "$folder: Cargo.lock builds $name $version from $locked_source, not from this folder" >&2
    failed=1
  fi
  rm -f "$diff_now"
done

unused="$(cargo metadata --format-version 1 --locked 2>&1 >/dev/null | grep -i -A2 'was not used' || true)"
if [ -n "$unused" ]; then
  echo "cargo does not use a patch (the upstream crate would be built instead):" >&2
  echo "$unused" >&2
  failed=1
fi
exit "$failed"
