import pickle
import sys

sys.path.insert(0, "src")
sys.path.insert(0, "docs/detector/search")
from ana import hit, refs

import facekeypoints as fk
from facekeypoints.detection.learned import LearnedDetector, Scale

real = pickle.load(open("runs/cache_real.pkl", "rb"))
synth = pickle.load(open("runs/cache_synth.pkl", "rb"))
sets = sys.argv[1].split(",")
items = [it for it in real if it["set"] in sets]
CFG = ((2.0, 40, 80), (2.0, 32, 100), (1.0, 32, 100), (1.0, 40, 80))
variants = [
    fk.KeypointDetector(
        detector=LearnedDetector(threads=1, scales=(Scale(224, 0.3, lo), Scale(448, 0.3, 0.0, hi, cap))), threads=1
    )
    for cap, lo, hi in CFG
]
for cap, kd in zip(CFG, variants):
    res = {}
    for it in items:
        r = res.setdefault(it["set"], [0, 0, 0, 0])
        faces = kd.detect(it["gray"] if "gray" in it else it["path"])
        ref = refs(it)
        lab = ref[:1] if it["set"].startswith("train_") else ref
        r[0] += len(lab)
        r[1] += sum(any(hit(f.box, q) for f in faces) for q in lab)
        for f in faces:
            d = f.box
            if any(hit(d, q) for q in ref):
                continue
            c = ((d[0] + d[2]) / 2, (d[1] + d[3]) / 2)
            if any(g[0] <= c[0] <= g[2] and g[1] <= c[1] <= g[3] for g in it["ignore"]):
                continue
            r[2] += 1
    print("cap", cap, res)
