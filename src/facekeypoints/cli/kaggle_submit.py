"""fkp kaggle-submit: predictions for a Kaggle test.csv in RowId,Location format.

Each test image is predicted as ``fkp evaluate`` measures Kaggle rows: a pass on the
image itself, one re-centred pass, mirror-averaged.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kaggle-submit", help="write a Kaggle submission CSV", description=__doc__)
    p.add_argument("--model", default=None, help="ONNX model or .pt checkpoint (default: the shipped model)")
    p.add_argument("--test", required=True, help="Kaggle test.csv (ImageId,Image)")
    p.add_argument("--lookup", required=True, help="IdLookupTable.csv (RowId,ImageId,FeatureName)")
    p.add_argument("-o", "--out", default="submission.csv", help="submission CSV to write (RowId,Location)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..fileio import check_output_file

    check_output_file(args.out, "submission file")
    from ..training.data import kaggle  # torch: after the destination check
    from ..training.evaluate import load_predictor, predict_kaggle

    test = kaggle.load_test(args.test)
    lookup = kaggle.read_lookup(args.lookup)
    kaggle.check_lookup(args.lookup, lookup, test.ids, args.test)
    pred = predict_kaggle(load_predictor(args.model), test.images)  # as fkp evaluate measures Kaggle rows
    n = kaggle.write_submission(args.out, lookup, test.ids, pred)
    print(f"wrote {args.out}: {n} rows for {len(test.ids)} test images")
    return 0
