#!/usr/bin/env python3
"""The original write-up's one-liner: ``python face_keypoints.py name-of-image``.

Finds every face, draws its 15 keypoints, and shows the overlay (or saves it as
``<image>_keypoints.<ext>`` when there is no display). The full tool is ``fkp``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", help="photo to annotate")
    parser.add_argument("-o", "--out", default=None, help="where to save the overlay (default: <image>_keypoints.<ext>)")
    parser.add_argument("--no-show", action="store_true", help="only save, never open a window")
    args = parser.parse_args(argv)

    import facekeypoints as fk
    from facekeypoints.errors import FkpError
    from facekeypoints.imageio import write_image_atomic
    from facekeypoints.video.display import has_gui, show

    try:
        image = fk.read_image(args.image)
        faces = fk.KeypointDetector().detect(image)
        overlay = fk.draw(image, faces)
        src = Path(args.image)
        out = Path(args.out) if args.out else src.with_name(f"{src.stem}_keypoints{src.suffix or '.png'}")
        write_image_atomic(out, overlay)
    except FkpError as e:
        print(f"face_keypoints.py: {e}", file=sys.stderr)
        return 1
    print(f"{len(faces)} face(s) found; overlay saved to {out}")
    for i, f in enumerate(faces):
        le, re = f.keypoints[0], f.keypoints[1]
        print(f"  face {i}: box {tuple(round(v) for v in f.box)}, left eye ({le[0]:.0f}, {le[1]:.0f}), right eye ({re[0]:.0f}, {re[1]:.0f})")
    import os

    if not args.no_show and has_gui() and (os.environ.get("DISPLAY") or sys.platform != "linux"):
        show("face keypoints (any key closes)", overlay)
    return 0


if __name__ == "__main__":
    sys.exit(main())
