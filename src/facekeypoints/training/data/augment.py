"""Augmentation with exact keypoint geometry (numpy + OpenCV, no torch).

Every geometric change is one affine map from the context crop to the 96x96
model input, applied to pixels and keypoints alike; horizontal flips also swap
the left/right keypoint names. Points pushed far outside the crop are masked
rather than trained on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ...geometry import BOX_JITTER_CENTRE, BOX_JITTER_LOG_SIDE, CROP_SIZE, KAGGLE_FRAMING, Frame, Framing, eye_angle
from ...schema import INDEX, flip_keypoints, flip_mask
from .dataset import CONTEXT

_LE, _RE = INDEX["left_eye_center"], INDEX["right_eye_center"]

#: Points further than this fraction of the crop outside it are masked.
OUTSIDE_MARGIN = 0.25


@dataclass(frozen=True)
class AugmentConfig:
    rotate_deg: float = 18.0  # std of roll, clipped at 2.5 std
    scale_log: float = 0.06  # extra std of log scale, on top of the detector jitter
    shift: float = 0.03  # extra std of centre shift, fraction of the side
    detector_jitter: float = 1.0  # multiples of the Haar-vs-keypoint spread (geometry.BOX_JITTER_*)
    flip: float = 0.5
    brightness: float = 0.25  # std of additive brightness (x0.4 of the full range)
    contrast: float = 0.25  # std of log contrast
    gamma: float = 0.25  # std of log gamma
    blur: float = 0.25  # probability of a Gaussian blur
    noise: float = 0.25  # probability of sensor noise
    occlude: float = 0.1  # probability of a grey rectangle
    refine: float = 0.5  # fraction of crops made like the refinement pass's: upright, small error


#: The refinement pass re-crops around the first prediction (upright, centred), so its crops
#: err only by that prediction's error: these spreads (log side, centre / side, roll in
#: degrees) are about what a 5-6% NME first pass leaves.
REFINE_LOG_SIDE = 0.03
REFINE_CENTRE = 0.02
REFINE_ROLL_DEG = 3.0


#: Validation/evaluation: only a detector-like box error, nothing else.
EVAL = AugmentConfig(rotate_deg=0, scale_log=0, shift=0, detector_jitter=1.0, flip=0, brightness=0,
                     contrast=0, gamma=0, blur=0, noise=0, occlude=0, refine=0)

_BASE = Frame((CONTEXT - 1) / 2, (CONTEXT - 1) / 2, float(CROP_SIZE))


def _frames(n: int, rng: np.random.Generator, cfg: AugmentConfig, rolls: np.ndarray | None = None) -> list[Frame]:
    """Crop frames in context pixels: detector-like (box error, extra rotation, scale, shift),
    or for a ``cfg.refine`` fraction refinement-like (the face's own roll undone, small error).
    ``rolls``: each face's roll in its context (radians; NaN where unknown)."""
    frames = _detector_frames(n, rng, cfg)
    if cfg.refine and rolls is not None:
        pick = (rng.random(n) < cfg.refine) & np.isfinite(rolls)
        ls = rng.normal(0, REFINE_LOG_SIDE, n)
        sh = rng.normal(0, REFINE_CENTRE, (n, 2))
        rot = rng.normal(0, math.radians(REFINE_ROLL_DEG), n)
        for i in np.flatnonzero(pick):
            side = _BASE.side * math.exp(ls[i])
            frames[i] = Frame(_BASE.cx + sh[i, 0] * side, _BASE.cy + sh[i, 1] * side, side, float(rolls[i] + rot[i]))
    return frames


def _detector_frames(n: int, rng: np.random.Generator, cfg: AugmentConfig) -> list[Frame]:
    js = cfg.detector_jitter
    ls = rng.normal(0, math.hypot(BOX_JITTER_LOG_SIDE * js, cfg.scale_log), n)
    sh = rng.normal(0, math.hypot(BOX_JITTER_CENTRE * js, cfg.shift), (n, 2))
    rot = np.clip(rng.normal(0, math.radians(cfg.rotate_deg), n), -2.5 * math.radians(cfg.rotate_deg), 2.5 * math.radians(cfg.rotate_deg)) if cfg.rotate_deg else np.zeros(n)
    side = _BASE.side * np.exp(ls)
    return [Frame(_BASE.cx + sh[i, 0] * side[i], _BASE.cy + sh[i, 1] * side[i], float(side[i]), float(rot[i])) for i in range(n)]


def _photometric(img: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    x = img.astype(np.float32) / 255.0
    if cfg.gamma:
        x = np.power(x, math.exp(rng.normal(0, cfg.gamma)))
    if cfg.contrast or cfg.brightness:
        m = float(x.mean())
        x = (x - m) * math.exp(rng.normal(0, cfg.contrast)) + m + rng.normal(0, cfg.brightness * 0.4)
    if cfg.blur and rng.random() < cfg.blur:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.8))
    if cfg.noise and rng.random() < cfg.noise:
        x = x + rng.normal(0, rng.uniform(0.01, 0.05), x.shape).astype(np.float32)
    if cfg.occlude and rng.random() < cfg.occlude:
        h, w = x.shape
        ow, oh = rng.integers(10, 40, 2)
        ox, oy = rng.integers(0, w - ow), rng.integers(0, h - oh)
        x[oy:oy + oh, ox:ox + ow] = rng.uniform(0, 1)
    return np.clip(x * 255.0, 0, 255).astype(np.uint8)


