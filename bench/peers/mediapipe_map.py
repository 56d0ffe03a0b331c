"""MediaPipe FaceMesh (478 landmarks, refine_landmarks=True) -> the 15 keypoints.

"Left"/"right" are the subject's own (landmark 33 = subject's right eye outer corner,
263 = subject's left). Each keypoint is the mean of the listed landmarks. The choice
among the anatomical candidates in ``CANDIDATES`` was made once by
``tune_mediapipe_map.py`` on 300-W TRAIN-split faces only (never on the validation
photos the benchmark reports), checked visually on a drawn photo, then frozen here.
"""

from __future__ import annotations

import numpy as np

from facekeypoints.schema import KEYPOINT_NAMES

#: FaceMesh landmark of the subject's right side -> its mirror on the left side.
MIRROR: dict[int, int] = {
    33: 263, 7: 249, 163: 390, 144: 373, 145: 374, 153: 380, 154: 381, 155: 382, 133: 362, 173: 398,
    157: 384, 158: 385, 159: 386, 160: 387, 161: 388, 246: 466, 130: 359, 243: 463, 468: 473,
    55: 285, 107: 336, 65: 295, 66: 296, 46: 276, 70: 300, 156: 383, 124: 353, 52: 282, 53: 283, 63: 293, 105: 334,
    61: 291, 78: 308, 76: 306, 62: 292, 185: 409, 146: 375,
}
MIRROR.update({v: k for k, v in list(MIRROR.items())})

_RIGHT_EYE_6 = (33, 160, 158, 133, 153, 144)  # the iBUG eye-contour positions
_RIGHT_EYE_16 = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)

#: Anatomically plausible landmarks (or groups, averaged) for the subject's right side
#: and the centre line; the left side uses the mirrored landmarks, so the map stays symmetric.
_RIGHT_AND_CENTRE: dict[str, tuple[tuple[int, ...], ...]] = {
    "right_eye_center": ((468,), _RIGHT_EYE_6, _RIGHT_EYE_16, (468,) + _RIGHT_EYE_6),
    "right_eye_inner_corner": ((133,), (155,), (173,), (243,), (133, 155), (133, 173)),
    "right_eye_outer_corner": ((33,), (7,), (246,), (130,), (33, 7), (33, 246)),
    "right_eyebrow_inner_end": ((55,), (107,), (55, 107), (65,), (66,), (55, 65, 107, 66)),
    "right_eyebrow_outer_end": ((46,), (70,), (46, 70), (156,), (124,), (53, 63), (46, 53, 70, 63)),
    "nose_tip": ((1,), (4,), (19,), (5,), (1, 4)),
    "mouth_right_corner": ((61,), (78,), (76,), (62,), (185,), (146,), (61, 76)),
    "mouth_center_top_lip": ((0,), (13,), (12,), (11,), (0, 13), (0, 11)),
    "mouth_center_bottom_lip": ((17,), (14,), (15,), (16,), (17, 14), (17, 16)),
}


def _left(name: str) -> str:
    return name.replace("right", "left")


CANDIDATES: dict[str, tuple[tuple[int, ...], ...]] = dict(_RIGHT_AND_CENTRE)
CANDIDATES.update({_left(n): tuple(tuple(MIRROR[i] for i in c) for c in cs)
                   for n, cs in _RIGHT_AND_CENTRE.items() if "right" in n})

#: The frozen choice: output of ``tune_mediapipe_map.py --faces 250`` (250 train faces, mapped NME 0.0335;
#: the textbook single landmarks 468/473, 133/362, 33/263, 55/285, 46/276, 1, 0, 17 give 0.0436).
FACEMESH_TO_15: dict[str, tuple[int, ...]] = {
    "left_eye_center": (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466),
    "right_eye_center": (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
    "left_eye_inner_corner": (382,),
    "left_eye_outer_corner": (263, 249),
    "right_eye_inner_corner": (155,),
    "right_eye_outer_corner": (33, 7),
    "left_eyebrow_inner_end": (285, 336),
    "left_eyebrow_outer_end": (300,),
    "right_eyebrow_inner_end": (55, 107),
    "right_eyebrow_outer_end": (70,),
    "nose_tip": (4,),
    "mouth_left_corner": (291,),
    "mouth_right_corner": (61,),
    "mouth_center_top_lip": (0, 11),
    "mouth_center_bottom_lip": (17,),
}


def from_facemesh(points: np.ndarray, mapping: dict[str, tuple[int, ...]] = FACEMESH_TO_15) -> np.ndarray:
    """(478, 2) FaceMesh landmarks in pixels -> (15, 2) float32 in ``KEYPOINT_NAMES`` order."""
    pts = np.asarray(points, np.float64)
    if pts.shape[0] < 478:
        raise ValueError(f"expected 478 FaceMesh landmarks (refine_landmarks=True), got {pts.shape[0]}")
    return np.stack([pts[list(mapping[n])].mean(0) for n in KEYPOINT_NAMES]).astype(np.float32)
