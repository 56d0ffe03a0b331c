"""Kaggle *Facial Keypoints Detection* files: ``training.csv``, ``test.csv``,
``IdLookupTable.csv`` and the ``RowId,Location`` submission.

Missing keypoint cells stay missing (NaN + mask); no row is dropped. Malformed
rows stop the load with a one-line error naming the file and the row.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import InputError
from ...fileio import write_bytes_atomic
from ...geometry import CROP_SIZE
from ...schema import KAGGLE_COLUMNS, NUM_KEYPOINTS

N_PIXELS = CROP_SIZE * CROP_SIZE


@dataclass
class KaggleSet:
    """Images (N, 96, 96) uint8, keypoints (N, 15, 2) float32 with NaN where
    missing, mask (N, 15) bool, and ImageIds (test files) or row numbers."""

    images: np.ndarray
    keypoints: np.ndarray
    mask: np.ndarray
    ids: list[int]


def _pixels(text: str, path: Path, row: int) -> np.ndarray:
    parts = text.split()
    if len(parts) != N_PIXELS:
        raise InputError(path, f"row {row}: Image has {len(parts)} pixel values, expected {N_PIXELS}")
    try:
        px = np.array(parts, dtype=np.float32)
    except ValueError:
        bad = next(p for p in parts if not _is_number(p))
        raise InputError(path, f"row {row}: non-numeric pixel value {bad[:20]!r}") from None
    if not np.isfinite(px).all():
        raise InputError(path, f"row {row}: NaN or infinite pixel value")
    if px.min() < 0 or px.max() > 255:
        raise InputError(path, f"row {row}: pixel value outside 0..255")
    return px.astype(np.uint8).reshape(CROP_SIZE, CROP_SIZE)


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _open_csv(path: Path):
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        f = path.open(newline="")
        header = next(csv.reader(f), None)
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(path, f"cannot read ({e})") from None
    if header is None:
        raise InputError(path, "empty file")
    return f, [h.strip() for h in header]


def load_training(path: str | os.PathLike) -> KaggleSet:
    """Read a Kaggle ``training.csv`` (30 keypoint columns in any order, then ``Image``)."""
    p = Path(path)
    f, header = _open_csv(p)
    with f:
        missing = [c for c in (*KAGGLE_COLUMNS, "Image") if c not in header]
        if missing:
            raise InputError(p, f"header lacks column(s) {', '.join(missing[:3])}{'...' if len(missing) > 3 else ''}")
        col = [header.index(c) for c in KAGGLE_COLUMNS]
        img_col = header.index("Image")
        images, kps = [], []
        try:
            for row_no, row in enumerate(csv.reader(f), start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise InputError(p, f"row {row_no}: {len(row)} columns, expected {len(header)}")
                vals = np.full(len(KAGGLE_COLUMNS), np.nan, dtype=np.float32)
                for j, c in enumerate(col):
                    cell = row[c].strip()
                    if cell == "":
                        continue
                    try:
                        vals[j] = float(cell)
                    except ValueError:
                        raise InputError(p, f"row {row_no}: {KAGGLE_COLUMNS[j]} is not a number ({cell[:20]!r})") from None
                    if not np.isfinite(vals[j]):
                        raise InputError(p, f"row {row_no}: {KAGGLE_COLUMNS[j]} is {cell!r}; leave the cell empty for a missing keypoint")
                images.append(_pixels(row[img_col], p, row_no))
                kps.append(vals.reshape(NUM_KEYPOINTS, 2))
        except (csv.Error, UnicodeDecodeError) as e:
            raise InputError(p, f"malformed CSV ({e})") from None
    if not images:
        raise InputError(p, "no data rows")
    kp = np.stack(kps)
    mask = np.isfinite(kp).all(axis=2)
    kp[~mask] = np.nan  # a point with only x or only y is missing as a whole
    return KaggleSet(np.stack(images), kp, mask, list(range(1, len(images) + 1)))


def load_test(path: str | os.PathLike) -> KaggleSet:
    """Read a Kaggle ``test.csv`` (``ImageId,Image``)."""
    p = Path(path)
    f, header = _open_csv(p)
    with f:
        if header[:2] != ["ImageId", "Image"] or len(header) != 2:
            raise InputError(p, f"expected header ImageId,Image, got {','.join(header)[:60]}")
        ids, images = [], []
        try:
            for row_no, row in enumerate(csv.reader(f), start=2):
                if not row:
                    continue
                if len(row) != 2:
                    raise InputError(p, f"row {row_no}: {len(row)} columns, expected 2")
                try:
                    ids.append(int(row[0]))
                except ValueError:
                    raise InputError(p, f"row {row_no}: ImageId {row[0][:20]!r} is not an integer") from None
                images.append(_pixels(row[1], p, row_no))
        except (csv.Error, UnicodeDecodeError) as e:
            raise InputError(p, f"malformed CSV ({e})") from None
    if not images:
        raise InputError(p, "no data rows")
    n = len(images)
    return KaggleSet(np.stack(images), np.full((n, NUM_KEYPOINTS, 2), np.nan, np.float32), np.zeros((n, NUM_KEYPOINTS), bool), ids)


def read_lookup(path: str | os.PathLike) -> list[tuple[int, int, str]]:
    """``IdLookupTable.csv`` rows as (RowId, ImageId, FeatureName)."""
    p = Path(path)
    f, header = _open_csv(p)
    with f:
        try:
            i_row, i_img, i_feat = header.index("RowId"), header.index("ImageId"), header.index("FeatureName")
        except ValueError:
            raise InputError(p, "expected columns RowId, ImageId, FeatureName") from None
        out = []
        for row_no, row in enumerate(csv.reader(f), start=2):
            if not row:
                continue
            try:
                rid, iid, feat = int(row[i_row]), int(row[i_img]), row[i_feat].strip()
            except (ValueError, IndexError):
                raise InputError(p, f"row {row_no}: malformed lookup row") from None
            if feat not in KAGGLE_COLUMNS:
                raise InputError(p, f"row {row_no}: unknown FeatureName {feat!r}")
            out.append((rid, iid, feat))
    return out


def check_lookup(path: str | os.PathLike, lookup: list[tuple[int, int, str]], ids: list[int],
                 test_path: str | os.PathLike) -> None:
    """Refuse, naming the lookup file, a lookup row whose ImageId the test file lacks."""
    have = set(ids)
    for rid, iid, _ in lookup:
        if iid not in have:
            raise InputError(Path(path), f"RowId {rid} asks for ImageId {iid}, which {Path(test_path).name} does not have")


def write_submission(path: str | os.PathLike, lookup: list[tuple[int, int, str]], ids: list[int], keypoints: np.ndarray) -> int:
    """Write ``RowId,Location`` for every lookup row, clipped to [0, 96]. Atomic."""
    index = {iid: i for i, iid in enumerate(ids)}
    flat = np.asarray(keypoints, dtype=np.float64).reshape(len(ids), -1)
    col = {c: j for j, c in enumerate(KAGGLE_COLUMNS)}
    p = Path(path)
    out = io.StringIO(newline="")
    w = csv.writer(out)
    w.writerow(["RowId", "Location"])
    for rid, iid, feat in lookup:
        if iid not in index:
            raise InputError(p, f"lookup row {rid} asks for ImageId {iid}, which is not in the test file")
        w.writerow([rid, f"{float(np.clip(flat[index[iid], col[feat]], 0.0, 96.0)):.4f}"])
    p.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(p, out.getvalue().encode())
    return len(lookup)
