import sys

sys.path.insert(0, "docs/detector/search")
sys.path.insert(0, "src")
import ana
from ana import *

tr = grid_items()
g = lambda s, b, p, k, F: (F[:, 0] >= 0.25) & (F[:, 1] >= 0.67) & (F[:, 2] <= 0.02)
orig = ana.nms_indices


def coarse_first(boxes, scores, iou, _k=[None]):
    return orig(boxes, scores, iou)


def combine_cf(it, passes, nms_iou=0.4, gate=None):
    # candidates ordered: coarse pass first (NMS by (pass rank, score)), gate BEFORE nms as the sim does
    s, b, p, k, F = [], [], [], [], []
    h, w = it["shape"]
    for rank, (S, thr, lo, hi) in enumerate(passes):
        ss, bb, pp = it["raw"][S]
        G = np.stack(it["gates"][S], 1)
        f = min(S / max(h, w), 2.0)
        side = (bb[:, 2] - bb[:, 0]) * f
        m = (ss >= thr) & (side >= lo) & (side < hi)
        s.append(ss[m] + (len(passes) - rank) * 10)
        b.append(bb[m])
        p.append(pp[m])
        k.append(np.full(m.sum(), S))
        F.append(G[m])
    s, b, p, k, F = map(np.concatenate, (s, b, p, k, F))
    if len(s):
        m = gate(s % 10, b, p, k, F)
        s, b, p, k, F = s[m], b[m], p[m], k[m], F[m]
    if len(s) == 0:
        return s, b, p, k, F
    keep = orig(b, s, nms_iou)
    return s[keep] % 10, b[keep], p[keep], k[keep], F[keep]


for name, c, cf in [
    ("partition 40/80", [(224, 0.3, 40, 1e9), (448, 0.3, 0, 80)], False),
    ("overlap 32/100 score-nms", [(224, 0.3, 32, 1e9), (448, 0.3, 0, 100)], False),
    ("overlap 32/100 coarse-first", [(224, 0.3, 32, 1e9), (448, 0.3, 0, 100)], True),
    ("overlap 36/90 coarse-first", [(224, 0.3, 36, 1e9), (448, 0.3, 0, 90)], True),
]:
    ana.combine_g = combine_cf if cf else combine_g
    r = score_g(tr, c, labelled_only=True, gate=g)
    print(name, end=" ")
    show(r)
