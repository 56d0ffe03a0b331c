"""ONNX-only inference (no torch): the shipped model run with onnxruntime.

Like insightface's runtime, it takes a model file and returns numbers: crops in,
keypoints (in crop pixels) out. The JSON sidecar written by ``fkp export`` is
checked at load: keypoint names, input size and the file's sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import FkpError
from .geometry import CROP_SIZE, Framing
from .schema import KEYPOINT_NAMES, NUM_KEYPOINTS, NUM_LANDMARKS

#: Point counts a keypoint model may give: the 15 named keypoints or the 68 iBUG landmarks.
POINT_COUNTS = (NUM_KEYPOINTS, NUM_LANDMARKS)


def default_model_path(points: int = NUM_KEYPOINTS) -> Path:
    """The model that ships inside the package: ``default.onnx`` (15 points) or ``points68.onnx`` (68)."""
    name = "points68.onnx" if points == NUM_LANDMARKS else "default.onnx"
    return Path(str(resources.files("facekeypoints") / "models" / name))


def check_points(points: object) -> int:
    """``points`` as 15 or 68; anything else is a one-line FkpError."""
    if isinstance(points, bool) or points not in POINT_COUNTS:
        raise FkpError(f"points must be 15 or 68, not {points!r}")
    return int(points)  # type: ignore[call-overload]


def onnx_session(path: Path, threads: int | None, verify: bool) -> tuple[object, dict]:
    """An onnxruntime session for ``path`` and its JSON sidecar (sha256 checked)."""
    import onnxruntime as ort

    if not path.is_file():
        raise FkpError(f"{path}: model file not found")
    data = path.read_bytes()
    meta_path = path.with_suffix(".json")
    meta: dict = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise FkpError(f"{meta_path}: unreadable model metadata ({e})") from None
        if verify and meta.get("sha256") and hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise FkpError(f"{path}: sha256 does not match {meta_path.name} (corrupt or replaced model)")
        if int(meta.get("crop_size", CROP_SIZE)) != CROP_SIZE:
            raise FkpError(f"{path}: model expects {meta['crop_size']}px crops, not {CROP_SIZE}")
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    try:
        sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises several private types
        raise FkpError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0][:120]})") from None
    return sess, meta


def as_batch(crops: np.ndarray) -> np.ndarray:
    crops = np.asarray(crops)
    if crops.ndim == 2:
        crops = crops[None]
    if crops.shape[1:] != (CROP_SIZE, CROP_SIZE):
        raise ValueError(f"crops must be (N, {CROP_SIZE}, {CROP_SIZE}), got {crops.shape}")
    return crops.astype(np.float32)[:, None] * np.float32(1 / 255)


class OnnxKeypointModel:
    """(N, 96, 96) uint8 greyscale crops -> (N, P, 2) float32 points in crop pixels.

    ``points`` (P) comes from the sidecar's ``"points"`` (15 when absent): the 15 named
    keypoints in ``KEYPOINT_NAMES`` order, or the 68 iBUG landmarks in iBUG order. ``path``
    None picks the shipped model for ``points`` (default 15). ``framing``: how its crops sit on a
    face's Kaggle frame (:class:`~facekeypoints.geometry.Framing`, from the sidecar); callers cut
    crops with ``framing.apply(frame)``, as :class:`~facekeypoints.pipeline.KeypointDetector` does."""

    def __init__(self, path: str | os.PathLike | None = None, threads: int | None = None, verify: bool = True,
                 points: int | None = None) -> None:
        self.path = Path(path) if path is not None else default_model_path(check_points(points or NUM_KEYPOINTS))
        self.session, self.meta = onnx_session(self.path, threads, verify)
        shape = self.session.get_outputs()[0].shape
        out_points = shape[1] if len(shape) == 3 and isinstance(shape[1], int) else None
        try:  # the sidecar's count; without one, the graph's output shape (15 if that is symbolic)
            self.points = check_points(int(self.meta.get("points", out_points or NUM_KEYPOINTS)))
        except (FkpError, TypeError, ValueError):
            raise FkpError(f"{self.path}: model gives {self.meta.get('points', out_points)!r} points (15 or 68)") from None
        # a 68-point sidecar names the 15 keypoints its landmarks map to (schema.IBUG68_TO_15_MATRIX)
        if tuple(self.meta.get("keypoints", KEYPOINT_NAMES)) != KEYPOINT_NAMES:
            raise FkpError(f"{self.path}: model's keypoints differ from this version's schema")
        if out_points is not None and out_points != self.points:
            raise FkpError(f"{self.path}: model outputs {out_points} points, its metadata says {self.points}")
        self.input_name = self.session.get_inputs()[0].name
        try:  # where its crops sit on a face's Kaggle frame (geometry.Framing; absent: the Kaggle framing)
            self.framing = Framing.from_meta(self.meta.get("framing"))
        except (AttributeError, TypeError, ValueError):
            raise FkpError(f"{self.path}: unreadable crop framing in its metadata") from None
        if not self.framing.in_range:
            raise FkpError(f"{self.path}: crop framing {self.framing.to_meta()} is outside zoom {Framing.ZOOM_TEXT}, down {Framing.DOWN_TEXT}")

    def expect_points(self, points: int) -> int:
        """``points`` when this model gives that many; a one-line FkpError naming the model otherwise."""
        if self.points != check_points(points):
            raise FkpError(f"{self.path}: model gives {self.points} points, not the {points} asked for"
                           f" (ask for points={self.points}, --points {self.points} in fkp, or use another model)")
        return points

    def predict(self, crops: np.ndarray) -> np.ndarray:
        x = as_batch(crops)
        if len(x) == 0:
            return np.zeros((0, self.points, 2), np.float32)
        y = self.session.run(None, {self.input_name: x})[0]
        return np.asarray(y, np.float32).reshape(len(x), self.points, 2)
