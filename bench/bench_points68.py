"""68 iBUG landmarks end to end: ``KeypointDetector(points=68)`` on the 300-W and LFPW validation
photos against their .pts labels, and dlib's HOG detector + ``shape_predictor_68_face_landmarks`` on
the same photos when an interpreter with dlib is given (it runs this same file in ``--dlib-dump`` mode,
so dlib never has to share a Python with facekeypoints).

NME = mean error over the 68 points / outer-eye-corner distance (points 36-45, 300-W's normalisation).
A system finds the labelled face when one of its faces has its eye midpoint within one
outer-eye-corner distance of the labelled one (the nearest is scored). Also scored: our model on
dlib's own boxes (``det.keypoints(image, boxes)``), the path a dlib user switching over takes.
Caveat: dlib's model was trained on 300-W, whose training set holds these AFW, HELEN and LFPW photos.

    python bench/bench_points68.py [--dlib-python /work/venvs/dlib/bin/python] [--every 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def _dlib_dump(out: str, photos: list[str]) -> None:
    """Run under an interpreter with dlib: boxes and 68 points per photo, and per-face predictor time."""
    import dlib
    import face_recognition_models

    det = dlib.get_frontal_face_detector()
    pred = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    faces, times, photo_ms = {}, [], []
    for path in photos:
        img = dlib.load_rgb_image(path)
        t0 = time.perf_counter()
        rects = det(img, 1)
        found = []
        for r in rects:
            t = time.perf_counter()
            s = pred(img, r)
            times.append(time.perf_counter() - t)
            found.append({"box": [r.left(), r.top(), r.right(), r.bottom()],
                          "pts": [[s.part(i).x, s.part(i).y] for i in range(68)]})
        photo_ms.append(1000 * (time.perf_counter() - t0))
        faces[path] = found
    Path(out).write_text(json.dumps({"faces": faces, "ms_per_face_model": 1000 * float(np.median(times)),
                                     "ms_per_photo": float(np.median(photo_ms))}))


def _validation_photos(data: Path, every: int) -> dict[str, list[str]]:
    from facekeypoints.training.data.landmarks import in_validation, load_300w, split_by_group

    w300 = [str(s.image) for s in split_by_group(load_300w(data / "300w"), 0.15, 0)[1]]
    lfpw = [str(p) for p in sorted((data / "lfpw").rglob("*.jpg")) if in_validation("lfpw/" + p.stem, 0.15, 0)]
    return {"300w": w300[::every], "lfpw": lfpw[::every]}


def _nme68(pred, labels: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(pred, np.float64) - labels, axis=1).mean()
                 / np.linalg.norm(labels[45] - labels[36]))


def _eyes(points) -> np.ndarray:
    """Midpoint of both eyes' contours (36-47)."""
    return np.asarray(points, np.float64)[36:48].mean(0)


def _pick(candidates: list[np.ndarray], labels: np.ndarray) -> int | None:
    """Index of the candidate (68, 2) whose eye midpoint is nearest the labelled one, within one eye distance."""
    iod = np.linalg.norm(labels[45] - labels[36])
    d = [np.linalg.norm(_eyes(c) - _eyes(labels)) for c in candidates]
    return int(np.argmin(d)) if d and min(d) < iod else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--dlib-python", default=None, help="an interpreter with dlib and face_recognition_models")
    ap.add_argument("--every", type=int, default=1, help="every Nth validation photo (default: all)")
    ap.add_argument("--model", default=None, help="68-point ONNX model (default: the shipped points68.onnx)")
    ap.add_argument("--dlib-dump", nargs="+", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.dlib_dump:
        _dlib_dump(args.dlib_dump[0], args.dlib_dump[1:])
        return

    import facekeypoints as fk
    from facekeypoints.training.data.landmarks import read_pts

    sets = _validation_photos(Path(args.data), args.every)
    dl: dict = {}
    if args.dlib_python:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "dlib.json"
            subprocess.run([args.dlib_python, __file__, "--dlib-dump", str(out), *sum(sets.values(), [])], check=True)
            dl = json.loads(out.read_text())
    det = fk.KeypointDetector(args.model, points=68, threads=1)
    report: dict = {"load_average": os.getloadavg(), "model": str(det.model.path)}
    photo_ms = []
    for name, photos in sets.items():
        ours, shared, dlib_found = [], [], 0
        for path in photos:
            labels = read_pts(Path(path).with_suffix(".pts")).astype(np.float64)
            t = time.perf_counter()
            faces = det.detect(path)
            photo_ms.append(1000 * (time.perf_counter() - t))
            i = _pick([f.keypoints for f in faces], labels)
            if i is not None:
                ours.append(_nme68(faces[i].keypoints, labels))
            theirs = dl.get("faces", {}).get(path, [])
            j = _pick([f["pts"] for f in theirs], labels)
            dlib_found += j is not None
            if i is not None and j is not None:
                on_box = det.keypoints(path, [theirs[j]["box"]])[0]
                shared.append((ours[-1], _nme68(on_box, labels), _nme68(theirs[j]["pts"], labels)))
        row = {"photos": len(photos), "found": len(ours), "nme68_mean": float(np.mean(ours)),
               "nme68_median": float(np.median(ours)), "over_10pct": float(np.mean(np.array(ours) > 0.1))}
        if shared:
            s = np.array(shared)
            row.update({"dlib_found": dlib_found, "both_found": len(s),
                "both_nme68_mean_ours_ours_on_dlib_boxes_dlib": s.mean(0).round(4).tolist(),
                "both_nme68_median_ours_ours_on_dlib_boxes_dlib": np.median(s, 0).round(4).tolist(),
                "ours_closer_share": float((s[:, 0] < s[:, 2]).mean())})
        report[name] = row
    report["ms_per_photo_median"] = float(np.median(photo_ms))
    if dl:
        report["dlib_ms_per_photo_median"] = dl["ms_per_photo"]
        report["dlib_predictor_ms_per_face_median"] = dl["ms_per_face_model"]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
