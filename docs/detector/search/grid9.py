"""Session 8: the keypoint-span gate for the learned detector's boxes. MIN_KEYPOINT_SCALE (0.67) was
measured on Haar's boxes; a crop from the detector's five points is framed like the keypoints' own, so
true faces may sit in a narrower band. Shipped passes, thresholds and mirror gap; the span minimum and
the verifier minimum vary. Output: one line per setting, as grid8.py (crowds, photos, Udacity, MTFL:
faces, found, false alarms)."""

import itertools
import sys

sys.path.insert(0, "docs/detector/search")
sys.path.insert(0, "src")
from ana import *

items = grid_items()


def gate(vmin, smin, smax, fmax=0.02):
    return lambda s, b, p, k, F: (F[:, 0] >= vmin) & (F[:, 1] >= smin) & (F[:, 1] <= smax) & (F[:, 2] <= fmax)


for vmin, smin, smax in itertools.product([0.25, 0.5], [0.67, 0.7, 0.72, 0.75, 0.78, 0.8], [9.0, 1.4, 1.3]):
    r = score_g(items, [(224, 0.3, 32, 1e9), (448, 0.3, 0, 100)], labelled_only=True, gate=gate(vmin, smin, smax))
    print(vmin, smin, smax,
          *[v for k in ("synth_crowd", "train_photo", "train_udacity", "train_mtfl") for v in r[k][:3]], flush=True)
