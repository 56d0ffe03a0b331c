"""Snapchat-like face filters placed by the 15 keypoints.

    from facekeypoints.filters import apply_filter, FILTERS
    out = apply_filter(image, faces, "sunglasses,moustache")

Each sprite filter is artwork drawn procedurally in face units (see
:mod:`.placement`), rendered once, and placed per face by a similarity
transform fitted from its anchors to the keypoints; only the sprite's
bounding box on the frame is touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ..errors import FkpError
from ..imageio import to_bgr8
from ..schema import to_points15
from .catalog import FILTERS, BigEyesFilter, Filter, Part, PixelateFilter, SpriteFilter, composite

#: Faces whose keypoints span fewer pixels than this are left alone (nothing visible to draw).
MIN_FACE_PX = 4.0

__all__ = ["MIN_FACE_PX", "FILTERS", "BigEyesFilter", "Filter", "Part", "PixelateFilter", "SpriteFilter", "apply_filter",
           "check_filter_names", "composite", "placement"]


def check_filter_names(names: str | Iterable[str]) -> list[str]:
    """Normalise "a,b" or ["a", "b"] to a list of known filter names; FkpError otherwise."""
    items = names.split(",") if isinstance(names, str) else list(names)
    out = []
    for n in items:
        if not isinstance(n, str):
            raise FkpError(f"filter names must be strings, got {n!r}")
        n = n.strip()
        if not n:
            continue
        if n not in FILTERS:
            raise FkpError(f"unknown filter {n!r}; choose from {', '.join(FILTERS)}")
        out.append(n)
    if not out:
        raise FkpError(f"no filter given; choose from {', '.join(FILTERS)}")
    return out


def _keypoints(face: object) -> np.ndarray:
    kp = np.asarray(getattr(face, "keypoints", face), dtype=np.float64)
    if kp.shape == (68, 2):  # a 68-landmark face: filters are placed by its 15 keypoints
        kp = to_points15(kp).astype(np.float64)
    if kp.shape != (15, 2):
        raise FkpError(f"a face needs (15, 2) keypoints, got shape {kp.shape}")
    return kp


def _size(kp: np.ndarray) -> float:
    span = kp.max(axis=0) - kp.min(axis=0)
    return float(max(span[0], span[1]))


def _get(flt: str | Filter) -> Filter:
    return FILTERS[check_filter_names([flt])[0]] if isinstance(flt, str) else flt


def placement(flt: str | Filter, face: object) -> np.ndarray:
    """2x3 matrix mapping the filter's (first) sprite pixels to image pixels for a face
    (a Face or a (15, 2) keypoint array); face units for the pixel effects."""
    return _get(flt).placement(_keypoints(face))


def apply_filter(image: np.ndarray, faces: Sequence[object], names: str | Iterable[str]) -> np.ndarray:
    """A filtered copy of a BGR image: every face gets each filter, in the given order.

    Larger faces are drawn last (on top). Faces with non-finite keypoints or smaller
    than ``MIN_FACE_PX`` are skipped.
    """
    chosen = [FILTERS[n] for n in check_filter_names(names)]
    image = np.asarray(image)
    out = image.copy() if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 else to_bgr8(image)
    kps = [k for k in (_keypoints(f) for f in faces) if np.isfinite(k).all() and _size(k) >= MIN_FACE_PX]
    kps.sort(key=_size)
    for flt in chosen:
        for kp in kps:
            flt.draw(out, kp)
    return out
