"""Cost per face of head pose, openness and alignment, against one keypoint-model pass.

Median over many calls on real faces, one thread (``OMP_NUM_THREADS=1``, ``cv2.setNumThreads(1)``,
onnxruntime ``threads=1``): ``Face.pose`` on the 300-W validation faces (their labelled 15
keypoints, each photo's own size as camera), ``Face.openness`` on Udacity faces (labelled 68
landmarks), ``fk.align`` to 112x112, and one keypoint-model call on a 96x96 crop (batch 1) as the
peer. Each is timed alone (its own loop: the call's own cost) and interleaved (a model pass, then
pose and openness, as the video loop runs them: the model has just evicted the caches), so the
ratio holds on a shared machine.

    OMP_NUM_THREADS=1 python bench/bench_use.py [--data ../shared/data] [--repeats 3000]

``--accuracy`` instead runs the detector on every 300-W validation photo and reports, by the labels'
yaw proxy (docs/benchmarks.md), how far the pose from detected keypoints is from the pose of the
labelled keypoints, and how far the eye centres re-detected in each aligned crop are from the
template's (the figures of docs/use.md; a few minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

import facekeypoints as fk
from facekeypoints.geometry import crop, frame_from_keypoints
from facekeypoints.imageio import read_image, to_gray
from facekeypoints.runtime import OnnxKeypointModel
from facekeypoints.training.data.landmarks import load_300w, split_by_group

ROOT = Path(__file__).resolve().parents[1]
_BINS = ((0.0, 0.1), (0.1, 0.2), (0.2, 1.0))


def yaw_proxy(kp: np.ndarray) -> float:
    """(nose to left outer eye corner - nose to right outer eye corner) / their sum."""
    dl, dr = (float(np.linalg.norm(kp[10] - kp[i])) for i in (3, 5))
    return (dl - dr) / (dl + dr)


def accuracy(data: Path) -> dict:
    from facekeypoints.alignment import template
    from facekeypoints.pose import head_pose

    det = fk.KeypointDetector(threads=1)
    rows = []
    for s in split_by_group(load_300w(data / "300w"), 0.15, 0)[1]:
        img = read_image(s.image)
        kp, (h, w) = s.keypoints, img.shape[:2]
        mid, iod = (kp[0] + kp[1]) / 2, float(np.linalg.norm(kp[3] - kp[5]))
        near = [f for f in det.detect(img) if np.linalg.norm(f.points15[:2].mean(0) - mid) < 0.5 * iod]
        if not near:
            rows.append((yaw_proxy(kp), None, None))
            continue
        f = min(near, key=lambda f: float(np.linalg.norm(f.points15[:2].mean(0) - mid)))
        diff = np.abs(np.subtract(f.pose, head_pose(kp, (w, h))))
        again = det.detect(fk.align(img, f))
        eye = (float(np.linalg.norm(again[0].points15[[1, 0]] - template()[:2], axis=1).max())
               if again else None)
        rows.append((yaw_proxy(kp), diff, eye))
    out = {}
    for lo, hi in (*_BINS, (0.0, 1.0)):
        sel = [r for r in rows if lo <= abs(r[0]) < hi]
        found = [r for r in sel if r[1] is not None]
        d = np.array([r[1] for r in found])
        e = np.array([r[2] for r in found if r[2] is not None])
        out[f"abs(yaw proxy) {lo}-{hi}"] = {
            "faces": len(sel), "found": len(found),
            "pose_vs_labels_median_deg": dict(zip(("yaw", "pitch", "roll"), np.round(np.median(d, 0), 2).tolist())),
            "crops_redetected": len(e), "eye_error_median_px": round(float(np.median(e)), 2),
            "eye_within_4px": round(float((e < 4).mean()), 3), "eye_error_max_px": round(float(e.max()), 2)}
    return out


def _ms(fn, *a) -> float:
    t = time.perf_counter()
    fn(*a)
    return 1000 * (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--repeats", type=int, default=3000)
    ap.add_argument("--accuracy", action="store_true", help="pose and alignment accuracy instead of cost")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    if args.accuracy:
        print(json.dumps(accuracy(args.data), indent=2))
        return
    val = split_by_group(load_300w(args.data / "300w"), 0.15, 0)[1][:40]
    images = [read_image(s.image) for s in val]
    faces15 = [fk.Face((0, 0, 1, 1), None, s.keypoints, image_size=(im.shape[1], im.shape[0]))
               for s, im in zip(val, images)]
    rows = (args.data / "udacity" / "training_frames_keypoints.csv").read_text().splitlines()[1:41]
    faces68 = [fk.Face((0, 0, 1, 1), None, np.array(r.split(",")[1:], np.float32).reshape(68, 2), image_size=(224, 224))
               for r in rows]
    crops = np.stack([crop(to_gray(im), frame_from_keypoints(s.keypoints, rotate=True)) for s, im in zip(val, images)])
    model = OnnxKeypointModel(threads=1)
    for i in range(50):  # warm-up
        faces15[i % 40].pose, faces68[i % 40].openness, model.predict(crops[:1]), fk.align(images[0], faces15[0])
    ops = {"pose": lambda j: faces15[j].pose, "openness": lambda j: faces68[j].openness,
           "pose_68": lambda j: faces68[j].pose, "model": lambda j: model.predict(crops[j:j + 1])}
    alone = {}
    for k, fn in ops.items():  # each in its own loop: warm caches, the cost of the call itself
        alone[k] = float(np.median([_ms(fn, i % 40) for i in range(args.repeats)]))
    alone["align"] = float(np.median([_ms(fk.align, images[i % 40], faces15[i % 40])
                                      for i in range(max(args.repeats // 5, 1))]))
    t = {k: [] for k in ("pose", "openness", "pose_68", "model")}
    for i in range(args.repeats):  # interleaved, as in the video loop: a model pass, then the face's outputs
        j = i % 40
        t["model"].append(_ms(model.predict, crops[j:j + 1]))
        t["pose"].append(_ms(lambda f: f.pose, faces15[j]))  # a 15-point face
    for i in range(args.repeats):
        j = i % 40
        model.predict(crops[j:j + 1])
        t["pose_68"].append(_ms(lambda f: f.pose, faces68[j]))  # a 68-point face: 68 -> 15, the fit
        t["openness"].append(_ms(lambda f: f.openness, faces68[j]))
    med = {k: float(np.median(v)) for k, v in t.items()}
    out = {"load_average": [round(x, 2) for x in os.getloadavg()], "repeats": args.repeats,
           "ms_median_alone": {k: round(v, 4) for k, v in alone.items()},
           "pose_plus_openness_ms_alone": round(alone["pose_68"] + alone["openness"], 4),
           "ms_median": {k: round(v, 4) for k, v in med.items()},
           "ms_p90": {k: round(float(np.percentile(v, 90)), 4) for k, v in t.items()},
           "pose_plus_openness_ms": round(med["pose_68"] + med["openness"], 4),
           "pose_plus_openness_over_model": round((med["pose_68"] + med["openness"]) / med["model"], 3)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
