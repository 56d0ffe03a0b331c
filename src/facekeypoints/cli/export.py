"""fkp export: training checkpoint -> ONNX (dynamic batch), checked against torch."""

from __future__ import annotations

import argparse

from .options import positive_float


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX", description=__doc__)
    p.add_argument("checkpoint", help="best.pt or last.pt from fkp train")
    p.add_argument("-o", "--out", default="model.onnx", metavar="MODEL.onnx",
                   help="ONNX file (a .json with metadata is written beside it)")
    p.add_argument("--atol", type=positive_float, default=1e-4, help="largest allowed |onnx - torch| in pixels")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from ..errors import InputError
    from ..fileio import check_output_file

    check_output_file(args.out, "ONNX file", suffixes=(".onnx",))
    check_output_file(os.path.splitext(args.out)[0] + ".json", "metadata file")
    if not os.path.isfile(args.checkpoint):
        raise InputError(args.checkpoint, "is a folder, not a checkpoint" if os.path.isdir(args.checkpoint)
                         else "no such file")
    from ..training.export import export  # torch: after the checks

    meta = export(args.checkpoint, args.out, args.atol)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB, max |onnx - torch| = "
          f"{meta['max_abs_diff_vs_torch']:.1e} px) and {os.path.splitext(args.out)[0]}.json")
    return 0
