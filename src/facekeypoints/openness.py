"""How open the eyes and the mouth are, from the 68 iBUG landmarks.

* **Eye aspect ratio** (Soukupova & Cech, 2016), per eye: the mean of the two lid-to-lid
  distances over the corner-to-corner distance, ``(|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|)``
  on the eye's six contour points. About 0.25-0.35 for an open eye, under 0.15 for a closed
  one; it is scale- and roll-free, so a blink shows as a dip whatever the face's size.
* **Mouth aspect ratio**: the mean of the three inner-lip gaps (61-67, 62-66, 63-65) over
  the inner mouth width (60-64): 0 for closed lips, about 0.3 for talking, 0.6+ for a yawn.

The 15 keypoints hold no eyelids and no inner lip, so openness needs a 68-point face.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .schema import IBUG68_REGIONS, NUM_LANDMARKS

_RIGHT_EYE = np.array(IBUG68_REGIONS["right_eye"])  # 36-41, on the image's left
_LEFT_EYE = np.array(IBUG68_REGIONS["left_eye"])  # 42-47
_INNER_LIP = np.array(IBUG68_REGIONS["inner_lip"])  # 60-67
#: Point pairs measured: right eye lids 37-41, 38-40, corners 36-39; the same for the left eye;
#: inner lip gaps 61-67, 62-66, 63-65 and corners 60-64.
_PAIRS = np.array([(37, 41), (38, 40), (36, 39), (43, 47), (44, 46), (42, 45),
                   (61, 67), (62, 66), (63, 65), (60, 64)])


class Openness(NamedTuple):
    """Eye aspect ratio of each eye (subject's left and right) and the mouth aspect ratio."""

    left_eye: float
    right_eye: float
    mouth: float


def eye_aspect_ratio(eye: np.ndarray) -> float:
    """EAR of one eye's six iBUG contour points (outer or inner corner first, then the upper lid,
    the other corner and the lower lid, as in 36-41 and 42-47)."""
    e = np.asarray(eye, np.float64)
    v = math.hypot(*(e[1] - e[5])) + math.hypot(*(e[2] - e[4]))
    return v / (2.0 * max(math.hypot(*(e[0] - e[3])), 1e-9))


def mouth_aspect_ratio(inner_lip: np.ndarray) -> float:
    """MAR of the eight inner-lip points (60-67): mean of the three gaps over the width."""
    m = np.asarray(inner_lip, np.float64)
    v = math.hypot(*(m[1] - m[7])) + math.hypot(*(m[2] - m[6])) + math.hypot(*(m[3] - m[5]))
    return v / (3.0 * max(math.hypot(*(m[0] - m[4])), 1e-9))


def openness(landmarks: np.ndarray) -> Openness:
    """Eye and mouth aspect ratios of a face's (68, 2) landmarks (NaN where they are not finite)."""
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {lm.shape}")
    # every distance in one vectorised step (the per-eye functions above spell out the same sums)
    d = lm[_PAIRS[:, 0]] - lm[_PAIRS[:, 1]]
    n = np.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2)
    if not np.isfinite(n).all():
        return Openness(math.nan, math.nan, math.nan)
    w = np.maximum(n[[2, 5, 9]], 1e-9)
    return Openness(float((n[3] + n[4]) / (2 * w[1])), float((n[0] + n[1]) / (2 * w[0])),
                    float((n[6] + n[7] + n[8]) / (3 * w[2])))


def openness_dict(o: Openness, digits: int = 4) -> dict[str, float | None]:
    """``{"left_eye", "right_eye", "mouth"}`` for JSON (None where not finite)."""
    return {k: round(float(v), digits) if math.isfinite(v) else None for k, v in o._asdict().items()}
