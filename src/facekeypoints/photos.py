"""Batch processing of photos: input expansion, per-image records, JSON/CSV output.

A record per input, in input order: ``{"image", "width", "height", "faces", "error"}``.
A bad file becomes a record with ``"error"`` set; the batch goes on.
"""

from __future__ import annotations

import csv
import glob
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .errors import FkpError
from .fileio import write_json_atomic, write_text_atomic
from .imageio import IMAGE_EXTENSIONS, read_image
from .schema import KEYPOINT_NAMES, LANDMARK_COLUMNS, NUM_LANDMARKS


def expand_inputs(inputs: Iterable[str | os.PathLike]) -> list[str]:
    """Files as given, folders recursively (image extensions only, sorted), globs expanded.
    A path that matches nothing is kept so that it is reported as an error."""
    out: list[str] = []
    for item in inputs:
        s = str(item)
        p = Path(s)
        if p.is_dir():
            out += sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        elif not p.exists() and glob.has_magic(s):
            matches = sorted(glob.glob(s, recursive=True))
            out += matches if matches else [s]
        else:
            out.append(s)
    return out


def record(path: str, image: np.ndarray | None, faces: Sequence | None, error: str | None) -> dict:
    h, w = (image.shape[:2] if image is not None else (None, None))
    return {"image": path, "width": w, "height": h,
            "faces": [f.to_dict() for f in faces] if faces is not None else [], "error": error}


def process(detector, path: str, filters: Sequence[str] = ()) -> tuple[dict, np.ndarray | None]:
    """Detect one photo; returns its record and the annotated image (None on error)."""
    from .drawing import draw

    try:
        image = read_image(path)
        faces = detector.detect(image)
    except FkpError as e:
        return record(path, None, None, str(e.problem) if hasattr(e, "problem") else str(e)), None
    if filters:
        from .filters import apply_filter

        annotated = apply_filter(image, faces, list(filters))
    else:
        annotated = draw(image, faces)
    return record(path, image, faces, None), annotated


CSV_HEADER = ["image", "face", "box_x0", "box_y0", "box_x1", "box_y1", "score"] + [
    f"{n}_{a}" for n in KEYPOINT_NAMES for a in ("x", "y")]


def csv_points(records: list[dict], points: int | None = None) -> int:
    """68 when ``points`` says so or (``points`` None) any face has ``"landmarks"``, else 15."""
    if points is not None:
        return points
    return NUM_LANDMARKS if any("landmarks" in f for r in records for f in r["faces"]) else len(KEYPOINT_NAMES)


def csv_header(points: int = len(KEYPOINT_NAMES)) -> list[str]:
    """:data:`CSV_HEADER`, then ``p0_x, p0_y ... p67_x, p67_y`` for 68 landmarks."""
    return CSV_HEADER + (list(LANDMARK_COLUMNS) if points == NUM_LANDMARKS else [])


def csv_rows(rec: dict, points: int = len(KEYPOINT_NAMES)) -> list[list]:
    rows = []
    for i, f in enumerate(rec["faces"]):
        kp = [v for n in KEYPOINT_NAMES for v in f["keypoints"][n]]
        if points == NUM_LANDMARKS:
            kp += [v for p in f["landmarks"] for v in p] if "landmarks" in f else [""] * len(LANDMARK_COLUMNS)
        rows.append([rec["image"], i, *f["box"], "" if f["score"] is None else f["score"], *kp])
    return rows


def write_json(path: str | os.PathLike, records: list[dict]) -> None:
    write_json_atomic(path, records)


def write_csv(path: str | os.PathLike, records: list[dict], points: int | None = None) -> None:
    """One row per face; ``points`` 68 adds the landmark columns (None: when any face has them)."""
    points = csv_points(records, points)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(csv_header(points))
    for r in records:
        w.writerows(csv_rows(r, points))
    write_text_atomic(path, buf.getvalue())


def output_name(path: str, used: set[str]) -> str:
    """Unique output file name for an input: same name, numbered on collisions."""
    p = Path(path)
    ext = p.suffix.lower() if p.suffix.lower() in IMAGE_EXTENSIONS else ".jpg"
    name, k = f"{p.stem}{ext}", 1
    while name in used:
        k += 1
        name = f"{p.stem}_{k}{ext}"
    used.add(name)
    return name
