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

    Closed form (complex numbers): exact for two points, deterministic for more,
    unlike RANSAC-based ``cv2.estimateAffinePartial2D``.
    """
    s = np.asarray(src, np.float64)
    d = np.asarray(dst, np.float64)
    sc = s[:, 0] + 1j * s[:, 1]
    dc = d[:, 0] + 1j * d[:, 1]
    ms, md = sc.mean(), dc.mean()
    den = float(np.sum(np.abs(sc - ms) ** 2))
    a = complex(np.sum(np.conj(sc - ms) * (dc - md)) / den) if den > 0 else 0j
    t = md - a * ms
    return np.array([[a.real, -a.imag, t.real], [a.imag, a.real, t.imag]])


def matrix_angle(m: np.ndarray) -> float:
    """Rotation (radians, image y down) of a similarity matrix."""
    return math.atan2(float(m[1, 0]), float(m[0, 0]))


def matrix_scale(m: np.ndarray) -> float:
    return math.hypot(float(m[0, 0]), float(m[1, 0]))


def apply_matrix(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.asarray(pts, np.float64)
    return p @ m[:, :2].T + m[:, 2]


def roi_of(m: np.ndarray, w: int, h: int, shape: tuple[int, ...], pad: int = 1) -> tuple[int, int, int, int] | None:
    """Image box (x0, y0, x1, y1), clipped, covered by a w x h source mapped by m; None if off-frame."""
    corners = apply_matrix(m, np.array([[-0.5, -0.5], [w - 0.5, -0.5], [-0.5, h - 0.5], [w - 0.5, h - 0.5]]))
    if not np.isfinite(corners).all():
        return None
    x0 = max(int(math.floor(corners[:, 0].min())) - pad, 0)
    y0 = max(int(math.floor(corners[:, 1].min())) - pad, 0)
    x1 = min(int(math.ceil(corners[:, 0].max())) + pad + 1, shape[1])
    y1 = min(int(math.ceil(corners[:, 1].max())) + pad + 1, shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def blend_premultiplied(roi: np.ndarray, layer: np.ndarray) -> None:
    """In place: roi (h, w, 3) uint8 <- layer (h, w, 4) premultiplied BGRA "over" roi.

    Integer arithmetic: where alpha is 0 the pixel comes back bit-identical.
    """
    a = layer[:, :, 3:4].astype(np.uint16)
    out = roi.astype(np.uint16) * (255 - a) + layer[:, :, :3].astype(np.uint16) * 255 + 127
    out //= 255
    np.minimum(out, 255, out=out)
    roi[...] = out


def blend_mask(roi: np.ndarray, other: np.ndarray, mask: np.ndarray) -> None:
    """In place: roi <- other where mask (uint8 0..255) is set, mixed at its edges."""
    a = mask[:, :, None].astype(np.uint16)
    out = roi.astype(np.uint16) * (255 - a) + other.astype(np.uint16) * a + 127
    out //= 255
    roi[...] = out
