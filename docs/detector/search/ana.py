import pickle
import sys

import numpy as np

sys.path.insert(0, "src")
from facekeypoints.detection.learned import box_from_points, nms_indices


def hit(d, r):
    cx, cy = (r[0] + r[2]) / 2, (r[1] + r[3]) / 2
    side = max(r[2] - r[0], r[3] - r[1])
    ds = max(d[2] - d[0], d[3] - d[1])
    return d[0] <= cx <= d[2] and d[1] <= cy <= d[3] and 0.5 <= ds / max(side, 1e-6) <= 2.0


def refs(it):
    f = it["faces"]
    if f.ndim == 3:
        return box_from_points(f) if len(f) else np.zeros((0, 4))
    return f  # dlib boxes


def combine(it, passes, nms_iou=0.4, gate=None):
    """passes: list of (S, thr, lo, hi): keep peaks of pass S with score>=thr whose side at the pass scale is in [lo, hi)."""
    h, w = it["shape"]
    S_, B_, P_, K_ = [], [], [], []
    for S, thr, lo, hi in passes:
        s, b, p = it["raw"][S]
        f = min(S / max(h, w), 2.0)
        side = (b[:, 2] - b[:, 0]) * f
        m = (s >= thr) & (side >= lo) & (side < hi)
        S_.append(s[m])
        B_.append(b[m])
        P_.append(p[m])
        K_.append(np.full(m.sum(), S))
    s = np.concatenate(S_)
    b = np.concatenate(B_)
    p = np.concatenate(P_)
    k = np.concatenate(K_)
    if gate is not None and len(s):
        g = gate(s, b, p, k, it)
        s, b, p, k = s[g], b[g], p[g], k[g]
    if len(s) == 0:
        return s, b, p, k
    keep = nms_indices(b, s, nms_iou)
    return s[keep], b[keep], p[keep], k[keep]


def score(items, passes, **kw):
    """per set: faces, found, false alarms (dets matching no face and not in an ignore box)."""
    res = {}
    for it in items:
        st = it["set"]
        r = res.setdefault(st, [0, 0, 0, 0])
        s, b, p, k = combine(it, passes, **kw)
        ref = refs(it)
        r[0] += len(ref)
        r[3] += 1
        r[1] += sum(any(hit(d, q) for d in b) for q in ref)
        for d in b:
            if any(hit(d, q) for q in ref):
                continue
            c = ((d[0] + d[2]) / 2, (d[1] + d[3]) / 2)
            if any(g[0] <= c[0] <= g[2] and g[1] <= c[1] <= g[3] for g in it["ignore"]):
                continue
            # one face per val photo is labelled: dets elsewhere are unknown; count them anyway
            r[2] += 1
    return res


def show(res, sets=None):
    out = []
    for st, (n, f, fa, ph) in sorted(res.items()):
        if sets and st not in sets:
            continue
        out.append(f"{st}: {f}/{n} ({100 * f / max(n, 1):.1f}%) fa {fa}")
    print(" | ".join(out))


def combine_g(it, passes, nms_iou=0.4, gate=None):
    """as combine, with gate features: returns s, b, p, k, feats (N, 5)."""
    h, w = it["shape"]
    S_, B_, P_, K_, F_ = [], [], [], [], []
    for S, thr, lo, hi in passes:
        s, b, p = it["raw"][S]
        g = np.stack(it["gates"][S], 1) if "gates" in it else np.zeros((len(s), 5))
        f = min(S / max(h, w), 2.0)
        side = (b[:, 2] - b[:, 0]) * f
        m = (s >= thr) & (side >= lo) & (side < hi)
        S_.append(s[m])
        B_.append(b[m])
        P_.append(p[m])
        K_.append(np.full(m.sum(), S))
        F_.append(g[m])
    s = np.concatenate(S_)
    b = np.concatenate(B_)
    p = np.concatenate(P_)
    k = np.concatenate(K_)
    F = np.concatenate(F_)
    if len(s) and gate is not None:
        m = gate(s, b, p, k, F)
        s, b, p, k, F = s[m], b[m], p[m], k[m], F[m]
    if len(s) == 0:
        return s, b, p, k, F
    keep = nms_indices(b, s, nms_iou)
    return s[keep], b[keep], p[keep], k[keep], F[keep]


def pipe_gate(vmin=0.25, smin=0.67):
    return lambda s, b, p, k, F: (F[:, 0] >= vmin) & (F[:, 1] >= smin)


def score_g(items, passes, labelled_only=False, fa_list=None, **kw):
    res = {}
    for it in items:
        st = it["set"]
        r = res.setdefault(st, [0, 0, 0, 0])
        s, b, p, k, F = combine_g(it, passes, **kw)
        ref = refs(it)
        lab = ref[:1] if (labelled_only and st.startswith("train_")) else ref
        r[0] += len(lab)
        r[3] += 1
        r[1] += sum(any(hit(d, q) for d in b) for q in lab)
        for i, d in enumerate(b):
            if any(hit(d, q) for q in ref):
                continue
            c = ((d[0] + d[2]) / 2, (d[1] + d[3]) / 2)
            if any(g[0] <= c[0] <= g[2] and g[1] <= c[1] <= g[3] for g in it["ignore"]):
                continue
            r[2] += 1
            if fa_list is not None:
                fa_list.append(
                    (st, it["path"], float(s[i]), int(k[i]), [round(float(v)) for v in d], F[i].round(3).tolist())
                )
    return res


def grid_items():
    """The grids' training pictures, with gate features (runs/cache_*_g.pkl from gates.py): the real
    training photos and Udacity frames, 200 MTFL faces, and the synthetic crowds."""
    real = pickle.load(open("runs/cache_real_g.pkl", "rb"))
    synth = pickle.load(open("runs/cache_synth_g.pkl", "rb"))
    return (
        [it for it in real if it["set"] in ("train_photo", "train_udacity")]
        + [it for it in real if it["set"] == "train_mtfl"][:200]
        + synth
    )
