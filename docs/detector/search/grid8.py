"""Session 7's grid for the retrained detector (runs/cache_*_g.pkl from cache.py, synth.py, gates.py with
the new network and keypoint model): the shipped overlapping bands (coarse pass keeps faces >= 32 px at
224, the fine pass those under 100 px at 448, scaled for other fine sides), each pass's threshold, the
mirror gap, and a looser mirror gap for small faces (box side under SMALL px in the photo), whose
upscaled crops give the keypoint model less to agree on. Output: one line per setting, as grid4.py."""

import itertools
import sys

import numpy as np

sys.path.insert(0, "docs/detector/search")
sys.path.insert(0, "src")
from ana import *

items = grid_items()
SMALL = 48.0


def gate(fmax, fsmall):
    def g(s, b, p, k, F):
        side = b[:, 2] - b[:, 0]
        lim = np.where(side < SMALL, fsmall, fmax)
        return (F[:, 0] >= 0.25) & (F[:, 1] >= 0.67) & (F[:, 2] <= lim)

    return g


for B, tA, tB, fmax, fs in itertools.product(
    [384, 448], [0.25, 0.3, 0.35], [0.3, 0.35, 0.4, 0.5], [0.015, 0.02, 0.025], [0.0, 0.03, 0.04]
):
    fsmall = fs or fmax
    r = score_g(items, [(224, tA, 32, 1e9), (B, tB, 0, 100 * B / 448)], labelled_only=True, gate=gate(fmax, fsmall))
    print(
        224, B, tA, tB, fmax, fsmall,
        *[v for k in ("synth_crowd", "train_photo", "train_udacity", "train_mtfl") for v in r[k][:3]],
        flush=True,
    )
