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
    return np.stack([pts[list(IBUG68_TO_15[n])].mean(axis=0) for n in KEYPOINT_NAMES]).astype(np.float32)


def flip_keypoints(keypoints: np.ndarray, width: float) -> np.ndarray:
    """Mirror keypoints for an image flipped horizontally, swapping left/right names.

    ``width`` is the image width in the pixel-centre convention: x -> width - 1 - x.
    Works on (..., 15, 2) arrays; NaNs (missing points) stay NaN.
    """
    kp = np.asarray(keypoints)
    out = kp[..., FLIP_PERMUTATION, :].copy()
    out[..., 0] = (width - 1) - out[..., 0]
    return out


def flip_mask(mask: np.ndarray) -> np.ndarray:
    """Permute a (..., 15) presence mask the same way as :func:`flip_keypoints`."""
    return np.asarray(mask)[..., FLIP_PERMUTATION].copy()
