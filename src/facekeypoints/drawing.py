"""Overlay drawing: keypoints coloured by the subject's side, scaled to the face; 68 landmarks
as contour lines per region (closed around the eyes and lips) under their points."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .schema import IBUG68_CLOSED, IBUG68_REGIONS, IBUG68_SIDES, NUM_LANDMARKS, SIDES, SKELETON

#: BGR colours. The subject's left appears on the image's right.
SIDE_COLORS = {"left": (60, 60, 255), "right": (255, 160, 40), "center": (60, 220, 60)}
BOX_COLOR = (0, 255, 255)


def draw(image: np.ndarray, faces: Sequence, boxes: bool = True, labels: bool = False) -> np.ndarray:
    """Annotated copy of a BGR image: box, keypoints (red = subject's left,
    blue = subject's right, green = centre line) and a light skeleton; a face with 68 landmarks
    gets its contours (jaw, brows, nose, eyes, lips) and smaller points instead."""
    out = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    for face in faces:
        kp = np.asarray(face.keypoints, np.float64)
        dense = len(kp) == NUM_LANDMARKS
        size = max(float(np.ptp(kp[:, 0])), float(np.ptp(kp[:, 1])), 8.0)
        r = max(1, int(round(size / (80 if dense else 40))))
        t = max(1, int(round(size / 120)))
        if boxes:
            x0, y0, x1, y1 = (int(round(v)) for v in face.box)
            cv2.rectangle(out, (x0, y0), (x1, y1), BOX_COLOR, t, cv2.LINE_AA)
            if getattr(face, "id", None) is not None:
                cv2.putText(out, f"#{face.id}", (x0, max(y0 - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, max(0.4, t * 0.5),
                            BOX_COLOR, t, cv2.LINE_AA)
        if dense:
            _contours(out, kp, t)
        else:
            for a, b in SKELETON:
                cv2.line(out, _pt(kp[a]), _pt(kp[b]), (200, 200, 200), t, cv2.LINE_AA, shift=4)
        sides = IBUG68_SIDES if dense else SIDES
        for i, p in enumerate(kp):
            cv2.circle(out, _pt(p), r * 16, SIDE_COLORS[sides[i]], -1, cv2.LINE_AA, shift=4)
            if labels:
                cv2.putText(out, str(i), (int(p[0]) + r + 1, int(p[1])), cv2.FONT_HERSHEY_SIMPLEX, 0.3,
                            SIDE_COLORS[sides[i]], 1, cv2.LINE_AA)
    return out


def _contours(out: np.ndarray, kp: np.ndarray, thickness: int) -> None:
    """The 68 landmarks' regions as polylines, closed for :data:`~facekeypoints.schema.IBUG68_CLOSED`."""
    for region, idx in IBUG68_REGIONS.items():
        pts = np.round(kp[list(idx)] * 16).astype(np.int32)
        cv2.polylines(out, [pts], region in IBUG68_CLOSED, (200, 200, 200), thickness, cv2.LINE_AA, shift=4)


def _pt(p: np.ndarray) -> tuple[int, int]:
    """Sub-pixel point for OpenCV's shift=4 drawing."""
    return int(round(float(p[0]) * 16)), int(round(float(p[1]) * 16))
