"""Quick whole-photo measurements of a detector against the labels (the benchmark proper is
bench/): faces found on the validation photos of each source, faces and false alarms on
dlib's group photos, detections on ``dogs.jpg``, and keypoint NME end to end on the 300-W +
LFPW validation faces that every compared detector found.

A detection finds a labelled face when the face's centre (:func:`box_from_points`) lies in the
detection's box and the box side is 0.5-2x the label box's: a rule that does not favour one
detector's box convention. dlib's boxes are matched the same way (their centre in the box).

    python -m facekeypoints.training.detector.measure --data ../shared/data [--detectors learned haar]
"""

from __future__ import annotations

import argparse
import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from ...detection.learned import FIVE_INDEX, box_from_points
from ...imageio import read_image, to_gray
from ...metrics import nme_per_face
from ...pipeline import KeypointDetector
from ..data.landmarks import in_validation, load_300w, load_udacity
from .data import SPLIT_SEED, VAL_FRACTION, _mtfl


def _hit(det_box, ref_box) -> bool:
    cx, cy = (ref_box[0] + ref_box[2]) / 2, (ref_box[1] + ref_box[3]) / 2
    side = max(ref_box[2] - ref_box[0], ref_box[3] - ref_box[1])
    dside = max(det_box[2] - det_box[0], det_box[3] - det_box[1])
    return det_box[0] <= cx <= det_box[2] and det_box[1] <= cy <= det_box[3] and 0.5 <= dside / max(side, 1e-6) <= 2.0


