"""fkp evaluate: RMSE (96x96 frame) and NME, overall and per keypoint."""

from __future__ import annotations

import argparse

from .options import fraction, non_negative_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="measure RMSE and NME on labelled faces", description=__doc__)
    p.add_argument("--model", default=None, help="ONNX model or .pt checkpoint (default: the shipped model)")
    p.add_argument("--data", nargs="+", required=True, help="labelled data (same forms as fkp train --data)")
    p.add_argument("--split", choices=["val", "train", "all"], default="val",
                   help="validation split (as in training), the training split, or every face")
    p.add_argument("--val-fraction", type=fraction, default=0.15,
                   help="validation share, as given to fkp train (the split must match training's)")
    p.add_argument("--seed", type=int, default=0, help="split seed, as given to fkp train; also seeds the simulated detector boxes")
    p.add_argument("--refine", type=non_negative_int, default=1, help="re-centred passes, as the photo pipeline does")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True,
                   help="mirror-average the final pass, as the photo pipeline does (--label-gap turns it off)")
    p.add_argument("--out", default="eval", help="folder for metrics.json and per_keypoint.png")
    p.add_argument("--cache-dir", default=None, help="cache decoded face crops here (as fkp train --cache-dir)")
    p.add_argument("--label-gap", action="store_true",
                   help="also print each set's label offsets from the 300-W convention (data/harmonise.py; use --split train)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..fileio import check_output_dir

    check_output_dir(args.out, "--out folder")  # before torch loads and data is read
    import numpy as np

    from ..training.data.harmonise import format_offsets
    from ..training.evaluate import evaluate, format_table

    res = evaluate(args.model, args.data, args.split, args.val_fraction, args.seed, args.refine, args.out, args.cache_dir,
                   gap=args.label_gap, flip=args.flip)
    print(format_table(res))
    if args.label_gap:
        print(format_offsets({k: np.array(v) for k, v in res["label_gap"].items()}))
    print(f"wrote {args.out}/metrics.json and {args.out}/per_keypoint.png")
    return 0
