import pickle
import sys

sys.path.insert(0, "docs/detector/search")
sys.path.insert(0, "src")
from ana import *

items = (
    [it for it in pickle.load(open("runs/cache_real.pkl", "rb")) if it["set"].startswith(sys.argv[1])]
    if sys.argv[1] != "synth"
    else []
)
if len(sys.argv) > 2:
    items += [it for it in pickle.load(open("runs/cache_synth.pkl", "rb"))]
bins = [0, 12, 16, 20, 24, 30, 40, 55, 75, 100, 130, 170, 220, 300, 1e9]
import collections

tot = collections.Counter()
f3 = collections.Counter()
f5 = collections.Counter()
fa3 = collections.Counter()
fa5 = collections.Counter()
for it in items:
    h, w = it["shape"]
    ref = refs(it)
    for S, (s, b, p) in it["raw"].items():
        f = min(S / max(h, w), 2.0)
        for q in ref:
            k = np.digitize((q[2] - q[0]) * f, bins)
            tot[k] += 1
            m = [hit(d, q) for d in b]
            sc = max([s[i] for i in range(len(s)) if m[i]], default=0)
            f3[k] += sc >= 0.3
            f5[k] += sc >= 0.5
        for i, d in enumerate(b):
            if any(hit(d, q) for q in ref):
                continue
            c = ((d[0] + d[2]) / 2, (d[1] + d[3]) / 2)
            if any(g[0] <= c[0] <= g[2] and g[1] <= c[1] <= g[3] for g in it["ignore"]):
                continue
            # also skip dets overlapping a ref face (duplicates at another size)
            if any(q[0] <= c[0] <= q[2] and q[1] <= c[1] <= q[3] for q in ref):
                continue
            k = np.digitize((d[2] - d[0]) * f, bins)
            fa3[k] += s[i] >= 0.3
            fa5[k] += s[i] >= 0.5
for k in sorted(tot):
    print(
        f"{bins[k - 1]:>4}-{bins[k]:<6} n={tot[k]:5d} rec@.3={f3[k] / tot[k]:.3f} rec@.5={f5[k] / tot[k]:.3f}  fa@.3={fa3[k]} fa@.5={fa5[k]}"
    )
