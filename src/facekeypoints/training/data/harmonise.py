"""Bring one data set's landmark convention in line with another's before training.

MTFL's 5 points (pupil-like eye centres, nose tip, mouth corners) get the same treatment
with offsets measured by a model that never saw MTFL (see :data:`OFFSETS`); LFPW is part
of 300-W (same annotation) and is not moved.

The Udacity labels (model-made, per ../shared/data/README.md) place some of the 15 points
differently from 300-W's human annotators: the inner eyebrow ends sit about 7.5% of the
eye distance further out, the nose tip 4.5% lower, and every point about 2% to the image's
right. Trained on both as they are, the model learns a compromise that is wrong for
both; flip augmentation even turns a one-sided shift into noise it cannot learn. So the
training set moves each Udacity point by a fixed offset, measured in the face's own eye
frame, onto the 300-W convention. Evaluation keeps every data set's labels untouched.

The offsets are measured on *training* faces only (:func:`label_gap`, run by
``fkp evaluate --split train --label-gap``): a model's
mean residual on one set minus its mean residual on the reference set is the mean label
difference between the two, as far as that model can tell. A model that has fitted both
sets' labels sees less of it, hence several rounds (see :data:`OFFSETS`).
"""

from __future__ import annotations

import warnings

import numpy as np

from ...schema import (
    IBUG68_TO_15,
    INDEX,
    KEYPOINT_NAMES,
    LEFT_EYE,
    LEFT_EYE_OUTER,
    NUM_KEYPOINTS,
    NUM_LANDMARKS,
    RIGHT_EYE,
    RIGHT_EYE_OUTER,
)

# (15, 2) per source: (along the eye line towards the subject's left, perpendicular
# towards the chin), in outer-eye-corner distances; KEYPOINT_NAMES order. Measured by
# ``fkp evaluate --data ../shared/data --split train --label-gap --model MODEL`` (training
# split, seed 0), in rounds. A model trained on both conventions sits between them, so the
# first round (with the un-harmonised 2026-11-29 model) saw only about half of the gap (norm
# 0.074); a model trained on those labels leans further to 300-W and saw more (norm 0.130),
# and one trained on those saw more again: the figures below (third round, norm 0.155, cosine
# 0.995 with the second; the steps shrink, 0.056 then 0.025, so the rounds are converging).
OFFSETS: dict[str, np.ndarray] = {
    "udacity": np.array([
        [-0.0268, -0.0185],  # left_eye_center
        [-0.0106, -0.0091],  # right_eye_center
        [-0.0344, -0.0022],  # left_eye_inner_corner
        [-0.0258, -0.0130],  # left_eye_outer_corner
        [-0.0039, +0.0033],  # right_eye_inner_corner
        [-0.0174, +0.0001],  # right_eye_outer_corner
        [-0.0932, +0.0096],  # left_eyebrow_inner_end
        [-0.0196, +0.0163],  # left_eyebrow_outer_end
        [+0.0581, +0.0196],  # right_eyebrow_inner_end
        [-0.0178, +0.0325],  # right_eyebrow_outer_end
        [-0.0205, -0.0455],  # nose_tip
        [-0.0114, -0.0290],  # mouth_left_corner
        [-0.0201, -0.0229],  # mouth_right_corner
        [-0.0256, -0.0082],  # mouth_center_top_lip
        [-0.0253, -0.0154],  # mouth_center_bottom_lip
    ], np.float32),
    # MTFL (5 points; the ten it lacks stay 0): one round with the 15-point model shipped on
    # 2026-11-30, which never saw MTFL, so nothing of MTFL's convention is in its predictions
    # (``fkp evaluate --data ../shared/data/300w ../shared/data/lfpw ../shared/data/mtfl
    # --split train --label-gap``, 6,516 MTFL and 1,014 300-W training faces). The pupil-like
    # eye centres sit 0.8-0.9% of the eye-corner distance higher than the mean of the six
    # contour points (about 0.15 px of the 80x80 images), the nose tip 2.3% lower (0.45 px);
    # the mean shift along the eye line is under 0.2% (0.03 px). Relative to the model, the
    # MTFL labels sit 0.1-0.3 px to the image's right of its predictions on both sets alike
    # (300-W's by 0.9% of the eye distance too), so that part is the model's, not a
    # convention gap, and is not moved.
    "mtfl": np.array([
        [-0.0065, +0.0086],  # left_eye_center
        [+0.0014, +0.0081],  # right_eye_center
        [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0],  # corners and brows: not labelled
        [+0.0043, -0.0229],  # nose_tip
        [+0.0030, -0.0027],  # mouth_left_corner
        [-0.0089, -0.0005],  # mouth_right_corner
        [0, 0], [0, 0],  # lip centres: not labelled
    ], np.float32),
}


#: Outer-eye-corner distance per eye-centre distance on the 300-W + LFPW faces (mean 1.386,
#: std 0.037): a set without eye corners (MTFL) measures its offsets in the eye-centre
#: frame scaled by this, so that they are in the same units as everyone else's.
OUTER_PER_CENTRE = 1.386


