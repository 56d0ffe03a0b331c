"""facekeypoints as a peer runner: one ``KeypointDetector`` configuration from one source tree.

    PYTHONPATH=/work/detect/src python fk_runner.py '{"detector": "learned"}'
    PYTHONPATH=/work/api68/src python fk_runner.py '{"points": 68}'
    python fk_runner.py --probe          # what this tree offers (detectors, 68 points, model hashes)
    python fk_runner.py --split DATA 0.15 0   # this tree's LFPW / MTFL validation files (its own loaders)

Running our own rows as subprocesses, like the peers, lets one benchmark run measure several
helpers' trees side by side (a tree with a learned detector, another with a 68-point model)
with the same timing and the same IPC. Speaks bench/peers/protocol.py; each face carries the 15
keypoints as ``points`` and, when the model has them, the 68 iBUG landmarks as ``points68``.
``det_ms`` is the pipeline's own call of its face detector (on the grey image it made; the
face verifier, crops and keypoints excluded), timed from inside the same ``detect``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from protocol import serve


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12] if path.is_file() else "-"


def _git(folder: Path) -> dict:
    """The tree's commit: from git, or from the GIT_COMMIT file bench/snapshot_tree.sh leaves in an export."""
    stamp = folder / "GIT_COMMIT"
    if stamp.is_file():
        return {"git": stamp.read_text().strip(), "src_uncommitted": "none (a git archive export)"}
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--", "src"], capture_output=True,
                               text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"git": head or "?", "src_uncommitted": sorted(ln[3:] for ln in dirty.splitlines() if ln.strip()) or "none"}


def probe() -> dict:
    """What the facekeypoints on sys.path offers, without loading any model."""
    import facekeypoints as fk
    from facekeypoints import detection

    pkg = Path(fk.__file__).resolve().parent
    params = inspect.signature(fk.KeypointDetector.__init__).parameters
    models = pkg / "models"
    return {"src": str(pkg.parent), "version": getattr(fk, "__version__", "?"), "detectors": sorted(detection.DETECTORS),
            "default_detector": getattr(detection, "DEFAULT_DETECTOR", "haar"),
            "points_param": "points" in params,
            "points68": "points" in params and (models / "points68.onnx").is_file(),
            "model_sha256": _sha(models / "default.onnx"), "points68_sha256": _sha(models / "points68.onnx"),
            "detector_sha256": _sha(models / "detector.onnx"), **_git(pkg.parent.parent)}


def split(data: Path, val_fraction: float, seed: int) -> dict:
    """The validation files (relative to ``data``) of LFPW and MTFL by this tree's own loaders and
    ``split_by_group``; None for a set this tree has no loader for."""
    from facekeypoints.training.data import landmarks as lm

    out: dict = {}
    for name, arg in (("lfpw", data / "lfpw"), ("mtfl", data / "mtfl" / "landmarks.txt")):
        loader = getattr(lm, f"load_{name}", None)
        if loader is None:
            out[name] = None
            continue
        _, val = lm.split_by_group(loader(arg), val_fraction, seed)
        out[name] = sorted(str(Path(s.image).resolve().relative_to(data.resolve())) for s in val)
    return out


def main() -> None:
    if sys.argv[1:] == ["--probe"]:
        print(json.dumps(probe()))
        return
    if sys.argv[1:2] == ["--split"]:
        print(json.dumps(split(Path(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))))
        return
    import facekeypoints as fk
    from facekeypoints.schema import from_ibug68

    cfg = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    det = fk.KeypointDetector(threads=1, **cfg)
    detector, last = det.detector, {"det_ms": 0.0}

    def timed_detector(gray: np.ndarray) -> list:
        t0 = time.perf_counter()
        out = detector(gray)
        last["det_ms"] = (time.perf_counter() - t0) * 1000.0
        return out

    det.detector = timed_detector  # the pipeline's own call, timed from inside

    def process(bgr: np.ndarray) -> list[dict]:
        out = []
        for f in det.detect(bgr):
            kp = np.asarray(f.keypoints, np.float64)
            p68 = kp if kp.shape == (68, 2) else getattr(f, "landmarks", None)
            p15 = getattr(f, "points15", None)
            p15 = np.asarray(p15 if p15 is not None else (kp if kp.shape == (15, 2) else from_ibug68(kp)), np.float64)
            face = {"box": [round(float(v), 2) for v in f.box], "score": None if f.score is None else float(f.score),
                    "points": np.round(p15, 3).tolist()}
            if p68 is not None:
                face["points68"] = np.round(np.asarray(p68, np.float64), 3).tolist()
            out.append(face)
        return out

    info = probe()
    serve("facekeypoints", {"config": cfg, "detector": getattr(detector, "__name__", type(detector).__name__), **info},
          process, lambda: dict(last))


if __name__ == "__main__":
    main()
