"""Turn any of the three data formats into one in-memory training set.

Each face is stored once as a 192x192 *context* crop around its keypoint frame
(twice the side of the final crop, at the final crop's resolution), so that
augmentation can rotate, scale and shift without re-reading the photo. The base
frame of every context is centred with side 96 context pixels.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ...errors import InputError
from ...fileio import write_npz_atomic
from ...geometry import CROP_SIZE, Frame, crop, frame_from_keypoints
from ...imageio import read_image, to_gray
from ...schema import NUM_KEYPOINTS, NUM_LANDMARKS
from . import kaggle
from .landmarks import FaceSample, in_validation, load_300w, load_lfpw, load_mtfl, load_udacity

CONTEXT = 2 * CROP_SIZE


@dataclass
class FaceSet:
    """Context crops (N, 192, 192) uint8, keypoints (N, 15, 2) float32 in context
    pixels (NaN where missing), mask (N, 15), group and source name per face, and the
    68 landmarks (N, 68, 2) with their mask (N, 68) (NaN / False where a set has none)."""

    contexts: np.ndarray
    keypoints: np.ndarray
    mask: np.ndarray
    groups: list[str]
    sources: list[str] = field(default_factory=list)
    points68: np.ndarray | None = None
    mask68: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.contexts)
        if self.points68 is None:
            self.points68 = np.full((n, NUM_LANDMARKS, 2), np.nan, np.float32)
        if self.mask68 is None:
            self.mask68 = np.isfinite(self.points68).all(axis=2)

    def __len__(self) -> int:
        return len(self.contexts)

    def subset(self, idx: Sequence[int] | np.ndarray) -> FaceSet:
        idx = np.asarray(idx, dtype=np.int64)
        return FaceSet(self.contexts[idx], self.keypoints[idx], self.mask[idx],
                       [self.groups[i] for i in idx], [self.sources[i] for i in idx],
                       self.points68[idx], self.mask68[idx])

    def replace(self, keypoints: np.ndarray, points68: np.ndarray | None = None) -> FaceSet:
        """The same faces with moved labels (masks unchanged)."""
        return FaceSet(self.contexts, keypoints, self.mask, self.groups, self.sources,
                       self.points68 if points68 is None else points68, self.mask68)

    @staticmethod
    def concat(sets: Sequence[FaceSet]) -> FaceSet:
        sets = [s for s in sets if len(s)]
        if not sets:
            return FaceSet(np.zeros((0, CONTEXT, CONTEXT), np.uint8), np.zeros((0, NUM_KEYPOINTS, 2), np.float32),
                           np.zeros((0, NUM_KEYPOINTS), bool), [], [])
        return FaceSet(np.concatenate([s.contexts for s in sets]), np.concatenate([s.keypoints for s in sets]),
                       np.concatenate([s.mask for s in sets]), sum((s.groups for s in sets), []),
                       sum((s.sources for s in sets), []), np.concatenate([s.points68 for s in sets]),
                       np.concatenate([s.mask68 for s in sets]))


def split(faces: FaceSet, val_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and validation faces, split by photo/person group.

    Kaggle rows carry no photo or person identity: their group is their row
    (``kaggle/<file>/<row>``), so they are split row by row, by the same seeded hash.
    """
    is_val = np.array([in_validation(g, val_fraction, seed) for g in faces.groups], dtype=bool)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def _context_frame(kp: np.ndarray) -> Frame:
    f = frame_from_keypoints(kp)
    return Frame(f.cx, f.cy, f.side * CONTEXT / CROP_SIZE, 0.0)


def _one(sample: FaceSample) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gray = to_gray(read_image(sample.image))
    frame = _context_frame(sample.keypoints)
    p68 = (frame.to_crop(sample.points68, CONTEXT) if sample.points68 is not None
           else np.full((NUM_LANDMARKS, 2), np.nan, np.float32))
    return crop(gray, frame, CONTEXT), frame.to_crop(sample.keypoints, CONTEXT), p68


def from_samples(samples: Sequence[FaceSample], desc: str = "faces", workers: int = 2) -> FaceSet:
    """Read photos and cut a context crop per labelled face (threaded; OpenCV releases the GIL)."""
    n = len(samples)
    ctx = np.zeros((n, CONTEXT, CONTEXT), np.uint8)
    kps = np.zeros((n, NUM_KEYPOINTS, 2), np.float32)
    p68 = np.zeros((n, NUM_LANDMARKS, 2), np.float32)
    with ThreadPoolExecutor(max(1, workers)) as ex:
        for i, (c, k, q) in enumerate(tqdm(ex.map(_one, samples), total=n, desc=desc, leave=False, disable=n < 50)):
            ctx[i], kps[i], p68[i] = c, k, q
    mask = np.stack([s.present() for s in samples]) if n else np.zeros((0, NUM_KEYPOINTS), bool)
    kps[~mask] = np.nan
    return FaceSet(ctx, kps, mask, [s.group for s in samples], [s.source for s in samples], p68)


#: Where a Kaggle 96x96 image sits in its context: the context's centred 96 px square.
_KAGGLE_BASE = Frame((CONTEXT - 1) / 2 - CROP_SIZE / 2, (CONTEXT - 1) / 2 - CROP_SIZE / 2, CONTEXT)


