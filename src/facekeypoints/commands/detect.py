"""fkp detect: keypoints for every face in photos, drawn and written as data."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="find faces and keypoints in photos", description=__doc__)
    p.add_argument("inputs", nargs="+", metavar="PATH", help="image files, folders (recursive) or globs")
    p.add_argument("-o", "--outdir", default=None, help="write annotated images here")
    p.add_argument("--json", default=None, metavar="FILE", help="write one JSON array, an object per input")
    p.add_argument("--csv", default=None, metavar="FILE", help="write one CSV row per face")
    p.add_argument("--show", action="store_true", help="show each annotated image in a window")
    p.add_argument("--filter", default=None, metavar="NAMES", help="apply filters (comma-separated; see fkp filters)")
    p.add_argument("--model", default=None, help="ONNX model (default: the shipped model)")
    p.add_argument("--refine", type=int, default=1, help="re-centred passes per face (0 = one pass)")
    p.add_argument("--workers", type=int, default=1, help="processes over the inputs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from ..errors import FkpError
    from ..imageio import write_image_atomic
    from ..photos import expand_inputs, output_name, process, write_csv, write_json
    from ..pipeline import KeypointDetector

    filters = [f.strip() for f in args.filter.split(",") if f.strip()] if args.filter else []
    if filters:
        from ..filters import check_filter_names

        check_filter_names(filters)
    if args.show:
        from ..display import require_display

        require_display()
    inputs = expand_inputs(args.inputs)
    if not inputs:
        raise FkpError("no input images found")
    det = KeypointDetector(args.model, refine=args.refine)
    records: list[dict] = []
    used: set[str] = set()
    interrupted = False
    try:
        for path in tqdm(inputs, desc="photos", unit="img", disable=len(inputs) < 2, file=sys.stderr):
            rec, annotated = process(det, path, filters)
            records.append(rec)
            if annotated is not None and args.outdir:
                write_image_atomic(Path(args.outdir) / output_name(path, used), annotated)
            if annotated is not None and args.show:
                from ..display import show

                if not show("fkp detect", annotated):
                    break
    except KeyboardInterrupt:
        interrupted = True
    if args.json:
        write_json(args.json, records)
    if args.csv:
        write_csv(args.csv, records)
    failed = [r for r in records if r["error"]]
    n_faces = sum(len(r["faces"]) for r in records)
    if not (args.json or args.csv or args.outdir or args.show):
        for r in records:
            if not r["error"]:
                print(f"{r['image']}: {len(r['faces'])} face(s)")
    print(f"{len(records) - len(failed)} image(s) processed, {n_faces} face(s)" + (f", {len(failed)} failed:" if failed else ""),
          file=sys.stderr)
    for r in failed:
        print(f"  {r['image']}: {r['error']}", file=sys.stderr)
    if interrupted:
        print(f"fkp: interrupted after {len(records)} of {len(inputs)} inputs; results so far written", file=sys.stderr)
        return 130
    return 1 if failed else 0
