"""fkp align: one aligned face crop per face (the ArcFace 112x112 layout, scaled for --size),
named after its photo (photo_0.jpg, photo_1.jpg, ... largest face first), and a JSON with
each crop's transform (a 2x3 matrix from photo pixels to crop pixels)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_JSON = "alignment.json"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("align", help="aligned face crops for face recognition", description=__doc__)
    p.add_argument("inputs", nargs="+", metavar="PATH", help="image files, folders (recursive) or globs")
    p.add_argument("-o", "--outdir", required=True, help="write the crops and the JSON here")
    p.add_argument("--size", type=int, default=112, help="crop side in pixels; the template scales with it (default: %(default)s)")
    p.add_argument("--json", default=None, metavar="FILE", help=f"transforms JSON (default: OUTDIR/{DEFAULT_JSON})")
    p.add_argument("--model", default=None, help="ONNX model (default: the shipped model)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..alignment import align, align_matrix, template
    from ..errors import FkpError
    from ..imageio import read_image, write_image_atomic
    from ..photos import expand_inputs, output_name, write_json
    from ..pipeline import KeypointDetector

    if args.size < 8:
        raise FkpError(f"--size must be at least 8 pixels, got {args.size}")
    inputs = expand_inputs(args.inputs)
    if not inputs:
        raise FkpError("no input images found")
    outdir = Path(args.outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FkpError(f"{outdir}: cannot create the output folder ({e.strerror or e})") from None
    det = KeypointDetector(args.model)
    records, used, faceless, n_crops = [], set(), [], 0
    interrupted = False
    try:
        for path in tqdm(inputs, desc="photos", unit="img", disable=len(inputs) < 2, file=sys.stderr):
            rec = {"image": path, "width": None, "height": None, "faces": [], "error": None}
            records.append(rec)
            try:
                image = read_image(path)
                faces = det.detect(image)
            except FkpError as e:
                rec["error"] = str(e.problem) if hasattr(e, "problem") else str(e)
                continue
            rec["height"], rec["width"] = (int(v) for v in image.shape[:2])
            if not faces:
                faceless.append(path)
                continue
            stem = Path(output_name(path, used))
            for i, face in enumerate(faces):
                name = f"{stem.stem}_{i}{stem.suffix}"
                try:
                    m = align_matrix(face, args.size)
                except ValueError as e:  # keypoints that are not finite: no transform to apply
                    rec["error"] = f"face {i}: {e}"
                    continue
                try:
                    write_image_atomic(outdir / name, align(image, face, args.size))
                except OSError as e:
                    raise FkpError(f"{outdir / name}: cannot write ({e.strerror or e})") from None
                n_crops += 1
                rec["faces"].append({"crop": name, "box": [round(float(v), 2) for v in face.box],
                                     "matrix": [[round(float(v), 6) for v in row] for row in m]})
    except KeyboardInterrupt:
        interrupted = True
    write_json(args.json or outdir / DEFAULT_JSON, {
        "size": args.size, "template": [[round(float(v), 4) for v in p] for p in template(args.size)],
        "template_points": ["right_eye_center", "left_eye_center", "nose_tip", "mouth_right_corner",
                            "mouth_left_corner"],
        "images": records})
    failed = [r for r in records if r["error"]]
    print(f"{n_crops} crop(s) from {len(records) - len(failed) - len(faceless)} image(s) written to {outdir}"
          + (f"; {len(failed)} failed" if failed else ""), file=sys.stderr)
    for p in faceless:
        print(f"  {p}: no face found, nothing written", file=sys.stderr)
    for r in failed:
        print(f"  {r['image']}: {r['error']}", file=sys.stderr)
    if interrupted:
        print(f"fkp: interrupted after {len(records)} of {len(inputs)} inputs; results so far written", file=sys.stderr)
        return 130
    return 1 if failed else 0
