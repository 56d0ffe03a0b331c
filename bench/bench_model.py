"""Per-face latency of the shipped keypoint model with onnxruntime on one CPU thread.

Median over many single-face calls (batch 1, the live-video case) and per face at
batch 16 (many faces in a photo). If a second ONNX model is given (e.g. the `seed`
baseline exported with `fkp export`), it is timed in the same run, interleaved, and
the ratio is reported: absolute times on a shared machine are noisy, ratios less so.

    python bench/bench_model.py [--peer runs/seed/seed.onnx] [--repeats 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from facekeypoints.runtime import OnnxKeypointModel, default_model_path
from facekeypoints.training.data.kaggle import load_training


def _time(model: OnnxKeypointModel, crops: np.ndarray) -> float:
    t = time.perf_counter()
    model.predict(crops)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(default_model_path()))
    ap.add_argument("--peer", default=None)
    ap.add_argument("--repeats", type=int, default=2000)
    ap.add_argument("--data", default="../shared/data/kaggle_format/training.csv")
    args = ap.parse_args()
    crops = load_training(args.data).images[:16]
    models = {"model": OnnxKeypointModel(args.model, threads=1)}
    if args.peer:
        models["peer"] = OnnxKeypointModel(args.peer, threads=1, verify=False)
    for m in models.values():
        for _ in range(50):
            m.predict(crops[:1])
    single: dict[str, list[float]] = {k: [] for k in models}
    batch: dict[str, list[float]] = {k: [] for k in models}
    for i in range(args.repeats):
        for k, m in models.items():
            single[k].append(_time(m, crops[i % 16:i % 16 + 1]))
            if i % 10 == 0:
                batch[k].append(_time(m, crops) / len(crops))
    out = {"load_average": os.getloadavg(), "repeats": args.repeats}
    for k, m in models.items():
        out[k] = {"path": str(m.path), "mb": os.path.getsize(m.path) / 1e6,
                  "ms_per_face_batch1_median": 1000 * float(np.median(single[k])),
                  "ms_per_face_batch1_p90": 1000 * float(np.percentile(single[k], 90)),
                  "ms_per_face_batch16_median": 1000 * float(np.median(batch[k]))}
    if "peer" in out:
        out["peer_over_model_batch1"] = out["peer"]["ms_per_face_batch1_median"] / out["model"]["ms_per_face_batch1_median"]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
