"""Grids of face crops with keypoints (labels, predictions, or both)."""

from __future__ import annotations

import math
import os

import cv2
import numpy as np

from ..drawing import SIDE_COLORS
from ..schema import SIDES


def grid(crops: np.ndarray, keypoints: np.ndarray | None = None, predictions: np.ndarray | None = None,
         cols: int = 8, scale: int = 2) -> np.ndarray:
    """Tile (N, 96, 96) crops into one BGR image. Labels are drawn as rings, predictions
    as dots, coloured by the subject's side (red = left, blue = right, green = centre)."""
    n = len(crops)
    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    s = crops.shape[1] * scale
    out = np.full((rows * s, cols * s, 3), 255, np.uint8)
    for i in range(n):
        tile = cv2.resize(cv2.cvtColor(crops[i], cv2.COLOR_GRAY2BGR), (s, s), interpolation=cv2.INTER_LINEAR)
        for pts, filled in ((keypoints, False), (predictions, True)):
            if pts is None:
                continue
            for j, (x, y) in enumerate(pts[i]):
                if np.isfinite(x) and np.isfinite(y):
                    c = (int(round((x + 0.5) * scale * 16 - 8)), int(round((y + 0.5) * scale * 16 - 8)))
                    cv2.circle(tile, c, (2 if filled else 4) * 16, SIDE_COLORS[SIDES[j]], -1 if filled else 1,
                               cv2.LINE_AA, shift=4)
        r, c = divmod(i, cols)
        out[r * s:(r + 1) * s, c * s:(c + 1) * s] = tile
    return out


def save_grid(path: str | os.PathLike, image: np.ndarray) -> None:
    from ..imageio import write_image_atomic

    write_image_atomic(path, image)
