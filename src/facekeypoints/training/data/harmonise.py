"""Bring one data set's landmark convention in line with another's before training.

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

import numpy as np

from ...schema import KEYPOINT_NAMES, LEFT_EYE_OUTER, NUM_KEYPOINTS, RIGHT_EYE_OUTER

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
}


def eye_frame(kps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vector along the eye line (image x for an upright face), its perpendicular
    (image y) and the outer-eye-corner distance, per face of (N, 15, 2) keypoints."""
    e = kps[:, LEFT_EYE_OUTER] - kps[:, RIGHT_EYE_OUTER]
    d = np.linalg.norm(e, axis=1)
    u = e / np.maximum(d, 1e-6)[:, None]
    v = np.stack([-u[:, 1], u[:, 0]], axis=1)
    return u, v, d


def to_eye_units(delta: np.ndarray, kps: np.ndarray) -> np.ndarray:
    """(N, 15, 2) displacements in pixels -> eye-frame units of each face's labels."""
    u, v, d = eye_frame(kps)
    along = (delta * u[:, None, :]).sum(-1) / d[:, None]
    across = (delta * v[:, None, :]).sum(-1) / d[:, None]
    return np.stack([along, across], axis=-1)


def apply_offsets(kps: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Move (N, 15, 2) keypoints by (15, 2) eye-frame offsets; missing points stay missing."""
    u, v, d = eye_frame(kps)
    shift = d[:, None, None] * (offsets[None, :, :1] * u[:, None, :] + offsets[None, :, 1:] * v[:, None, :])
    return (kps + shift).astype(kps.dtype)


def harmonise(faces, offsets: dict[str, np.ndarray] | None = None):
    """A copy of a FaceSet whose sources listed in ``offsets`` (default :data:`OFFSETS`)
    follow the reference convention; faces without both outer eye corners are left as they are."""
    offsets = OFFSETS if offsets is None else offsets
    kps = faces.keypoints.copy()
    src = np.asarray(faces.sources)
    for name, off in offsets.items():
        idx = np.flatnonzero((src == name) & faces.mask[:, LEFT_EYE_OUTER] & faces.mask[:, RIGHT_EYE_OUTER])
        if len(idx):
            kps[idx] = apply_offsets(kps[idx], np.asarray(off, np.float32))
    return type(faces)(faces.contexts, kps, faces.mask, faces.groups, faces.sources)


def label_gap(pred: np.ndarray, kps: np.ndarray, msk: np.ndarray, sources, reference: str = "300w") -> dict[str, np.ndarray]:
    """Per source, the (15, 2) eye-frame offsets that move its labels onto ``reference``'s
    convention: its mean residual (predictions minus labels, in each face's eye frame) minus
    the reference set's. Kaggle rows carry no convention of their own and are skipped."""
    ok = msk[:, LEFT_EYE_OUTER] & msk[:, RIGHT_EYE_OUTER]
    res = to_eye_units(np.nan_to_num(pred - kps), np.nan_to_num(kps))
    res[~msk] = np.nan
    res[~ok] = np.nan
    src = np.asarray(sources)

    def mean(name: str) -> np.ndarray:
        r = res[src == name]
        return np.nanmean(r, axis=0) if len(r) else np.zeros((NUM_KEYPOINTS, 2))

    ref = mean(reference)
    return {s: (mean(s) - ref).astype(np.float32) for s in sorted(set(src)) if s not in (reference, "kaggle")}


def format_offsets(offsets: dict[str, np.ndarray]) -> str:
    lines = []
    for s, off in offsets.items():
        lines.append(f"{s}:")
        lines += [f"  {n:26s} {a:+.4f} {b:+.4f}" for n, (a, b) in zip(KEYPOINT_NAMES, off)]
    return "\n".join(lines)

