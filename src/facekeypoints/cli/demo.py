"""fkp demo: keypoints (and optional filters) on a real photo that ships with matplotlib."""

from __future__ import annotations

import argparse

from .options import filter_option


def demo_photo() -> str:
    """Path of Grace Hopper's portrait inside matplotlib (a runtime dependency)."""
    from matplotlib import cbook

    return str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run on a bundled photo (works offline right after install)", description=__doc__)
    p.add_argument("--filter", default=None, metavar="NAMES", help="apply filters (comma-separated; see fkp filters)")
    p.add_argument("-o", "--out", default="fkp-demo.jpg", help="annotated image to write")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the detection JSON")
    p.add_argument("--show", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from ..imageio import write_image_atomic
    from ..photos import process, write_json
    from ..pipeline import KeypointDetector

    filters = filter_option(args.filter)
    photo = demo_photo()
    rec, annotated = process(KeypointDetector(), photo, filters)
    if annotated is None:
        from ..errors import FkpError

        raise FkpError(f"{photo}: {rec['error']}")
    write_image_atomic(args.out, annotated)
    if args.json:
        write_json(args.json, [rec])
    print(json.dumps(rec, indent=2))
    print(f"{len(rec['faces'])} face(s) in {photo}; annotated image written to {args.out}")
    if args.show:
        from ..video.display import require_display, show

        require_display()
        show("fkp demo", annotated)
    return 0
