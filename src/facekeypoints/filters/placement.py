"""Where a sprite goes on a face: a mean face template, similarity fits, ROI compositing.

Sprites are drawn in *face units*: the subject's eye midpoint is the origin, the
inter-ocular distance (IOD) is 1, x points to the image's right (towards the
subject's LEFT eye) and y points down. A sprite's anchors are template points
expressed in its own pixels; a least-squares similarity (scale, rotation,
translation) from those anchors to the detected keypoints places it. Only the
sprite's bounding box on the frame is warped and blended, so the cost scales
with the sprite's size on screen, not with the frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import cv2
import numpy as np

from ..schema import INDEX

#: Median 300-W face (1,207 faces, eyes aligned, IOD = 1), mirrored to be symmetric.
#: "left" is the subject's left, on the image's right (positive x).
TEMPLATE: dict[str, tuple[float, float]] = {
    "left_eye_center": (0.50, 0.00),
    "right_eye_center": (-0.50, 0.00),
    "left_eye_inner_corner": (0.29, 0.03),
    "left_eye_outer_corner": (0.70, 0.00),
    "right_eye_inner_corner": (-0.29, 0.03),
    "right_eye_outer_corner": (-0.70, 0.00),
    "left_eyebrow_inner_end": (0.185, -0.275),
    "left_eyebrow_outer_end": (0.93, -0.19),
    "right_eyebrow_inner_end": (-0.185, -0.275),
    "right_eyebrow_outer_end": (-0.93, -0.19),
    "nose_tip": (0.00, 0.55),
    "mouth_left_corner": (0.44, 1.04),
    "mouth_right_corner": (-0.44, 1.04),
    "mouth_center_top_lip": (0.00, 0.964),
    "mouth_center_bottom_lip": (0.00, 1.275),
}

#: Points derived from keypoints (the template gets them by the same formula).
DERIVED: dict[str, Callable[[Callable[[str], np.ndarray]], np.ndarray]] = {
    # between the nose tip and the top lip: where a moustache sits
    "philtrum": lambda p: p("nose_tip") + 0.6 * (p("mouth_center_top_lip") - p("nose_tip")),
    "eye_mid": lambda p: (p("left_eye_center") + p("right_eye_center")) / 2,
}

EYES = ("left_eye_center", "right_eye_center", "left_eye_inner_corner", "left_eye_outer_corner",
        "right_eye_inner_corner", "right_eye_outer_corner")
BROWS = ("left_eyebrow_inner_end", "left_eyebrow_outer_end", "right_eyebrow_inner_end", "right_eyebrow_outer_end")
EYE_CENTRES = ("left_eye_center", "right_eye_center")


@lru_cache(maxsize=256)
def _indices(names: tuple[str, ...]) -> np.ndarray | None:
    """Keypoint indices for names, or None if some are derived points."""
    return np.array([INDEX[n] for n in names]) if all(n in INDEX for n in names) else None


def face_points(kp: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """(N, 2) float64 face points for names (keypoints or derived)."""
    idx = _indices(names)
    if idx is not None:
        return np.asarray(kp, np.float64)[idx]
    return np.array([face_point(kp, n) for n in names])


@lru_cache(maxsize=256)
def template_points(names: tuple[str, ...]) -> np.ndarray:
    pts = np.array([template_point(n) for n in names])
    pts.setflags(write=False)
    return pts


@lru_cache(maxsize=256)
def _fit_plan(names: tuple[str, ...]) -> tuple[np.ndarray, list[float]]:
    """Precomputed least-squares similarity from the template points of names:
    [a, b] = K @ points.ravel() and the template centroid (see :func:`fit_similarity`)."""
    t = template_points(names)
    ms = t.mean(axis=0).tolist()
    sc = t - ms
    den = float((sc * sc).sum())
    k = np.zeros((2, 2 * len(names)))
    k[0, 0::2], k[0, 1::2] = sc[:, 0] / den, sc[:, 1] / den
    k[1, 0::2], k[1, 1::2] = -sc[:, 1] / den, sc[:, 0] / den
    return k, ms


def face_matrix(kp: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Face units -> image pixels: similarity fitted from the template to these face points."""
    k, ms = _fit_plan(names)
    d = face_points(kp, names)
    a, b = (k @ d.ravel()).tolist()
    mx, my = (d.sum(axis=0) / len(d)).tolist()
    return np.array([[a, -b, mx - a * ms[0] + b * ms[1]], [b, a, my - b * ms[0] - a * ms[1]]])


