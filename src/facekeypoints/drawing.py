"""Overlay drawing: keypoints coloured by the subject's side, scaled to the face."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .schema import SIDES, SKELETON

#: BGR colours. The subject's left appears on the image's right.
SIDE_COLORS = {"left": (60, 60, 255), "right": (255, 160, 40), "center": (60, 220, 60)}
BOX_COLOR = (0, 255, 255)


def draw(image: np.ndarray, faces: Sequence, boxes: bool = True, labels: bool = False) -> np.ndarray:
    """Annotated copy of a BGR image: box, keypoints (red = subject's left,
    blue = subject's right, green = centre line) and a light skeleton."""
    out = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    for face in faces:
        kp = np.asarray(face.keypoints, np.float64)
        size = max(float(np.ptp(kp[:, 0])), float(np.ptp(kp[:, 1])), 8.0)
        r = max(1, int(round(size / 40)))
        t = max(1, int(round(size / 120)))
        if boxes:
            x0, y0, x1, y1 = (int(round(v)) for v in face.box)
            cv2.rectangle(out, (x0, y0), (x1, y1), BOX_COLOR, t, cv2.LINE_AA)
            if getattr(face, "id", None) is not None:
                cv2.putText(out, f"#{face.id}", (x0, max(y0 - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, max(0.4, t * 0.5),
                            BOX_COLOR, t, cv2.LINE_AA)
        for a, b in SKELETON:
            cv2.line(out, _pt(kp[a]), _pt(kp[b]), (200, 200, 200), t, cv2.LINE_AA, shift=4)
        for i, p in enumerate(kp):
            cv2.circle(out, _pt(p), r * 16, SIDE_COLORS[SIDES[i]], -1, cv2.LINE_AA, shift=4)
            if labels:
                cv2.putText(out, str(i), (int(p[0]) + r + 1, int(p[1])), cv2.FONT_HERSHEY_SIMPLEX, 0.3,
                            SIDE_COLORS[SIDES[i]], 1, cv2.LINE_AA)
    return out


def _pt(p: np.ndarray) -> tuple[int, int]:
    """Sub-pixel point for OpenCV's shift=4 drawing."""
    return int(round(float(p[0]) * 16)), int(round(float(p[1]) * 16))
