"""The face verifier: a tiny CNN that says whether a detector's box holds a face.

It scores a box framed the way the keypoint model frames faces, so a Haar false
alarm (a dog's paw, a shirt pocket) can be dropped before any keypoints are made.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np

from ..runtime import as_batch, onnx_session


def default_verifier_path() -> Path:
    """The face verifier that ships inside the package."""
    return Path(str(resources.files("facekeypoints") / "models" / "verifier.onnx"))


class OnnxFaceVerifier:
    """(N, 96, 96) uint8 crops -> (N,) probability that each is a face, framed the keypoint way."""

    def __init__(self, path: str | os.PathLike | None = None, threads: int | None = None, verify: bool = True) -> None:
        self.path = Path(path) if path is not None else default_verifier_path()
        self.session, self.meta = onnx_session(self.path, threads, verify)
        self.input_name = self.session.get_inputs()[0].name

    def predict(self, crops: np.ndarray) -> np.ndarray:
        x = as_batch(crops)
        if len(x) == 0:
            return np.zeros((0,), np.float32)
        return np.asarray(self.session.run(None, {self.input_name: x})[0], np.float32).reshape(len(x))
