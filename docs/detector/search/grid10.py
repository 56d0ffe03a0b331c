"""Session 8: the verifier retrained with the learned detector's own false alarms on the training photos
(train_verifier.py: detector negatives). Rerun gates.py first (it scores the candidates with the
installed verifier). Shipped passes and thresholds; the verifier minimum and the mirror gap vary.
Output: one line per setting, as grid8.py (crowds, photos, Udacity, MTFL: faces, found, false alarms)."""

import itertools
import sys

sys.path.insert(0, "docs/detector/search")
sys.path.insert(0, "src")
from ana import *

items = grid_items()


def gate(vmin, fmax):
    return lambda s, b, p, k, F: (F[:, 0] >= vmin) & (F[:, 1] >= 0.67) & (F[:, 2] <= fmax)


for vmin, fmax in itertools.product([0.1, 0.25, 0.4, 0.5, 0.6, 0.75], [0.015, 0.02, 0.025, 0.03]):
    r = score_g(items, [(224, 0.3, 32, 1e9), (448, 0.3, 0, 100)], labelled_only=True, gate=gate(vmin, fmax))
    print(224, 448, 0.3, 0.3, vmin, fmax,
          *[v for k in ("synth_crowd", "train_photo", "train_udacity", "train_mtfl") for v in r[k][:3]], flush=True)
