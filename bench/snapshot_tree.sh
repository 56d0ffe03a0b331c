#!/usr/bin/env bash
# Export what is COMMITTED in a facekeypoints checkout (not its work in progress) for the benchmark.
#
#   bash bench/snapshot_tree.sh /work/detect [OUT_DIR]   # prints OUT_DIR/<name>-<commit>/src
#
# `git archive HEAD src` into a fresh folder, with GIT_COMMIT (hash, date, subject) beside src/,
# which peers/fk_runner.py reports as the tree's commit. Reads the checkout, never writes to it.
set -euo pipefail
REPO="$1"
OUT="${2:-/tmp/fkp-trees}"
HEAD="$(git -C "$REPO" rev-parse --short HEAD)"
DEST="$OUT/$(basename "$REPO")-$HEAD"
if [ ! -d "$DEST/src" ]; then
  mkdir -p "$DEST"
  git -C "$REPO" archive HEAD src | tar -x -C "$DEST"
  git -C "$REPO" log -1 --format='%h (%cd, %s)' --date=format:'%Y-%m-%d %H:%M' HEAD | cut -c1-160 > "$DEST/GIT_COMMIT"
fi
echo "$DEST/src"
