"""fkp export: training checkpoint -> ONNX (dynamic batch), checked against torch."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX", description=__doc__)
    p.add_argument("checkpoint", help="best.pt or last.pt from fkp train")
    p.add_argument("-o", "--out", default="model.onnx", help="ONNX file (a .json with metadata is written beside it)")
    p.add_argument("--atol", type=float, default=1e-4, help="largest allowed |onnx - torch| in pixels")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from ..training.export import export

    meta = export(args.checkpoint, args.out, args.atol)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB, max |onnx - torch| = "
          f"{meta['max_abs_diff_vs_torch']:.1e} px) and {os.path.splitext(args.out)[0]}.json")
    return 0