def kaggle_faces(images: np.ndarray, keypoints: np.ndarray, mask: np.ndarray, groups: list[str]) -> FaceSet:
    """Kaggle rows are already 96x96 crops: pad each into a context, border repeated."""
    n = len(images)
    ctx = np.stack([crop(im, _KAGGLE_BASE, CONTEXT) for im in images])
    kps = _KAGGLE_BASE.to_crop(np.asarray(keypoints, np.float32).reshape(-1, 2), CONTEXT).reshape(n, NUM_KEYPOINTS, 2)
    kps[~mask] = np.nan
    return FaceSet(ctx, kps.astype(np.float32), np.asarray(mask, bool).copy(), list(groups), ["kaggle"] * n)


def from_kaggle(path: str | os.PathLike) -> FaceSet:
    """A Kaggle ``training.csv``; each row is its own group (``kaggle/<file>/<row>``)."""
    ks = kaggle.load_training(path)
    name = Path(path).name
    return kaggle_faces(ks.images, ks.keypoints, ks.mask, [f"kaggle/{name}/{i}" for i in ks.ids])


def resolve(spec: str | os.PathLike) -> list[tuple[str, Path]]:
    """Find data sets under a path: a Kaggle CSV, a Udacity CSV, a 300-W or LFPW folder
    (``.pts`` files; LFPW when the path names an ``lfpw`` folder), an MTFL ``landmarks.txt``
    (or its folder), or a folder holding any of these (``../shared/data`` gives its 300-W,
    LFPW, MTFL and Udacity sets).

    Inside folders, ``kaggle_format/`` is skipped: it is made from 300-W crops and would
    leak validation faces; name a Kaggle CSV explicitly to train on it.
    """
    p = Path(spec)
    if p.is_file():
        if p.name == "landmarks.txt":
            return [("mtfl", p)]
        if p.name.endswith("_frames_keypoints.csv"):
            return [("udacity", p)]
        if p.suffix.lower() == ".csv":
            return [("kaggle", p)]
        raise InputError(p, "not a data set (expected a .csv file or a folder)")
    if not p.is_dir():
        raise InputError(p, "no such file or directory")
    udacity = sorted(p.glob("*_frames_keypoints.csv"))
    if udacity:
        return [("udacity", u) for u in udacity]
    if (p / "landmarks.txt").is_file():
        return [("mtfl", p / "landmarks.txt")]
    if next(p.glob("*.pts"), None) is not None:
        return [("lfpw" if "lfpw" in (q.lower() for q in p.resolve().parts) else "300w", p)]
    found: list[tuple[str, Path]] = []
    for sub in sorted(d for d in p.iterdir() if d.is_dir() and d.name != "kaggle_format"):
        found += resolve(sub)
    return found


def load(specs: Sequence[str | os.PathLike], cache_dir: str | os.PathLike | None = None) -> FaceSet:
    """Load and merge every data set named by ``specs`` (see :func:`resolve`)."""
    parts = []
    for spec in specs:
        sets = resolve(spec)
        if not sets:
            raise InputError(spec, "no 300-W, LFPW, MTFL, Udacity or Kaggle data found here")
        for kind, path in sets:
            if kind == "kaggle":
                parts.append(from_kaggle(path))
                continue
            samples = LOADERS[kind](path)
            parts.append(_cached(samples, f"{kind}:{path.resolve()}", cache_dir))
    return FaceSet.concat(parts)


LOADERS = {"300w": load_300w, "lfpw": load_lfpw, "mtfl": load_mtfl, "udacity": load_udacity}

#: Bumped whenever what a cache file holds changes, so an old cache is rebuilt, never misread
#: (v2: the 68 landmarks and the keypoint mask are stored too).
CACHE_VERSION = 2


def _cached(samples: list[FaceSample], desc: str, cache_dir: str | os.PathLike | None) -> FaceSet:
    if cache_dir is None:
        return from_samples(samples, desc)
    key = hashlib.sha256()
    for s in samples:
        st = s.image.stat()
        key.update(f"{s.image}:{st.st_size}:{st.st_mtime_ns}:".encode())
        key.update(s.keypoints.tobytes())
        key.update(s.present().tobytes())
        if s.points68 is not None:
            key.update(s.points68.tobytes())
        key.update(f"{s.group}:{s.source}".encode())
    key.update(f"v{CACHE_VERSION}".encode())
    path = Path(cache_dir) / f"faces-v{CACHE_VERSION}-{key.hexdigest()[:20]}.npz"
    if path.exists():
        z = np.load(path, allow_pickle=False)
        if int(z["version"]) == CACHE_VERSION:
            return FaceSet(z["contexts"], z["keypoints"], z["mask"], [str(g) for g in z["groups"]],
                           [str(s) for s in z["sources"]], z["points68"], z["mask68"])
    fs = from_samples(samples, desc)
    write_npz_atomic(path, version=np.array(CACHE_VERSION), contexts=fs.contexts, keypoints=fs.keypoints,
                     mask=fs.mask, groups=np.array(fs.groups), sources=np.array(fs.sources), points68=fs.points68,
                     mask68=fs.mask68)
    return fs