def _rolls(keypoints: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Roll of each face (:func:`~facekeypoints.geometry.eye_angle`; NaN where an eye centre is missing)."""
    return np.array([eye_angle(k) if m[_LE] and m[_RE] else np.nan for k, m in zip(keypoints, mask)])


def make_batch(contexts: np.ndarray, keypoints: np.ndarray, mask: np.ndarray,
               rng: np.random.Generator, cfg: AugmentConfig, points68: np.ndarray | None = None,
               mask68: np.ndarray | None = None, frames: list[Frame] | None = None,
               framing: Framing = KAGGLE_FRAMING) -> tuple[np.ndarray, ...]:
    """Crop (and augment) a batch: returns images (N, 96, 96) uint8, keypoints
    (N, 15, 2) in crop pixels (NaN where masked), mask (N, 15); with ``points68`` also the
    68 landmarks (N, 68, 2) and their mask (N, 68), moved by the same affine map and flip.
    The random draws do not depend on whether the 68 points are asked for. ``frames``: the
    (Kaggle) crop frames to use instead of drawing them; ``framing``: the model's crop on each
    (:class:`~facekeypoints.geometry.Framing`; it changes no random draw)."""
    if points68 is not None:
        both = np.concatenate([keypoints, points68], axis=1)
        bmask = np.concatenate([mask, mask68], axis=1)
        imgs, kps, msk = _make_batch(contexts, both, bmask, rng, cfg, split=keypoints.shape[1], frames=frames,
                                     framing=framing)
        k = keypoints.shape[1]
        return imgs, kps[:, :k], msk[:, :k], kps[:, k:], msk[:, k:]
    return _make_batch(contexts, keypoints, mask, rng, cfg, frames=frames, framing=framing)


def _make_batch(contexts: np.ndarray, keypoints: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
                cfg: AugmentConfig, split: int | None = None, frames: list[Frame] | None = None,
                framing: Framing = KAGGLE_FRAMING) -> tuple[np.ndarray, ...]:
    """``split``: the first ``split`` points are the 15 keypoints, the rest the 68 landmarks
    (each group flipped with its own permutation)."""
    n = len(contexts)
    k15 = keypoints.shape[1] if split is None else split
    if frames is None:
        frames = _frames(n, rng, cfg, _rolls(keypoints[:, :k15], mask[:, :k15]) if cfg.refine else None)
    frames = [framing.apply(f) for f in frames]
    imgs = np.empty((n, CROP_SIZE, CROP_SIZE), np.uint8)
    kps = np.empty((n, keypoints.shape[1], 2), np.float32)
    msk = mask.copy()
    photometric = any((cfg.brightness, cfg.contrast, cfg.gamma, cfg.blur, cfg.noise, cfg.occlude))
    for i, f in enumerate(frames):
        m = f.matrix(CROP_SIZE)
        imgs[i] = cv2.warpAffine(contexts[i], m, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
        kps[i] = keypoints[i] @ m[:, :2].T + m[:, 2]
        if cfg.flip and rng.random() < cfg.flip:
            imgs[i] = imgs[i][:, ::-1]
            kps[i, :k15] = flip_keypoints(kps[i, :k15], CROP_SIZE)
            msk[i, :k15] = flip_mask(msk[i, :k15])
            if split is not None:
                kps[i, k15:] = flip_keypoints(kps[i, k15:], CROP_SIZE)
                msk[i, k15:] = flip_mask(msk[i, k15:])
        if photometric:
            imgs[i] = _photometric(imgs[i], rng, cfg)
    lo, hi = -OUTSIDE_MARGIN * CROP_SIZE, (1 + OUTSIDE_MARGIN) * CROP_SIZE
    inside = ((kps >= lo) & (kps <= hi)).all(axis=2)
    msk &= inside & np.isfinite(kps).all(axis=2)
    kps[~msk] = np.nan
    return imgs, kps, msk


def eval_frames(n: int, seed: int = 0, exact: np.ndarray | None = None) -> list[Frame]:
    """The crop frames (in context pixels) that :func:`eval_batch` uses. ``exact[i]``: face i is
    cropped exactly in its base frame, with no detector jitter (a Kaggle row: its own 96x96 image)."""
    frames = _frames(n, np.random.default_rng(seed), EVAL)
    if exact is not None:
        frames = [_BASE if e else f for f, e in zip(frames, exact)]
    return frames


def eval_batch(contexts: np.ndarray, keypoints: np.ndarray, mask: np.ndarray, seed: int = 0,
               exact: np.ndarray | None = None, points68: np.ndarray | None = None,
               mask68: np.ndarray | None = None, framing: Framing = KAGGLE_FRAMING) -> tuple[np.ndarray, ...]:
    """Validation crops: a detector-like box (seeded Haar-statistics jitter), no other change,
    so validation error matches what a photo run with the Haar cascade sees; ``exact`` faces
    (see :func:`eval_frames`) are cut in their base frame; ``framing`` as in :func:`make_batch`."""
    return make_batch(contexts, keypoints, mask, np.random.default_rng(seed), EVAL, points68, mask68,
                      frames=eval_frames(len(contexts), seed, exact), framing=framing)
