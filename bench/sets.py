"""The benchmark's labelled sets, their validation splits, and how a detection is matched to a label.

Sets (all read in place from ``../shared/data``):

* ``300w``: AFW + HELEN validation photos, ``split_by_group(load_300w(...), 0.15, 0)[1]`` (by photo id,
  the split the keypoint model trains on); 68 points per face.
* ``lfpw``: 300-W's LFPW part, split by file: held out when ``in_validation("lfpw/" + stem, 0.15, 0)``.
* ``udacity``: YouTube Faces frames (training + test CSVs), split by person (``"udacity/" + person``).
* ``mtfl``: 80x80 faces with 5 points; by person for ``lfw_5590`` (``"mtfl/lfw/" + person``), by file for
  ``net_7876`` (``"mtfl/net/" + stem``).
* ``multi``: dlib's multi-face photos with ``*_with_face_landmarks.xml`` (43 faces; boxes and 68 points
  made by dlib's own model, not by people).
* ``dogs``: ``photos/dogs.jpg``, no human face.

For LFPW and MTFL the split is the training code's when the tree named by ``--split-tree`` has loaders
for them (``load_lfpw`` / ``load_mtfl`` in ``training/data/landmarks.py``, asked through
``peers/fk_runner.py --split``); otherwise the same rules are applied here (:func:`fallback_group`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from facekeypoints.schema import INDEX, LEFT_EYE, LEFT_EYE_OUTER, NUM_KEYPOINTS, RIGHT_EYE, RIGHT_EYE_OUTER, from_ibug68
from facekeypoints.training.data.landmarks import in_validation, load_300w, load_udacity, read_pts, split_by_group

VAL_FRACTION, SEED = 0.15, 0
TIMING_SIZE = (640, 480)
#: A detection matches a labelled face when its eye midpoint lies within this many outer-eye-corner
#: distances of the labelled eye midpoint (other people's faces are farther).
MATCH_RADIUS = 1.0
#: Outer-eye-corner distance / eye-centre distance: median 1.398 over the 1,014 300-W train faces.
#: MTFL labels only the eye centres, so its match radius is MATCH_RADIUS * this * eye-centre distance.
OUTER_PER_CENTRE = 1.40
#: MTFL's five points in file order (the first eye / mouth corner is on the image's left: the subject's right).
MTFL_POINTS = ("right_eye_center", "left_eye_center", "nose_tip", "mouth_right_corner", "mouth_left_corner")
MTFL_INDEX = [INDEX[n] for n in MTFL_POINTS]


@dataclass
class Label:
    """One labelled face: 15 keypoints (NaN where the set does not label them), 68 points if any."""

    kp15: np.ndarray
    kp68: np.ndarray | None = None

    @property
    def eye_mid(self) -> np.ndarray:
        return (self.kp15[LEFT_EYE] + self.kp15[RIGHT_EYE]) / 2

    @property
    def radius(self) -> float:
        outer = float(np.linalg.norm(self.kp15[LEFT_EYE_OUTER] - self.kp15[RIGHT_EYE_OUTER]))
        if not np.isfinite(outer):
            outer = OUTER_PER_CENTRE * float(np.linalg.norm(self.kp15[LEFT_EYE] - self.kp15[RIGHT_EYE]))
        return MATCH_RADIUS * outer


@dataclass
class Item:
    """One image of a set and the faces labelled in it (none for dogs.jpg)."""

    image: Path
    labels: list[Label]
    set: str
    name: str = ""


@dataclass
class Sets:
    items: dict[str, list[Item]]
    rules: dict[str, str] = field(default_factory=dict)  # how each set was split (for the report)
    cut: dict[str, tuple[int, int]] = field(default_factory=dict)  # set -> (measured, of) when a time budget ran out


def fallback_group(set_name: str, rel: str) -> str:
    """The split group of an LFPW or MTFL file, as the points68 training code defines it."""
    stem = Path(rel).stem
    if set_name == "lfpw":
        return "lfpw/" + stem
    if Path(rel).parent.name.startswith("lfw"):
        return "mtfl/lfw/" + stem.rsplit("_", 1)[0]
    return "mtfl/net/" + stem


def tree_split(tree: str | None, data: Path) -> dict:
    """Validation files of LFPW / MTFL by the tree's own loaders and split (``{}`` when it has none)."""
    if not tree:
        return {}
    runner = Path(__file__).resolve().parent / "peers" / "fk_runner.py"
    env = {**os.environ, "PYTHONPATH": tree}
    try:
        out = subprocess.run([sys.executable, str(runner), "--split", str(data), str(VAL_FRACTION), str(SEED)],
                             capture_output=True, text=True, env=env, timeout=300, check=True).stdout
        return json.loads(out.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError, IndexError) as e:
        print(f"sets: could not ask {tree} for its split ({e}); using the rules in bench/sets.py", file=sys.stderr)
        return {}


