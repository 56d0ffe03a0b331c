"""dlib peer: HOG frontal face detector (upsample 1) + the 68-point shape predictor.

Run with the peers' venv python (see bench/README.md); speaks bench/peers/protocol.py.
``face_recognition_models`` is located without importing it: its ``__init__`` needs the
removed ``pkg_resources``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time

import cv2
import dlib
import numpy as np
from protocol import serve

UPSAMPLE = int(os.environ.get("FKP_DLIB_UPSAMPLE", "1"))


def predictor_path() -> str:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("dlib_runner: pip install face_recognition_models (see bench/README.md)")
    for loc in spec.submodule_search_locations:
        p = os.path.join(loc, "models", "shape_predictor_68_face_landmarks.dat")
        if os.path.isfile(p):
            return p
    sys.exit("dlib_runner: shape_predictor_68_face_landmarks.dat not found in face_recognition_models")


def main() -> None:
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(predictor_path())

    last = {"det_ms": 0.0}

    def process(bgr: np.ndarray) -> list[dict]:
        t0 = time.perf_counter()
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        rects, scores, _ = detector.run(rgb, UPSAMPLE, 0.0)
        last["det_ms"] = (time.perf_counter() - t0) * 1000.0  # colour conversion + HOG
        faces = []
        for r, s in zip(rects, scores):
            shape = predictor(rgb, r)
            pts = [[float(p.x), float(p.y)] for p in shape.parts()]
            faces.append({"box": [r.left(), r.top(), r.right() + 1, r.bottom() + 1], "score": float(s), "points": pts})
        return faces

    serve("dlib", {"dlib": dlib.__version__, "upsample": UPSAMPLE}, process, lambda: dict(last))


if __name__ == "__main__":
    main()
