"""The one home of the keypoint schema.

Names follow the Kaggle *Facial Keypoints Detection* column order. "Left" is
always the subject's own left, which appears on the image's right side.
Everything else (loaders, augmentation, metrics, drawing, filters, exports)
reads the schema from here.
"""

from __future__ import annotations

import numpy as np

KEYPOINT_NAMES: tuple[str, ...] = (
    "left_eye_center",
    "right_eye_center",
    "left_eye_inner_corner",
    "left_eye_outer_corner",
    "right_eye_inner_corner",
    "right_eye_outer_corner",
    "left_eyebrow_inner_end",
    "left_eyebrow_outer_end",
    "right_eyebrow_inner_end",
    "right_eyebrow_outer_end",
    "nose_tip",
    "mouth_left_corner",
    "mouth_right_corner",
    "mouth_center_top_lip",
    "mouth_center_bottom_lip",
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)
INDEX: dict[str, int] = {name: i for i, name in enumerate(KEYPOINT_NAMES)}

#: The 30 Kaggle columns, ``<name>_x, <name>_y`` per keypoint, in file order.
KAGGLE_COLUMNS: tuple[str, ...] = tuple(f"{n}_{a}" for n in KEYPOINT_NAMES for a in ("x", "y"))

#: Side of each keypoint: "left", "right" or "center" (subject's side).
SIDES: tuple[str, ...] = tuple(
    "left" if n.startswith("left") or n == "mouth_left_corner"
    else "right" if n.startswith("right") or n == "mouth_right_corner"
    else "center"
    for n in KEYPOINT_NAMES
)


def _mirror_name(name: str) -> str:
    if "left" in name:
        return name.replace("left", "right")
    if "right" in name:
        return name.replace("right", "left")
    return name


#: Left/right pairs as index pairs, e.g. (left_eye_center, right_eye_center).
FLIP_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (i, INDEX[_mirror_name(n)]) for i, n in enumerate(KEYPOINT_NAMES) if SIDES[i] == "left"
)

#: Permutation that maps keypoint i to its mirror image after a horizontal flip.
FLIP_PERMUTATION: np.ndarray = np.array([INDEX[_mirror_name(n)] for n in KEYPOINT_NAMES], dtype=np.int64)

#: 0-based iBUG 68-point indices averaged to make each of the 15 keypoints.
IBUG68_TO_15: dict[str, tuple[int, ...]] = {
    "left_eye_center": (42, 43, 44, 45, 46, 47),
    "right_eye_center": (36, 37, 38, 39, 40, 41),
    "left_eye_inner_corner": (42,),
    "left_eye_outer_corner": (45,),
    "right_eye_inner_corner": (39,),
    "right_eye_outer_corner": (36,),
    "left_eyebrow_inner_end": (22,),
    "left_eyebrow_outer_end": (26,),
    "right_eyebrow_inner_end": (21,),
    "right_eyebrow_outer_end": (17,),
    "nose_tip": (30,),
    "mouth_left_corner": (54,),
    "mouth_right_corner": (48,),
    "mouth_center_top_lip": (51,),
    "mouth_center_bottom_lip": (57,),
}

#: The 68 iBUG landmarks (300-W, dlib's shape predictor), 0-based, by region. "right" and
#: "left" are the subject's own, as everywhere: the right eye (36-41) is on the image's left.
IBUG68_REGIONS: dict[str, tuple[int, ...]] = {
    "jaw": tuple(range(0, 17)),
    "right_eyebrow": tuple(range(17, 22)),
    "left_eyebrow": tuple(range(22, 27)),
    "nose_bridge": tuple(range(27, 31)),
    "nose_base": tuple(range(31, 36)),
    "right_eye": tuple(range(36, 42)),
    "left_eye": tuple(range(42, 48)),
    "outer_lip": tuple(range(48, 60)),
    "inner_lip": tuple(range(60, 68)),
}
NUM_LANDMARKS = 68
#: CSV columns of the 68 landmarks, ``p<i>_x, p<i>_y`` in iBUG order (after the 15 keypoints' columns).
LANDMARK_COLUMNS: tuple[str, ...] = tuple(f"p{i}_{a}" for i in range(NUM_LANDMARKS) for a in ("x", "y"))
#: Region name of each of the 68 points.
IBUG68_REGION_OF: tuple[str, ...] = tuple(r for i in range(NUM_LANDMARKS)
                                          for r, idx in IBUG68_REGIONS.items() if i in idx)
