"""What every face detector returns, and the box arithmetic they share.

A detector is any callable ``gray or BGR image -> list[Detection]``
(:class:`FaceDetector`); :class:`facekeypoints.KeypointDetector` takes one by
name (:func:`facekeypoints.detection.make_detector`) or as the callable itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Detection:
    """A face box (x0, y0, x1, y1) in image pixels, a confidence, the roll
    angle (radians) at which it was found (non-zero for rotated retries), and, from
    detectors that give them, five points (eye centres, nose tip, mouth corners; subject's
    left first, :data:`facekeypoints.detection.learned.FIVE_POINTS`).

    ``score`` is a 0-1 probability that the box holds a face (None: the detector gives none),
    calibrated per detector so that it means the same for every one (Haar:
    :func:`facekeypoints.detection.haar.haar_confidence`). :class:`facekeypoints.Face` carries it."""

    box: tuple[float, float, float, float]
    score: float | None = None
    angle: float = 0.0
    points: tuple[tuple[float, float], ...] | None = None


class FaceDetector(Protocol):
    def __call__(self, gray: np.ndarray) -> list[Detection]: ...


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(dets: list[Detection], iou: float = 0.3) -> list[Detection]:
    """Greedy non-maximum suppression; also drops boxes mostly inside a kept one."""
    order = sorted(dets, key=lambda d: -(d.score if d.score is not None else 0.0))
    kept: list[Detection] = []
    for d in order:
        ok = True
        for k in kept:
            if box_iou(d.box, k.box) > iou:
                ok = False
                break
            # a box whose centre lies inside a kept box of similar size is a duplicate
            cx, cy = (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2
            if k.box[0] < cx < k.box[2] and k.box[1] < cy < k.box[3]:
                ok = False
                break
        if ok:
            kept.append(d)
    return kept


