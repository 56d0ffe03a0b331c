import pickle
import sys

sys.path.insert(0, "docs/detector/search")
sys.path.insert(0, "src")
from ana import *

real = pickle.load(open("runs/cache_real_g.pkl", "rb"))
items = [it for it in real if it["set"].startswith("val") or it["set"] in ("dlib", "dogs")]


def gate(vmin, smin, fmax):
    return lambda s, b, p, k, F: (F[:, 0] >= vmin) & (F[:, 1] >= smin) & (F[:, 2] <= fmax)


for cfg in sys.argv[1:]:
    A, B, c, tA, tB, fmax = map(float, cfg.split(","))
    A, B = int(A), int(B)
    fl = []
    r = score_g(items, [(A, tA, c, 1e9), (B, tB, 0, c * B / A)], gate=gate(0.25, 0.67, fmax), fa_list=fl)
    print(cfg, end=" ")
    show(r)
    for x in fl:
        if x[0] in ("dlib", "dogs"):
            print("   ", x)
