"""fkp demo: keypoints (and optional filters) on a real photo that ships with matplotlib."""

from __future__ import annotations

import argparse
import sys

from .options import filter_option


def demo_photo() -> str:
    """Path of Grace Hopper's portrait inside matplotlib (a runtime dependency)."""
    from matplotlib import cbook

    return str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run on a bundled photo (works offline right after install)", description=__doc__)
    p.add_argument("--filter", default=None, metavar="NAMES", help="apply filters (comma-separated; see fkp filters)")
    p.add_argument("-o", "--out", default="fkp-demo.jpg", metavar="IMAGE", help="annotated image to write")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the detection JSON ('-' = standard output)")
    p.add_argument("--show", action="store_true", help="also show the annotated image in a window")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import FkpError
    from ..fileio import check_output_file
    from ..imageio import write_image_atomic
    from ..photos import process, write_json
    from ..pipeline import KeypointDetector

    filters = filter_option(args.filter)
    check_output_file(args.out, "output image", image=True)
    if args.json:
        check_output_file(args.json, "--json file", stdout=True)
    if args.show:
        from ..video.display import require_display

        require_display()
    photo = demo_photo()
    rec, annotated = process(KeypointDetector(), photo, filters)
    if annotated is None:
        raise FkpError(f"{photo}: {rec['error']}")
    write_image_atomic(args.out, annotated)
    if args.json:
        write_json(args.json, [rec])
    # a short summary (the full record is what --json writes); on stderr when the JSON goes to stdout
    log = sys.stderr if args.json == "-" else sys.stdout
    print(f"{len(rec['faces'])} face(s) in {photo} ({rec['width']}x{rec['height']})", file=log)
    for i, f in enumerate(rec["faces"]):
        kp = f["keypoints"]
        print(f"  face {i}: box {[round(v) for v in f['box']]}, left eye {[round(v) for v in kp['left_eye_center']]}, "
              f"right eye {[round(v) for v in kp['right_eye_center']]}, nose {[round(v) for v in kp['nose_tip']]}",
              file=log)
    print(f"annotated image written to {args.out}" + (f"; JSON to {args.json}" if args.json not in (None, "-") else ""),
          file=log)
    if args.show:
        from ..video.display import show

        show("fkp demo", annotated)
    return 0
