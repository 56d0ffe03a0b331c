#!/usr/bin/env bash
# The published benchmark: snapshot what is COMMITTED in the trees, run every set, write docs/.
#
#   bash bench/run_all.sh DETECT_REPO API68_REPO POINTS68_REPO [extra bench_photos.py options]
#   bash bench/run_all.sh /work/detect /work/api68 /work/points68 --jobs 3 --every udacity=2,timing=2
#
# Rows: DETECT_REPO's default / haar / learned detectors; API68_REPO's points=68, with the 68-point
# model POINTS68_REPO commits (else API68_REPO's own); POINTS68_REPO's retrained 15-point model (when
# it differs), run with DETECT_REPO's code; LFPW / MTFL splits from POINTS68_REPO's loaders.
# Peers: bench/setup_peers.sh. The package's own modules (sets, metrics) come from this checkout.
set -euo pipefail
export FKP_BENCH_COMMAND="bash bench/run_all.sh $*"
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
DET="$(bash "$HERE/snapshot_tree.sh" "$1")"
API="$(bash "$HERE/snapshot_tree.sh" "$2")"
P68="$(bash "$HERE/snapshot_tree.sh" "$3")"
shift 3
ARGS=(--tree "$DET" --tree68 "$API" --split-tree "$P68" --model15 "$P68/facekeypoints/models/default.onnx")
if [ -f "$P68/facekeypoints/models/points68.onnx" ]; then
  ARGS+=(--model68 "$P68/facekeypoints/models/points68.onnx")
fi
PYTHONPATH="$ROOT/src" exec python "$HERE/bench_photos.py" "${ARGS[@]}" "$@"