def _pts_items(folder: Path, set_name: str, val: set[str] | None, data: Path) -> list[Item]:
    out = []
    for pts in sorted(folder.rglob("*.pts")):
        img = pts.with_suffix(".jpg")
        if not img.is_file():
            continue
        rel = str(img.relative_to(data))
        keep = rel in val if val is not None else in_validation(fallback_group(set_name, rel), VAL_FRACTION, SEED)
        if keep:
            p68 = read_pts(pts).astype(np.float64)
            out.append(Item(img, [Label(from_ibug68(p68).astype(np.float64), p68)], set_name, img.name))
    return out


def _mtfl_items(data: Path, val: set[str] | None) -> list[Item]:
    out = []
    for line in (data / "mtfl" / "landmarks.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) != 11:
            continue
        rel = "mtfl/" + parts[0].replace("\\", "/")
        keep = rel in val if val is not None else in_validation(fallback_group("mtfl", rel), VAL_FRACTION, SEED)
        if not keep:
            continue
        v = np.array([float(x) for x in parts[1:]])
        kp = np.full((NUM_KEYPOINTS, 2), np.nan)
        kp[MTFL_INDEX, 0], kp[MTFL_INDEX, 1] = v[:5], v[5:]
        out.append(Item(data / rel, [Label(kp)], "mtfl", Path(rel).name))
    return out


def _multi_items(data: Path) -> list[Item]:
    out = []
    for xf in ("training_with_face_landmarks.xml", "testing_with_face_landmarks.xml"):
        for im in ET.parse(data / "photos" / xf).getroot().iter("image"):
            labels = []
            for b in im.iter("box"):
                parts = sorted(b.iter("part"), key=lambda p: int(p.get("name")))
                p68 = np.array([[float(p.get("x")), float(p.get("y"))] for p in parts])
                if p68.shape == (68, 2):
                    labels.append(Label(from_ibug68(p68).astype(np.float64), p68))
            out.append(Item(data / "photos" / im.get("file"), labels, "multi", im.get("file")))
    return out


def load_sets(data: Path, split_tree: str | None = None, limits: dict[str, int] | None = None,
              every: dict[str, int] | None = None) -> Sets:
    """Every set, validation parts only; ``limits``: first N items of some sets (``--quick``);
    ``every``: every Nth item of some sets (a fixed stride: consecutive Udacity frames of one
    video are near-duplicates, so a stride keeps the people and most of the information)."""
    asked = tree_split(split_tree, data)
    rules = {"300w": "split_by_group(load_300w(300w/), 0.15, 0)[1] (by photo id)",
             "udacity": "split_by_group(load_udacity(training + test CSVs), 0.15, 0)[1] (by person)",
             "multi": "all 9 labelled photos (dlib-made labels)", "dogs": "photos/dogs.jpg (no face)"}
    _, val300 = split_by_group(load_300w(data / "300w"), VAL_FRACTION, SEED)
    items: dict[str, list[Item]] = {"300w": [
        Item(s.image, [Label(s.keypoints.astype(np.float64), read_pts(s.image.with_suffix(".pts")).astype(np.float64))],
             "300w", s.image.name) for s in val300]}
    for name in ("lfpw", "mtfl"):
        val = set(asked[name]) if asked.get(name) is not None else None
        how = (f"{split_tree}'s own loader and split_by_group(..., 0.15, 0)" if val is not None else
               "in_validation(group, 0.15, 0), the rule defined in bench/sets.py (no loader in the split tree)")
        rules[name] = how + (", group = 'lfpw/' + file stem (by file)" if name == "lfpw" else
                             ", group = 'mtfl/lfw/' + person or 'mtfl/net/' + file stem")
        items[name] = (_pts_items(data / "lfpw", "lfpw", val, data) if name == "lfpw" else _mtfl_items(data, val))
    uda = []
    for csv in sorted((data / "udacity").glob("*_frames_keypoints.csv")):
        uda += load_udacity(csv)
    _, uval = split_by_group(uda, VAL_FRACTION, SEED)
    items["udacity"] = [Item(s.image, [Label(s.keypoints.astype(np.float64))], "udacity", s.image.name) for s in uval]
    items["multi"] = _multi_items(data)
    items["dogs"] = [Item(data / "photos" / "dogs.jpg", [], "dogs", "dogs.jpg")]
    order = ("300w", "lfpw", "udacity", "mtfl", "multi", "dogs")
    items = {k: items[k] for k in order}
    for k, n in (every or {}).items():
        if k in items and n > 1:
            items[k] = items[k][::n]
            rules[k] += f"; every {n}{'nd' if n == 2 else 'rd' if n == 3 else 'th'} image of it (stride)"
    for k, n in (limits or {}).items():
        if k in items:
            items[k] = items[k][:n]
    return Sets(items, rules)


def assign(eye_mids: list[np.ndarray], labels: list[Label]) -> tuple[list[int | None], int]:
    """One-to-one matching, nearest pairs first: for each label the index of its detection (or None),
    and the number of detections left unmatched (false alarms where every face is labelled)."""
    pairs = []
    for li, lb in enumerate(labels):
        for di, m in enumerate(eye_mids):
            d = float(np.linalg.norm(np.asarray(m, np.float64) - lb.eye_mid))
            if d < lb.radius:
                pairs.append((d, li, di))
    out: list[int | None] = [None] * len(labels)
    used: set[int] = set()
    for _, li, di in sorted(pairs):
        if out[li] is None and di not in used:
            out[li] = di
            used.add(di)
    return out, len(eye_mids) - len(used)


@dataclass(frozen=True)
class Letterbox:
    """Fit inside ``size`` keeping the aspect ratio, centred on black (the 640x480 timing pass)."""

    scale: float
    ox: int
    oy: int
    size: tuple[int, int] = TIMING_SIZE

    @classmethod
    def fit(cls, w: int, h: int, size: tuple[int, int] = TIMING_SIZE) -> Letterbox:
        s = min(size[0] / w, size[1] / h)
        return cls(s, (size[0] - round(w * s)) // 2, (size[1] - round(h * s)) // 2, size)

    def apply(self, img: np.ndarray) -> np.ndarray:
        nw, nh = round(img.shape[1] * self.scale), round(img.shape[0] * self.scale)
        small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR)
        out = np.zeros((self.size[1], self.size[0], 3), np.uint8)
        out[self.oy:self.oy + nh, self.ox:self.ox + nw] = small
        return out

    def forward(self, pts: np.ndarray) -> np.ndarray:
        """Native -> letterboxed pixel centres (cv2.resize maps x to (x + 0.5) * s - 0.5)."""
        return (pts + 0.5) * self.scale - 0.5 + (self.ox, self.oy)

    def back(self, pts: np.ndarray) -> np.ndarray:
        return (pts - (self.ox, self.oy) + 0.5) / self.scale - 0.5
