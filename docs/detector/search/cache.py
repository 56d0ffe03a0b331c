"""Cache raw peaks of the shipped detector at several scales."""

import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, "src")
from facekeypoints.detection.learned import LearnedDetector, _gray8, decode, letterbox
from facekeypoints.imageio import read_image
from facekeypoints.training.data.landmarks import in_validation
from facekeypoints.training.detector.data import (
    SPLIT_SEED,
    VAL_FRACTION,
    _key,
    _labelled_photos,
    _merge_teacher,
    _mtfl,
    _teacher_labels,
)
from facekeypoints.training.detector.measure import dlib_photos, val_faces

SCALES = [160, 224, 256, 320, 384, 448, 512, 640]
data = Path("../shared/data")
det = LearnedDetector(threads=1)


def run(gray):
    res = {}
    for S in SCALES:
        x, f = letterbox(gray, S)
        out = det.session.run(None, {det.input_name: x})[0][0]
        s, b, p = decode(out, 0.05, 500)
        res[S] = (s, b / f, p / f)
    return res


items = []  # (set, path, faces(k,5,2), ignore(m,4))
vf = val_faces(data)
for src, lst in vf.items():
    for img, _, p5 in lst:
        items.append(("val_" + src, img, p5[None].astype(np.float32), np.zeros((0, 4))))
# training pictures with teacher labels
lab = _labelled_photos(data)
teach = _teacher_labels(lab, None, Path.home() / ".cache/fkp-detector", data)
rng = np.random.default_rng(0)
tr = {"300w": [], "lfpw": [], "udacity": []}
for img, p5, source, group in lab:
    if not in_validation(group, VAL_FRACTION, SPLIT_SEED):
        faces, ign = _merge_teacher(p5, teach.get(_key(img, data), []))
        tr[source].append((img, faces, ign))
for src, n in (("300w", 400), ("lfpw", 250), ("udacity", 400)):
    for k in rng.choice(len(tr[src]), n, replace=False):
        img, faces, ign = tr[src][k]
        items.append(("train_" + ("photo" if src != "udacity" else src), img, faces, ign))
mt = [m for m in _mtfl(data) if not in_validation(m[3], VAL_FRACTION, SPLIT_SEED)]
for k in rng.choice(len(mt), 600, replace=False):
    img, p5, _, _ = mt[k]
    items.append(("train_mtfl", img, p5[None], np.zeros((0, 4))))
for p, boxes in dlib_photos(data):
    items.append(("dlib", p, np.array(boxes, np.float32), np.zeros((0, 4))))
items.append(("dogs", data / "photos" / "dogs.jpg", np.zeros((0, 5, 2)), np.zeros((0, 4))))
print(len(items), flush=True)
out = []
t0 = time.time()
for i, (st, img, faces, ign) in enumerate(items):
    g = _gray8(read_image(img))
    out.append({"set": st, "path": str(img), "faces": faces, "ignore": ign, "shape": g.shape, "raw": run(g)})
    if i % 500 == 0:
        print(i, time.time() - t0, flush=True)
pickle.dump(out, open("runs/cache_real.pkl", "wb"))
print("done", time.time() - t0)
