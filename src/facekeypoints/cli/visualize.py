"""fkp visualize: a grid of faces with their keypoints (labels and/or predictions)."""

from __future__ import annotations

import argparse

from .options import int_at_least


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("visualize", help="draw a grid of faces with keypoints", description=__doc__)
    p.add_argument("--data", nargs="+", required=True, help="labelled data (same forms as fkp train --data)")
    p.add_argument("--model", default=None, help="also draw this model's predictions (ONNX or .pt); 'default' = shipped")
    p.add_argument("--split", choices=["val", "all"], default="val",
                   help="the validation split (as in training) or every face")
    p.add_argument("-n", type=int_at_least(1), default=32, help="number of faces")
    p.add_argument("--cols", type=int_at_least(1), default=8, help="faces per row")
    p.add_argument("--seed", type=int, default=0, help="which faces are drawn (and the augmentation)")
    p.add_argument("--augment", action="store_true", help="show training augmentation instead of plain crops")
    p.add_argument("-o", "--out", default="faces.png", metavar="IMAGE", help="grid image to write")
    p.add_argument("--cache-dir", default=None, help="cache decoded face crops here (as fkp train)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..fileio import check_output_file

    check_output_file(args.out, "output image", image=True)
    import numpy as np

    from ..errors import FkpError
    from ..training.data.augment import AugmentConfig, eval_batch, make_batch
    from ..training.data.dataset import load, split
    from ..training.evaluate import load_predictor, model_framing, predict_faces
    from ..training.visualize import grid, save_grid

    faces = load(args.data, args.cache_dir)
    if args.split == "val":
        faces = faces.subset(split(faces, 0.15, 0)[1])
    if len(faces) == 0:
        raise FkpError("no faces to show")
    idx = np.sort(np.random.default_rng(args.seed).permutation(len(faces))[: args.n])
    faces = faces.subset(idx)
    pred = None
    if args.augment:
        imgs, kps, _ = make_batch(faces.contexts, faces.keypoints, faces.mask, np.random.default_rng(args.seed), AugmentConfig())
    else:
        model = args.model
        predictor = load_predictor(None if model == "default" else model) if model else None
        if predictor is not None:
            # drawn on the Kaggle crops, predicted on the model's own (a 68-point model may frame wider)
            imgs, pred, kps, _ = predict_faces(predictor, faces, framing=model_framing(None if model == "default" else model))
        else:
            imgs, kps, _ = eval_batch(faces.contexts, faces.keypoints, faces.mask, args.seed)
    save_grid(args.out, grid(imgs, kps, pred, cols=args.cols))
    print(f"wrote {args.out} ({len(imgs)} faces; rings = labels{', dots = predictions' if pred is not None else ''})")
    return 0