#: Regions drawn as closed contours (the others are open polylines).
IBUG68_CLOSED: frozenset[str] = frozenset({"right_eye", "left_eye", "outer_lip", "inner_lip"})

_IBUG68_PAIRS: tuple[tuple[int, int], ...] = (
    *((i, 16 - i) for i in range(8)),                      # jaw, 8 is the chin
    (17, 26), (18, 25), (19, 24), (20, 23), (21, 22),      # brows
    (31, 35), (32, 34),                                    # nose base; bridge 27-30 and 33 on the midline
    (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),  # eyes, corners and lids
    (48, 54), (49, 53), (50, 52), (55, 59), (56, 58),      # outer lip; 51 and 57 on the midline
    (60, 64), (61, 63), (65, 67),                          # inner lip; 62 and 66 on the midline
)
#: Permutation that maps landmark i to its mirror image after a horizontal flip.
IBUG68_FLIP_PERMUTATION: np.ndarray = np.arange(NUM_LANDMARKS, dtype=np.int64)
for _a, _b in _IBUG68_PAIRS:
    IBUG68_FLIP_PERMUTATION[_a], IBUG68_FLIP_PERMUTATION[_b] = _b, _a

#: (15, 68) weights: the 15 keypoints as a fixed linear function of the 68 landmarks
#: (``IBUG68_TO_15_MATRIX @ points68``), so a 68-point model yields the 15 exactly.
IBUG68_TO_15_MATRIX: np.ndarray = np.zeros((NUM_KEYPOINTS, NUM_LANDMARKS), np.float32)
for _k, _name in enumerate(KEYPOINT_NAMES):
    IBUG68_TO_15_MATRIX[_k, list(IBUG68_TO_15[_name])] = 1.0 / len(IBUG68_TO_15[_name])

#: (68, 15) least-norm right inverse of :data:`IBUG68_TO_15_MATRIX`: the smallest change of the 68 that
#: moves their derived 15 by a given amount (:func:`conform_landmarks`).
_CONFORM: np.ndarray = np.linalg.pinv(IBUG68_TO_15_MATRIX.astype(np.float64))


#: Indices used by the metrics: NME divides by the outer-eye-corner distance.
LEFT_EYE_OUTER = INDEX["left_eye_outer_corner"]
RIGHT_EYE_OUTER = INDEX["right_eye_outer_corner"]
LEFT_EYE = INDEX["left_eye_center"]
RIGHT_EYE = INDEX["right_eye_center"]

#: Lines drawn between keypoints for a readable overlay.
SKELETON: tuple[tuple[int, int], ...] = (
    (INDEX["left_eye_inner_corner"], INDEX["left_eye_outer_corner"]),
    (INDEX["right_eye_inner_corner"], INDEX["right_eye_outer_corner"]),
    (INDEX["left_eyebrow_inner_end"], INDEX["left_eyebrow_outer_end"]),
    (INDEX["right_eyebrow_inner_end"], INDEX["right_eyebrow_outer_end"]),
    (INDEX["mouth_left_corner"], INDEX["mouth_center_top_lip"]),
    (INDEX["mouth_center_top_lip"], INDEX["mouth_right_corner"]),
    (INDEX["mouth_right_corner"], INDEX["mouth_center_bottom_lip"]),
    (INDEX["mouth_center_bottom_lip"], INDEX["mouth_left_corner"]),
)


