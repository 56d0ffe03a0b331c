"""Face crops aligned the way face-recognition models expect them.

The ArcFace / InsightFace convention: a 112 x 112 crop in which the eye centres, the nose
tip and the mouth corners sit as close as a similarity transform (rotation, uniform scale,
shift; no shear, no mirroring) can put them to five fixed template points. The transform is
the least-squares fit of the five points (Umeyama 1991, the estimator InsightFace uses).
Other sizes scale the template. Parts of the crop that fall outside the photo are padded
(black by default), never an error, so faces at the border still give full-size crops.
"""

from __future__ import annotations

import os

import cv2
import numpy as np

from .geometry import shrink_region
from .imageio import as_image
from .schema import INDEX, NUM_KEYPOINTS, NUM_LANDMARKS, to_points15

#: ArcFace's 112 x 112 template, left to right in the crop: the subject's right eye, left eye,
#: nose tip, right mouth corner, left mouth corner (pixel-centre coordinates).
ARCFACE_TEMPLATE = np.array([
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
], dtype=np.float64)
ARCFACE_SIZE = 112
#: Our keypoints matching the template's rows.
TEMPLATE_POINTS: tuple[int, ...] = tuple(INDEX[n] for n in (
    "right_eye_center", "left_eye_center", "nose_tip", "mouth_right_corner", "mouth_left_corner"))


def template(size: int = ARCFACE_SIZE) -> np.ndarray:
    """The five template points for a size x size crop (ArcFace's, scaled)."""
    return ARCFACE_TEMPLATE * (size / ARCFACE_SIZE)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity transform taking points ``src`` onto ``dst`` (Umeyama; no reflection)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[1, 1] = -1
    r = u @ e @ vt
    var = (s**2).sum() / len(src)
    scale = float((sig * np.diag(e)).sum() / var) if var > 0 else 1.0
    a = scale * r
    return np.hstack([a, (md - a @ ms)[:, None]])


def _points15(face) -> np.ndarray:
    kp = np.asarray(getattr(face, "points15", face))
    if kp.shape == (NUM_LANDMARKS, 2):
        kp = to_points15(kp)
    kp = kp.astype(np.float64)
    if kp.shape != (NUM_KEYPOINTS, 2):
        raise ValueError(f"expected a Face or (15, 2) / (68, 2) keypoints, got {kp.shape}")
    return kp


def align_matrix(face, size: int = ARCFACE_SIZE) -> np.ndarray:
    """2x3 transform from photo pixels to the aligned size x size crop of a face
    (a :class:`~facekeypoints.pipeline.Face` or its (15, 2) / (68, 2) keypoints)."""
    if size < 8:
        raise ValueError(f"aligned crops need size >= 8, got {size}")
    kp = _points15(face)
    if not np.isfinite(kp[list(TEMPLATE_POINTS)]).all():
        raise ValueError("the face's eye, nose or mouth keypoints are not finite")
    return similarity(kp[list(TEMPLATE_POINTS)], template(size))


def align(image: np.ndarray | str | os.PathLike, face, size: int = ARCFACE_SIZE,
          border_value: int | tuple[int, ...] = 0) -> np.ndarray:
    """The face warped onto the ArcFace template: a size x size crop (same channels as ``image``;
    a path is read as BGR). Pixels from outside the photo are ``border_value`` (black)."""
    img = as_image(image)
    m = align_matrix(face, size)
    img, m = _shrink(img, m, size)
    if isinstance(border_value, int) and img.ndim == 3:
        border_value = (border_value,) * img.shape[2]
    return cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=border_value)


def _shrink(img: np.ndarray, m: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """For a face much larger than the crop, area-shrink just the region the crop reads first
    (a bilinear warp alone would alias), and fold that resize into the transform."""
    factor = 1.0 / float(np.sqrt(abs(np.linalg.det(m[:, :2]))))  # photo pixels per crop pixel
    if factor <= 1.5:
        return img, m
    inv = cv2.invertAffineTransform(m)
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64) @ inv[:, :2].T + inv[:, 2]
    h, w = img.shape[:2]
    x0, y0 = np.clip(np.floor(corners.min(0)).astype(int) - 2, 0, [w, h])
    x1, y1 = np.clip(np.ceil(corners.max(0)).astype(int) + 3, 0, [w, h])
    if x1 <= x0 or y1 <= y0:
        return img, m
    return shrink_region(img, m, (int(x0), int(y0), int(x1), int(y1)), factor)
