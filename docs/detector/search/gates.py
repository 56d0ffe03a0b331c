"""For every cached candidate peak with score >= 0.2: verifier probability and keypoint-span ratio
(the pipeline's gates, as KeypointDetector computes them)."""

import pickle
import sys
import time

import numpy as np

sys.path.insert(0, "src")
import os

from facekeypoints.detection.base import Detection
from facekeypoints.detection.learned import FIVE_INDEX, _gray8
from facekeypoints.geometry import crop, frame_from_keypoints
from facekeypoints.imageio import read_image
from facekeypoints.pipeline import KeypointDetector, detection_frame
from facekeypoints.schema import flip_keypoints

LIMIT = int(os.environ.get("LIMIT", 0))
kd = KeypointDetector(detector="learned", threads=1)
for name in sys.argv[1:]:
    items = pickle.load(open(f"runs/cache_{name}.pkl", "rb"))
    if LIMIT:
        items = items[:LIMIT]
    if name == "synth":
        sys.path.insert(0, "docs/detector/search")
    t0 = time.time()
    for n, it in enumerate(items):
        if name == "synth":
            g = it.get("gray")
            if g is None:
                continue
        else:
            g = _gray8(read_image(it["path"]))
        it["gates"] = {}
        for S, (s, b, p) in it["raw"].items():
            m = s >= 0.2
            vp, sp, flipd, agree, kpiod = (np.zeros(len(s), np.float32) for _ in range(5))
            idx = np.nonzero(m)[0]
            if len(idx):
                dets = [
                    Detection(tuple(map(float, b[i])), float(s[i]), 0.0, tuple(map(tuple, p[i].astype(float))))
                    for i in idx
                ]
                frames = [detection_frame(d) for d in dets]
                crops = np.stack([crop(g, f) for f in frames])
                vp[idx] = kd.verifier.predict(crops)
                k1 = kd._predict(kd.model, g, frames, crops)
                fr2 = [frame_from_keypoints(k, rotate=True) for k in k1]
                c2 = np.stack([crop(g, f) for f in fr2])
                both = kd.model.predict(np.concatenate([c2, c2[:, :, ::-1]]))
                nc = len(c2)
                a, bm = both[:nc], flip_keypoints(both[nc:], c2.shape[2])
                kps = np.stack([f.to_image((x + y) / 2) for f, x, y in zip(fr2, a, bm)])
                sp[idx] = [frame_from_keypoints(k).side / f.side for k, f in zip(kps, frames)]
                flipd[idx] = [np.linalg.norm(x - y, axis=1).mean() / 96 for x, y in zip(a, bm)]
                k5 = kps[:, FIVE_INDEX]
                iod = np.linalg.norm(p[idx, 0] - p[idx, 1], axis=1) + 1e-6
                agree[idx] = np.linalg.norm(k5 - p[idx], axis=2).mean(1) / iod
                kpiod[idx] = np.linalg.norm(k5[:, 0] - k5[:, 1], axis=1) / (b[idx, 2] - b[idx, 0])
            it["gates"][S] = (vp, sp, flipd, agree, kpiod)
        if n % 100 == 0:
            print(name, n, time.time() - t0, flush=True)
    pickle.dump(items, open(f"runs/cache_{name}_g.pkl", "wb"))
