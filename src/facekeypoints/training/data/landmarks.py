"""Loaders for the landmark sets: 68-point 300-W and LFPW ``.pts`` folders, the
Udacity-style CSV, and MTFL's 5-point ``landmarks.txt``. Each face carries the 15-point
schema and, where the set has them, its 68 iBUG landmarks. Photos stay on disk; a
:class:`FaceSample` names one."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import InputError
from ...schema import INDEX, NUM_KEYPOINTS, from_ibug68


@dataclass(frozen=True)
class FaceSample:
    """One annotated face in a photo on disk.

    ``group`` identifies the photo (300-W, LFPW) or person (Udacity, MTFL's LFW part) for
    honest splits. ``mask`` marks the present keypoints (None: all 15; missing ones are NaN);
    ``points68`` holds the 68 iBUG landmarks where the set labels them (None otherwise).
    """

    image: Path
    keypoints: np.ndarray  # (15, 2) float32, 0-based pixels, NaN where missing
    group: str
    source: str
    points68: np.ndarray | None = None  # (68, 2) float32, 0-based pixels
    mask: np.ndarray | None = None  # (15,) bool; None = every keypoint present

    def present(self) -> np.ndarray:
        return np.ones(NUM_KEYPOINTS, bool) if self.mask is None else self.mask


def read_pts(path: str | Path) -> np.ndarray:
    """Read an iBUG ``.pts`` file (1-based coordinates) as (N, 2) 0-based float32."""
    p = Path(path)
    try:
        lines = [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(p, f"cannot read ({e})") from None
    try:
        n = next(int(ln.split(":")[1]) for ln in lines if ln.startswith("n_points"))
        start = lines.index("{") + 1
        end = lines.index("}")
    except (StopIteration, ValueError, IndexError):
        raise InputError(p, "not a .pts file (missing n_points header or braces)") from None
    rows = lines[start:end]
    if len(rows) != n:
        raise InputError(p, f"header says {n} points, file has {len(rows)}")
    try:
        pts = np.array([[float(v) for v in r.split()] for r in rows], dtype=np.float64)
    except ValueError:
        raise InputError(p, "non-numeric coordinate") from None
    if pts.shape != (n, 2) or not np.isfinite(pts).all():
        raise InputError(p, "each point line must hold two finite numbers")
    return (pts - 1.0).astype(np.float32)


def load_300w(folder: str | Path) -> list[FaceSample]:
    """All ``NAME.jpg`` + ``NAME.pts`` pairs under a folder (recursive).

    The group is the photo id ``NAME.rsplit('_', 1)[0]``: AFW repeats one photo per face.
    """
    return _load_pts_folder(folder, "300w", lambda stem: stem.rsplit("_", 1)[0])


def _load_pts_folder(folder: str | Path, source: str, photo_of) -> list[FaceSample]:
    """Every ``.pts`` file with an image beside it under ``folder``; group ``source/photo_of(stem)``."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(root, "not a directory of .pts/.jpg pairs")
    out = []
    for pts in sorted(root.rglob("*.pts")):
        img = next((pts.with_suffix(e) for e in (".jpg", ".png", ".jpeg") if pts.with_suffix(e).exists()), None)
        if img is None:
            continue
        p68 = read_pts(pts)
        if p68.shape != (68, 2):
            raise InputError(pts, f"expected 68 points, got {len(p68)}")
        out.append(FaceSample(img, from_ibug68(p68), f"{source}/{photo_of(pts.stem)}", source, p68))
    if not out:
        raise InputError(root, "no .pts files with a matching image")
    return out


def load_lfpw(folder: str | Path) -> list[FaceSample]:
    """300-W's LFPW part: ``image_NNNN.jpg`` + ``.pts`` pairs, 68 human-labelled points.

    Each LFPW file is its own photo, so the group is ``"lfpw/" + file stem`` and the split
    is by file: a face is held out when ``in_validation("lfpw/" + stem, val_fraction, seed)``
    (the same hashing rule as 300-W's photo ids; 0.15 and seed 0 by default), so anyone can
    reproduce the split from the file names alone.
    """
    return _load_pts_folder(folder, "lfpw", lambda stem: stem)


#: MTFL's five points in file order -> schema keypoints. The first eye and mouth corner are
#: on the image's left, i.e. the subject's RIGHT eye and mouth corner.
MTFL_POINTS: tuple[str, ...] = ("right_eye_center", "left_eye_center", "nose_tip",
                                "mouth_right_corner", "mouth_left_corner")


def load_mtfl(path: str | Path) -> list[FaceSample]:
    """MTFL's ``landmarks.txt`` (``FILE x1..x5 y1..y5`` per line, 80x80 images beside it).

    Five of the 15 keypoints are present (:data:`MTFL_POINTS`); the other ten are NaN and
    masked, exactly as missing Kaggle cells are. Groups: the person for ``lfw_5590/``
    (``Name_0001.jpg`` -> ``mtfl/lfw/Name``; LFW people repeat across files), the file
    for ``net_7876/`` (``mtfl/net/<stem>``).
    """
    p = Path(path)
    if p.is_dir():
        p = p / "landmarks.txt"
    if not p.is_file():
        raise InputError(p, "no such file")
    idx = [INDEX[n] for n in MTFL_POINTS]
    mask = np.zeros(NUM_KEYPOINTS, bool)
    mask[idx] = True
    out = []
    try:
        lines = p.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(p, f"cannot read ({e})") from None
    for i, line in enumerate(lines, start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 11:
            raise InputError(p, f"line {i}: expected a file name and 10 numbers, got {len(parts) - 1} numbers")
        v = _coordinates(p, parts[1:], f"line {i}")
        name = parts[0].replace("\\", "/")
        kp = np.full((NUM_KEYPOINTS, 2), np.nan, np.float32)
        kp[idx, 0], kp[idx, 1] = v[:5], v[5:]
        stem = Path(name).stem
        folder = Path(name).parent.name
        group = f"mtfl/lfw/{stem.rsplit('_', 1)[0]}" if folder.startswith("lfw") else f"mtfl/net/{stem}"
        out.append(FaceSample(p.parent / name, kp, group, "mtfl", None, mask))
    if not out:
        raise InputError(p, "no faces listed")
    return out


def _coordinates(path: Path, fields: list[str], where: str) -> np.ndarray:
    """A label line's numbers as float64, or a one-line error naming the file and the line."""
    try:
        v = np.array([float(x) for x in fields], dtype=np.float64)
    except ValueError:
        raise InputError(path, f"{where}: non-numeric coordinate") from None
    if not np.isfinite(v).all():
        raise InputError(path, f"{where}: NaN or infinite coordinate")
    return v


def load_udacity(csv_path: str | Path, image_dir: str | Path | None = None) -> list[FaceSample]:
    """A Udacity ``*_frames_keypoints.csv`` (name, then 136 numbers) with its image folder.

    The folder defaults to the CSV's name without ``_frames_keypoints.csv``
    (``training_frames_keypoints.csv`` -> ``training/``). Group = person.
    """
    p = Path(csv_path)
    folder = Path(image_dir) if image_dir else p.with_name(p.name.replace("_frames_keypoints.csv", ""))
    if not folder.is_dir():
        raise InputError(p, f"image folder {folder} not found")
    out = []
    try:
        with p.open(newline="") as f:
            reader = csv.reader(f)
            next(reader, None)  # header
            for i, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != 137:
                    raise InputError(p, f"row {i}: expected 137 columns (name + 136 numbers), got {len(row)}")
                vals = _coordinates(p, row[1:], f"row {i}")
                name = row[0]
                person = name.rsplit("_", 1)[0]
                p68 = vals.reshape(68, 2).astype(np.float32)
                out.append(FaceSample(folder / name, from_ibug68(p68), "udacity/" + person, "udacity", p68))
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(p, f"cannot read ({e})") from None
    return out


def in_validation(group: str, val_fraction: float, seed: int = 0) -> bool:
    """Whether a group (photo or person) is held out. Stable: it depends only on the
    group's name and the seed, not on what else is loaded."""
    h = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < val_fraction


def split_by_group(samples: list[FaceSample], val_fraction: float, seed: int = 0) -> tuple[list[FaceSample], list[FaceSample]]:
    """Split by group, never by file: all faces of a photo or person fall on one side."""
    val = [in_validation(s.group, val_fraction, seed) for s in samples]
    return [s for s, v in zip(samples, val) if not v], [s for s, v in zip(samples, val) if v]
