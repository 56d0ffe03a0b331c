import itertools
import sys

sys.path.insert(0, "docs/detector/search")
sys.path.insert(0, "src")
from ana import *

items = grid_items()


def gate(vmin, smin, fmax):
    return lambda s, b, p, k, F: (F[:, 0] >= vmin) & (F[:, 1] >= smin) & (F[:, 2] <= fmax)


for A, B, c, tA, tB, fmax in itertools.product(
    [224, 256], [448, 512], [32, 40, 48], [0.25, 0.3, 0.35], [0.3, 0.35, 0.4, 0.45, 0.5], [0.015, 0.02, 0.025]
):
    r = score_g(items, [(A, tA, c, 1e9), (B, tB, 0, c * B / A)], labelled_only=True, gate=gate(0.25, 0.67, fmax))
    print(
        A,
        B,
        c,
        tA,
        tB,
        fmax,
        *[v for k in ("synth_crowd", "train_photo", "train_udacity", "train_mtfl") for v in r[k][:3]],
        flush=True,
    )
