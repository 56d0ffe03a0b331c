"""Synthetic crowds from training pictures only: 512x384 canvases of 3x3-5x5 mosaics
(data.synthesize's tile placer), raw peaks cached at several scales."""

import pickle
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, "src")
from facekeypoints.detection.learned import LearnedDetector, decode, letterbox
from facekeypoints.imageio import read_image
from facekeypoints.training.data.landmarks import in_validation
from facekeypoints.training.detector.data import (
    SPLIT_SEED,
    VAL_FRACTION,
    Photo,
    SynthConfig,
    _key,
    _labelled_photos,
    _merge_teacher,
    _mtfl,
    _pick,
    _place,
    _teacher_labels,
    label_tile,
    pools_of,
)

SCALES = [160, 224, 256, 320, 384, 448, 512, 640]
data = Path("../shared/data")
det = LearnedDetector(threads=1)
rng = np.random.default_rng(1)
lab = _labelled_photos(data)
teach = _teacher_labels(lab, None, Path.home() / ".cache/fkp-detector", data)
photos = []
tr = [x for x in lab if not in_validation(x[3], VAL_FRACTION, SPLIT_SEED)]
for k in rng.choice(len(tr), 700, replace=False):
    img, p5, source, group = tr[k]
    faces, ign = _merge_teacher(p5, teach.get(_key(img, data), []))
    g = cv2.cvtColor(read_image(img), cv2.COLOR_BGR2GRAY)
    f = min(1.0, 400 / max(g.shape))
    if f < 1:
        g = cv2.resize(g, (round(g.shape[1] * f), round(g.shape[0] * f)), interpolation=cv2.INTER_AREA)
    photos.append(Photo(g, faces * f, ign * f, source, str(img)))
mt = [m for m in _mtfl(data) if not in_validation(m[3], VAL_FRACTION, SPLIT_SEED)]
for k in rng.choice(len(mt), 300, replace=False):
    img, p5, _, _ = mt[k]
    photos.append(
        Photo(
            cv2.cvtColor(read_image(img), cv2.COLOR_BGR2GRAY), p5[None], np.zeros((0, 4), np.float32), "mtfl", str(img)
        )
    )
pools = pools_of(photos)
cfg = SynthConfig(min_face=12.0, background_p=0.15)


def canvas(W=512, H=384):
    nx = int(rng.integers(3, 6))
    ny = max(2, round(nx * 0.75))
    ex = np.linspace(0, W, nx + 1).round().astype(int)
    ey = np.linspace(0, H, ny + 1).round().astype(int)
    c = np.zeros((H, W), np.uint8)
    faces, ignore = [], []
    for r in range(ny):
        for q in range(nx):
            x0, x1, y0, y1 = ex[q], ex[q + 1], ey[r], ey[r + 1]
            tile, pts, ign = _place(_pick(rng, pools, cfg), x1 - x0, y1 - y0, 4, rng, cfg)
            c[y0:y1, x0:x1] = tile
            label_tile(pts, ign, (x0, y0, x1, y1), cfg.min_face, faces, ignore)
    return c, np.array(faces, np.float32).reshape(-1, 5, 2), np.array(ignore, np.float32).reshape(-1, 4)


out = []
for i in range(300):
    g, faces, ign = canvas()
    res = {}
    for S in SCALES:
        x, f = letterbox(g, S)
        o = det.session.run(None, {det.input_name: x})[0][0]
        s, b, p = decode(o, 0.05, 500)
        res[S] = (s, b / f, p / f)
    out.append(
        {
            "set": "synth_crowd",
            "path": f"synth{i}",
            "faces": faces,
            "ignore": ign,
            "shape": g.shape,
            "raw": res,
            "gray": g,
        }
    )
    if i < 6:
        cv2.imwrite(f"runs/synth{i}.jpg", g)
pickle.dump(out, open("runs/cache_synth.pkl", "wb"))
print("done", sum(len(o["faces"]) for o in out))