def _centre_in(box, ref) -> bool:
    """Whether ``box``'s centre lies inside ``ref`` (a detection on a teacher face, whatever its size)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return ref[0] <= cx <= ref[2] and ref[1] <= cy <= ref[3]


def val_faces(data: Path, limit: int = 0) -> dict[str, list]:
    """(image path, 15 keypoints or None, 5 points) of the validation faces, per source."""
    out: dict[str, list] = {"300w+lfpw": [], "udacity": [], "mtfl": []}
    for s in load_300w(data / "300w"):
        if in_validation(s.group, VAL_FRACTION, SPLIT_SEED):
            out["300w+lfpw"].append((s.image, s.keypoints, s.keypoints[FIVE_INDEX]))
    for s in load_300w(data / "lfpw"):
        if in_validation("lfpw/" + s.image.stem, VAL_FRACTION, SPLIT_SEED):
            out["300w+lfpw"].append((s.image, s.keypoints, s.keypoints[FIVE_INDEX]))
    for csv in sorted((data / "udacity").glob("*_frames_keypoints.csv")):
        for s in load_udacity(csv):
            if in_validation(s.group, VAL_FRACTION, SPLIT_SEED):
                out["udacity"].append((s.image, s.keypoints, s.keypoints[FIVE_INDEX]))
    for img, p5, _, group in _mtfl(data):
        if in_validation(group, VAL_FRACTION, SPLIT_SEED):
            out["mtfl"].append((img, None, p5))
    if limit:
        out = {k: v[:limit] for k, v in out.items()}
    return out


def dlib_photos(data: Path) -> list[tuple[Path, list]]:
    out = []
    for f in ("training_with_face_landmarks.xml", "testing_with_face_landmarks.xml"):
        root = ET.parse(data / "photos" / f).getroot()
        for im in root.iter("image"):
            boxes = [(float(b.get("left")), float(b.get("top")), float(b.get("left")) + float(b.get("width")),
                      float(b.get("top")) + float(b.get("height"))) for b in im.iter("box")]
            out.append((data / "photos" / im.get("file"), boxes))
    return out


#: Variants by name besides the registered detectors: the learned detector as it shipped before the
#: two-pass default (one pass at 320 px, threshold 0.5, no mirror gate).
VARIANTS = {"learned-320": ({"max_side": 320, "score_threshold": 0.5}, {"max_mirror_gap": None})}


def _pipeline(name: str, threads: int = 1) -> KeypointDetector:
    """A registered detector name, a :data:`VARIANTS` name, ``learned:PATH`` (the default settings with
    another network, e.g. a new training run's ``detector.onnx``), or ``NAME+verifier`` (the verifier
    CNN kept on another detector's boxes; the pipeline keeps it by default)."""
    from ...detection.learned import LearnedDetector
    from ...detection.verifier import default_verifier_path

    base, _, extra = name.partition("+")
    kw = {"verifier": default_verifier_path()} if extra == "verifier" else {}
    if base.startswith("learned:"):
        return KeypointDetector(detector=LearnedDetector(base.partition(":")[2], threads=threads), threads=threads, **kw)
    if base in VARIANTS:
        det_kw, kd_kw = VARIANTS[base]
        return KeypointDetector(detector=LearnedDetector(threads=threads, **det_kw), threads=threads, **kd_kw, **kw)
    return KeypointDetector(detector=base, threads=threads, **kw)


def _teacher_boxes(data: Path, cache: Path | None) -> dict[str, list]:
    """The CenterFace teacher's boxes (score >= 0.2, :func:`box_from_points`) per picture, from the
    trainer's cache (``fkp train-detector`` writes it); empty without it."""
    path = (cache or Path.home() / ".cache" / "fkp-detector") / "teacher.json"
    if not path.is_file():
        return {}
    out = {}
    for k, dets in json.loads(path.read_text()).items():
        out[k] = [box_from_points(np.array(d[1:], np.float64).reshape(5, 2)) for d in dets if d[0] >= 0.2]
    return out


def measure(data: Path, names: list[str], limit: int = 0, threads: int = 1, cache: Path | None = None) -> dict:
    """Per detector and validation source: faces found by the detector alone (``found``) and by the
    whole pipeline (``found_pipeline``: after the verifier and the keypoint gates, what the
    benchmark counts), the pipeline's false alarms (``false_alarms_pipeline``: faces on neither the
    labelled face nor any face the CenterFace teacher sees at score >= 0.2, so unlabelled people do
    not count; photo sources only, with the teacher cache), the detector's median time; dlib's group
    photos and dogs.jpg through the pipeline."""
    vf = val_faces(data, limit)
    teacher = _teacher_boxes(data, cache)
    res: dict = {}
    for name in names:
        kd = _pipeline(name, threads)
        det = kd.detector
        r: dict = {}
        for src, items in vf.items():
            found = found_p = fa_p = 0
            t = []
            for img, _, p5 in tqdm(items, desc=f"{name} {src}", leave=False):
                im = read_image(img)
                gray = to_gray(im)
                t0 = time.perf_counter()
                dets = det(gray)
                t.append(time.perf_counter() - t0)
                ref = box_from_points(p5)
                found += any(_hit(d.box, ref) for d in dets)
                faces = kd.detect(im)
                found_p += any(_hit(f.box, ref) for f in faces)
                others = teacher.get(Path(img).relative_to(data).as_posix(), [])
                fa_p += sum(not (_hit(f.box, ref) or any(_centre_in(f.box, b) or _hit(f.box, b) for b in others))
                            for f in faces)
            n = max(len(items), 1)
            r[src] = {"faces": len(items), "found": found, "recall": found / n, "found_pipeline": found_p,
                      "recall_pipeline": found_p / n, "median_ms": 1000 * float(np.median(t))}
            if src != "mtfl" and teacher:
                r[src]["false_alarms_pipeline"] = fa_p
        faces = fa = 0
        hits = 0
        for img, boxes in dlib_photos(data):
            dets = kd.detect(img)
            faces += len(boxes)
            hits += sum(any(_hit(f.box, b) for f in dets) for b in boxes)
            fa += sum(not any(_hit(f.box, b) for b in boxes) for f in dets)
        r["dlib_photos"] = {"faces": faces, "found": hits, "false_alarms": fa}
        r["dogs"] = len(kd.detect(data / "photos" / "dogs.jpg"))
        res[name] = r
    return res


def time_photo(data: Path, names: list[str], runs: int = 30) -> dict:
    """Median ms for a 640x480 photo (a 300-W validation photo resized): detector alone, whole pipeline."""
    items = val_faces(data)["300w+lfpw"][:10]
    imgs = [cv2.resize(read_image(p), (640, 480)) for p, _, _ in items]
    out = {}
    for name in names:
        kd = _pipeline(name)
        td, tp = [], []
        for _ in range(runs // len(imgs) + 1):
            for im in imgs:
                g = to_gray(im)
                t0 = time.perf_counter()
                kd.detector(g)
                td.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                kd.detect(im)
                tp.append(time.perf_counter() - t0)
        out[name] = {"detector_ms": 1000 * float(np.median(td)), "pipeline_ms": 1000 * float(np.median(tp))}
    return out


def nme_end_to_end(data: Path, variants: dict[str, dict]) -> dict:
    """300-W + LFPW validation NME with each pipeline variant, on the faces every variant found."""
    items = val_faces(data)["300w+lfpw"]
    preds: dict[str, list] = {k: [] for k in variants}
    dets = {k: KeypointDetector(threads=1, **v) for k, v in variants.items()}
    gts = []
    for img, kp, p5 in tqdm(items, desc="nme", leave=False):
        im = read_image(img)
        ref = box_from_points(p5)
        row = {}
        for k, kd in dets.items():
            faces = [f for f in kd.detect(im) if _hit(f.box, ref)]
            row[k] = faces[0].keypoints if faces else None
        if all(v is not None for v in row.values()):
            gts.append(kp)
            for k in variants:
                preds[k].append(row[k])
    gt = np.stack(gts)
    return {"faces": len(gts), **{k: float(np.mean(nme_per_face(np.stack(v), gt))) for k, v in preds.items()}}


def frame_error(data: Path) -> dict:
    """How the learned detector's crops relate to the labelled keypoints' frame (the statistics
    ``bench/fit_haar_boxes.py`` fitted for Haar): on the 300-W + LFPW validation faces found, the
    five-point frame's log side ratio, centre offset (in sides) and roll error, and the box ->
    frame constants (side, dx, dy in box widths) a box-only crop would need."""
    import math

    from ...detection.learned import LearnedDetector
    from ...geometry import frame_from_keypoints
    from ...pipeline import detection_frame

    det = LearnedDetector(threads=1)
    rows, boxes = [], []
    for img, kp, p5 in tqdm(val_faces(data)["300w+lfpw"], desc="frames", leave=False):
        ref = box_from_points(p5)
        dets = [d for d in det(read_image(img)) if _hit(d.box, ref)]
        if not dets:
            continue
        d = dets[0]
        kf = frame_from_keypoints(kp, rotate=True)
        f = detection_frame(d)
        rows.append((math.log(f.side / kf.side), (f.cx - kf.cx) / kf.side, (f.cy - kf.cy) / kf.side,
                     math.remainder(f.angle - kf.angle, 2 * math.pi)))
        x0, y0, x1, y1 = d.box
        w = x1 - x0
        boxes.append((kf.side / w, (kf.cx - (x0 + x1) / 2) / w, (kf.cy - (y0 + y1) / 2) / w))
    a, b = np.array(rows), np.array(boxes)
    mad = lambda v: float(1.4826 * np.median(np.abs(v - np.median(v))))  # noqa: E731
    return {"faces": len(a),
            "points_frame": {"log_side_median": float(np.median(a[:, 0])), "log_side_std": float(a[:, 0].std()),
                             "log_side_mad": mad(a[:, 0]), "centre_std": float(a[:, 1:3].std()),
                             "centre_mad": mad(a[:, 1:3].reshape(-1)), "roll_std_deg": float(np.degrees(a[:, 3].std()))},
            "box_to_frame": {"BOX_SIDE": float(np.median(b[:, 0])), "BOX_DX": float(np.median(b[:, 1])),
                             "BOX_DY": float(np.median(b[:, 2])),
                             "log_side_std": float(np.log(b[:, 0] / np.median(b[:, 0])).std()),
                             "centre_std": float(np.concatenate([(b[:, 1] - np.median(b[:, 1])) / b[:, 0],
                                                                 (b[:, 2] - np.median(b[:, 2])) / b[:, 0]]).std())}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--detectors", nargs="+", default=["learned", "haar"])
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--what", nargs="+", default=["detect", "time", "frames", "nme"])
    ap.add_argument("--teacher-cache", default=None, help="folder of the teacher's teacher.json (default ~/.cache/fkp-detector)")
    args = ap.parse_args(argv)
    data = Path(args.data)
    out = {}
    if "detect" in args.what:
        out["detect"] = measure(data, args.detectors, args.limit,
                                cache=Path(args.teacher_cache) if args.teacher_cache else None)
    if "time" in args.what:
        out["time"] = time_photo(data, args.detectors)
    if "frames" in args.what:
        out["frames"] = frame_error(data)
    if "nme" in args.what:
        out["nme"] = nme_end_to_end(data, {
            "haar": {"detector": "haar"},
            "learned_points_skip": {"detector": "learned", "skip_first_pass": True},
            "learned_points_2pass": {"detector": "learned"},
        })
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