def from_ibug68(points68: np.ndarray) -> np.ndarray:
    """Map (68, 2) iBUG landmarks to the (15, 2) schema (float32)."""
    pts = np.asarray(points68, dtype=np.float64)
    if pts.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {pts.shape}")
    return (IBUG68_TO_15_MATRIX.astype(np.float64) @ pts).astype(np.float32)


def flip_keypoints(keypoints: np.ndarray, width: float) -> np.ndarray:
    """Mirror keypoints for an image flipped horizontally, swapping left/right names.

    ``width`` is the image width in the pixel-centre convention: x -> width - 1 - x.
    Works on (..., 15, 2) and (..., 68, 2) arrays; NaNs (missing points) stay NaN.
    """
    kp = np.asarray(keypoints)
    out = kp[..., flip_permutation(kp.shape[-2]), :].copy()
    out[..., 0] = (width - 1) - out[..., 0]
    return out


def flip_mask(mask: np.ndarray) -> np.ndarray:
    """Permute a (..., 15) or (..., 68) presence mask the same way as :func:`flip_keypoints`."""
    m = np.asarray(mask)
    return m[..., flip_permutation(m.shape[-1])].copy()


def flip_permutation(n: int) -> np.ndarray:
    """The left/right mirror permutation for the 15 keypoints or the 68 landmarks."""
    if n == NUM_KEYPOINTS:
        return FLIP_PERMUTATION
    if n == NUM_LANDMARKS:
        return IBUG68_FLIP_PERMUTATION
    raise ValueError(f"no flip permutation for {n} points (15 or 68)")


#: Subject's side of each of the 68 landmarks ("left", "right" or "center" on the midline), for
#: drawing in the same colours as the 15. Point 0 (jaw) and 48 (mouth corner) are on the subject's right.
_IBUG68_RIGHT = frozenset((*range(0, 8), *range(17, 22), 31, 32, *range(36, 42), 48, 49, 50, 58, 59, 60, 61, 67))
IBUG68_SIDES: tuple[str, ...] = tuple(
    "center" if IBUG68_FLIP_PERMUTATION[i] == i else "right" if i in _IBUG68_RIGHT else "left"
    for i in range(NUM_LANDMARKS)
)


def to_points15(points: np.ndarray) -> np.ndarray:
    """(..., 15, 2) keypoints as they are (same array, same dtype), or (..., 68, 2) landmarks
    mapped to the 15 (float32).

    The one place downstream code (crop frames, filters, CSV) gets the 15 named points from a
    face of either kind."""
    pts = np.asarray(points)
    if pts.shape[-2:] == (NUM_KEYPOINTS, 2):
        return pts
    if pts.shape[-2:] == (NUM_LANDMARKS, 2):
        return np.einsum("kl,...ld->...kd", IBUG68_TO_15_MATRIX.astype(np.float64),
                         pts.astype(np.float64)).astype(np.float32)
    raise ValueError(f"expected (..., 15, 2) keypoints or (..., 68, 2) landmarks, got {pts.shape}")


def conform_landmarks(landmarks: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """(..., 68, 2) landmarks moved by the least amount (sum of squares) that makes their derived 15
    (:func:`to_points15`) equal (..., 15, 2) ``keypoints``: the 13 landmarks that are keypoints (eye
    corners, brow ends, nose tip, four mouth points) take their positions, each eye's four lid points
    shift together so that the eye's mean is its centre, and the other 47 stay.

    This lets a 68-point face carry a more accurate 15-point model's keypoints without two sets
    of coordinates that disagree (``KeypointDetector(points=68)``)."""
    lm = np.asarray(landmarks, np.float64)
    gap = np.asarray(keypoints, np.float64) - to_points15(lm).astype(np.float64)
    return (lm + np.einsum("lk,...kd->...ld", _CONFORM, gap)).astype(np.float32)
