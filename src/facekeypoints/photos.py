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
from .fileio import write_json_atomic, write_text
from .imageio import IMAGE_EXTENSIONS, read_image
from .schema import KAGGLE_COLUMNS, KEYPOINT_NAMES, LANDMARK_COLUMNS, NUM_LANDMARKS


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


def process(detector, path: str, filters: Sequence[str] = (), draw_pose: bool = False) -> tuple[dict, np.ndarray | None]:
    """Detect one photo; returns its record and the annotated image (None on error);
    ``draw_pose`` adds each face's head axes."""
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
    if draw_pose:
        from .pose import draw_pose as draw_axes

        annotated = draw_axes(annotated, faces)
    return record(path, image, faces, None), annotated


#: Head pose (degrees) and openness (aspect ratios; empty without 68 landmarks), after the keypoints.
#: Pose and openness columns after the keypoints, in photo and video CSVs alike.
USE_COLUMNS = ["yaw", "pitch", "roll", "left_eye_aspect_ratio", "right_eye_aspect_ratio", "mouth_aspect_ratio"]
CSV_HEADER = ["image", "face", "box_x0", "box_y0", "box_x1", "box_y1", "score"] + list(KAGGLE_COLUMNS) + USE_COLUMNS


def use_values(face: dict) -> list:
    """The USE_COLUMNS of a face record ("" where absent or not finite)."""
    pose = face.get("pose") or {}
    opened = face.get("openness") or {}
    vals = [pose.get(k) for k in ("yaw", "pitch", "roll")] + [opened.get(k) for k in ("left_eye", "right_eye", "mouth")]
    return ["" if v is None else v for v in vals]


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
        lm = []
        if points == NUM_LANDMARKS:
            lm = [v for p in f["landmarks"] for v in p] if "landmarks" in f else [""] * len(LANDMARK_COLUMNS)
        rows.append([rec["image"], i, *f["box"], "" if f["score"] is None else f["score"], *kp, *use_values(f), *lm])
    return rows


def write_json(path: str | os.PathLike, records: list[dict]) -> None:
    """Atomic; ``-`` writes to standard output."""
    write_json_atomic(path, records)


def write_csv(path: str | os.PathLike, records: list[dict], points: int | None = None) -> None:
    """One row per face; ``points`` 68 adds the landmark columns (None: when any face has them).
    Atomic; ``-`` writes to standard output."""
    points = csv_points(records, points)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(csv_header(points))
    for r in records:
        w.writerows(csv_rows(r, points))
    write_text(path, buf.getvalue())


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