def face_point(kp: np.ndarray, name: str) -> np.ndarray:
    """A keypoint or derived point of a (15, 2) keypoint array, as float64 (2,)."""
    if name in INDEX:
        return np.asarray(kp[INDEX[name]], dtype=np.float64)
    return DERIVED[name](lambda n: face_point(kp, n))


def template_point(name: str) -> np.ndarray:
    if name in TEMPLATE:
        return np.array(TEMPLATE[name], dtype=np.float64)
    return DERIVED[name](template_point)


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (no reflection) mapping src points onto dst: 2x3 matrix.

    Closed form (Umeyama without reflection): exact for two points, deterministic for
    more, unlike RANSAC-based ``cv2.estimateAffinePartial2D``.
    """
    s = np.asarray(src, np.float64)
    d = np.asarray(dst, np.float64)
    ms, md = s.mean(axis=0), d.mean(axis=0)
    sc, dc = s - ms, d - md
    den = float((sc * sc).sum())
    if den <= 0:
        return np.array([[0.0, 0.0, md[0]], [0.0, 0.0, md[1]]])
    a = float((sc * dc).sum()) / den
    b = float((sc[:, 0] * dc[:, 1] - sc[:, 1] * dc[:, 0]).sum()) / den
    r = np.array([[a, -b], [b, a]])
    return np.hstack([r, (md - r @ ms)[:, None]])


def compose(m: np.ndarray, n: np.ndarray) -> np.ndarray:
    """2x3 affine m after n."""
    (a, b, c), (d, e, f) = m.tolist()
    (p, q, r), (s, t, u) = n.tolist()
    return np.array([[a * p + b * s, a * q + b * t, a * r + b * u + c], [d * p + e * s, d * q + e * t, d * r + e * u + f]])


def matrix_scale(m: np.ndarray) -> float:
    return math.hypot(float(m[0, 0]), float(m[1, 0]))


def apply_matrix(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.asarray(pts, np.float64)
    return p @ m[:, :2].T + m[:, 2]


def roi_of(m: np.ndarray, w: int, h: int, shape: tuple[int, ...], pad: int = 1) -> tuple[int, int, int, int] | None:
    """Image box (x0, y0, x1, y1), clipped, covered by a w x h source mapped by m; None if off-frame."""
    (a, b, tx), (c, d, ty) = m.tolist()
    xs = [a * x + b * y + tx for x, y in ((-0.5, -0.5), (w - 0.5, -0.5), (-0.5, h - 0.5), (w - 0.5, h - 0.5))]
    ys = [c * x + d * y + ty for x, y in ((-0.5, -0.5), (w - 0.5, -0.5), (-0.5, h - 0.5), (w - 0.5, h - 0.5))]
    if not all(math.isfinite(v) for v in xs + ys):
        return None
    x0 = max(math.floor(min(xs)) - pad, 0)
    y0 = max(math.floor(min(ys)) - pad, 0)
    x1 = min(math.ceil(max(xs)) + pad + 1, shape[1])
    y1 = min(math.ceil(max(ys)) + pad + 1, shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def blend_premultiplied(roi: np.ndarray, layer: np.ndarray) -> None:
    """In place: roi (h, w, 3) uint8 <- layer (h, w, 4) premultiplied BGRA "over" roi.

    roi * (255 - alpha) / 255 + colour, with OpenCV's vectorised uint8 arithmetic;
    where alpha is 0 (and so colour is 0) the pixel comes back bit-identical.
    """
    inv = cv2.cvtColor(cv2.bitwise_not(cv2.extractChannel(layer, 3)), cv2.COLOR_GRAY2BGR)
    roi[...] = cv2.add(cv2.multiply(roi, inv, scale=1 / 255), cv2.cvtColor(layer, cv2.COLOR_BGRA2BGR))


def blend_mask(roi: np.ndarray, other: np.ndarray, mask: np.ndarray) -> None:
    """In place: roi <- other where mask (uint8 0..255) is set, mixed at its edges;
    bit-identical where the mask is 0."""
    m3 = cv2.cvtColor(mask, cv2.COLOR_GRAY2BGR)
    roi[...] = cv2.add(cv2.multiply(roi, cv2.bitwise_not(m3), scale=1 / 255), cv2.multiply(other, m3, scale=1 / 255))
