"""Line protocol shared by the peer runners (run inside the peers' own venv, not the package's).

Each runner is a long-lived subprocess so the benchmark can interleave systems image by
image (fair timing on a noisy, shared machine). One JSON object per line:

* the runner first prints ``{"ready": true, "name": ..., "versions": {...}}``;
* request  ``{"path": "/abs/photo.jpg"}`` -> reply ``{"ms": float, "size": [w, h], "faces": [...]}``;
  each face is ``{"box": [x0, y0, x1, y1], "score": float | null, "points": [[x, y], ...]}``
  with the library's raw landmarks in image pixels (0-based, pixel centres at integers)
  (detector-only peers: their own few points, the two eye centres first; facekeypoints
  also sends ``"points68"`` when its model has them);
* a pipeline that can time its face detector alone adds ``"det_ms"`` (that share of ``ms``,
  measured inside the same call); detector-only peers report ``ms`` only;
* request ``{"quit": true}`` (or end of input) ends the runner.

Only the library's work on an already-decoded BGR image is timed (colour conversion included);
reading and decoding the file is not.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable

# One thread for everyone, set before the libraries start their pools.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

cv2.setNumThreads(1)

Process = Callable[[np.ndarray], list[dict]]


def _send(obj: dict, out) -> None:
    out.write(json.dumps(obj, separators=(",", ":")) + "\n")
    out.flush()


def serve(name: str, versions: dict, process: Process, extras: Callable[[], dict] | None = None) -> None:
    """Answer requests on stdin until ``quit``; protocol on stdout, anything else to stderr.

    ``extras``: called after each ``process``; its dict joins the reply (``det_ms``)."""
    out = sys.stdout
    sys.stdout = sys.stderr  # keep library chatter off the protocol channel
    _send({"ready": True, "name": name, "versions": versions}, out)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if req.get("quit"):
            break
        img = cv2.imread(req["path"], cv2.IMREAD_COLOR)
        if img is None:
            _send({"error": f"cannot read {req['path']}"}, out)
            continue
        t0 = time.perf_counter()
        faces = process(img)
        ms = (time.perf_counter() - t0) * 1000.0
        _send({"ms": ms, "size": [img.shape[1], img.shape[0]], "faces": faces, **(extras() if extras else {})}, out)