def eye_frame(kps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vector along the eye line (image x for an upright face), its perpendicular
    (image y) and the outer-eye-corner distance, per face of (N, 15, 2) keypoints. Faces
    without both outer corners (MTFL) use the eye centres, the distance scaled by
    :data:`OUTER_PER_CENTRE`."""
    e = kps[:, LEFT_EYE_OUTER] - kps[:, RIGHT_EYE_OUTER]
    c = (kps[:, LEFT_EYE] - kps[:, RIGHT_EYE]) * OUTER_PER_CENTRE
    e = np.where(np.isfinite(e).all(axis=1, keepdims=True), e, c)
    d = np.linalg.norm(e, axis=1)
    u = e / np.maximum(d, 1e-6)[:, None]
    v = np.stack([-u[:, 1], u[:, 0]], axis=1)
    return u, v, d


def has_eye_frame(kps: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Faces whose eye frame is defined: both outer eye corners, or else both eye centres."""
    return (mask[:, LEFT_EYE_OUTER] & mask[:, RIGHT_EYE_OUTER]) | (mask[:, LEFT_EYE] & mask[:, RIGHT_EYE])


def to_eye_units(delta: np.ndarray, kps: np.ndarray) -> np.ndarray:
    """(N, K, 2) displacements in pixels -> eye-frame units of each face's (N, 15, 2) labels."""
    u, v, d = eye_frame(kps)
    along = (delta * u[:, None, :]).sum(-1) / d[:, None]
    across = (delta * v[:, None, :]).sum(-1) / d[:, None]
    return np.stack([along, across], axis=-1)


def apply_offsets(kps: np.ndarray, offsets: np.ndarray, points: np.ndarray | None = None) -> np.ndarray:
    """Move (N, 15, 2) keypoints by (15, 2) eye-frame offsets (or, given ``points`` (N, K, 2),
    move those by (K, 2) offsets in the keypoints' eye frame); missing points stay missing."""
    u, v, d = eye_frame(kps)
    target = kps if points is None else points
    shift = d[:, None, None] * (offsets[None, :, :1] * u[:, None, :] + offsets[None, :, 1:] * v[:, None, :])
    return (target + shift).astype(target.dtype)


def offsets68(off15: np.ndarray) -> np.ndarray:
    """(68, 2) landmark offsets that agree with (15, 2) keypoint offsets: a landmark that is
    one of the 15 moves by that keypoint's offset, the four eyelid points of each eye by
    what makes the mean of the eye's six points move by the eye centre's offset, and the
    rest (jaw, nose bridge and base, the other lip points) by the mean of the 15 (the
    common shift). So ``IBUG68_TO_15_MATRIX @ moved68`` equals the moved 15 exactly."""
    off15 = np.asarray(off15, np.float32)
    out = np.repeat(off15.mean(axis=0, keepdims=True), NUM_LANDMARKS, axis=0)
    for k, name in enumerate(KEYPOINT_NAMES):
        idx = IBUG68_TO_15[name]
        if len(idx) == 1:
            out[idx[0]] = off15[k]
    for centre, corners, lids in (("left_eye_center", ("left_eye_inner_corner", "left_eye_outer_corner"), (43, 44, 46, 47)),
                                  ("right_eye_center", ("right_eye_inner_corner", "right_eye_outer_corner"), (37, 38, 40, 41))):
        c = off15[INDEX[centre]]
        a, b = (off15[INDEX[n]] for n in corners)
        out[list(lids)] = (6 * c - a - b) / 4
    return out


def harmonise(faces, offsets: dict[str, np.ndarray] | None = None):
    """A copy of a FaceSet whose sources listed in ``offsets`` (default :data:`OFFSETS`)
    follow the reference convention, the 15 keypoints and (where labelled) the 68 landmarks
    alike; faces without an eye frame (:func:`has_eye_frame`) are left as they are."""
    offsets = OFFSETS if offsets is None else offsets
    kps = faces.keypoints.copy()
    p68 = faces.points68.copy()
    src = np.asarray(faces.sources)
    ok = has_eye_frame(faces.keypoints, faces.mask)
    for name, off in offsets.items():
        idx = np.flatnonzero((src == name) & ok)
        if len(idx):
            off = np.asarray(off, np.float32)
            kps[idx] = apply_offsets(faces.keypoints[idx], off)
            p68[idx] = apply_offsets(faces.keypoints[idx], offsets68(off), faces.points68[idx])
    return faces.replace(kps, p68)


def label_gap(pred: np.ndarray, kps: np.ndarray, msk: np.ndarray, sources, reference: str = "300w") -> dict[str, np.ndarray]:
    """Per source, the (15, 2) eye-frame offsets that move its labels onto ``reference``'s
    convention: its mean residual (predictions minus labels, in each face's eye frame) minus
    the reference set's. Kaggle rows carry no convention of their own and are skipped."""
    ok = has_eye_frame(kps, msk)
    with np.errstate(invalid="ignore"):
        res = to_eye_units(np.nan_to_num(pred - kps), kps)
    res[~msk] = np.nan
    res[~ok] = np.nan
    src = np.asarray(sources)

    def mean(name: str) -> np.ndarray:
        r = res[src == name]
        if not len(r):
            return np.full((NUM_KEYPOINTS, 2), np.nan)
        with warnings.catch_warnings():  # a keypoint the set never labels has no mean
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(r, axis=0)

    ref = np.nan_to_num(mean(reference))
    # a keypoint the set never labels (MTFL's ten) gets offset 0
    return {s: np.nan_to_num(mean(s) - ref).astype(np.float32) for s in sorted(set(src)) if s not in (reference, "kaggle")}


def format_offsets(offsets: dict[str, np.ndarray]) -> str:
    lines = []
    for s, off in offsets.items():
        lines.append(f"{s}:")
        lines += [f"  {n:26s} {a:+.4f} {b:+.4f}" for n, (a, b) in zip(KEYPOINT_NAMES, off)]
    return "\n".join(lines)

