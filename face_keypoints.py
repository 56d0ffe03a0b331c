#!/usr/bin/env python3
"""The original write-up's one-liner: ``python face_keypoints.py name-of-image``.

Finds every face, draws its 15 keypoints, saves the overlay as ``<image>_keypoints.<ext>``
in the current folder (``-o`` to choose) and shows it when there is a display. Phone
photos are turned upright by their EXIF orientation. The full tool is ``fkp``.

Exit status: 0 done, 1 the image could not be used, 2 a bad option or output path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", help="photo to annotate")
    parser.add_argument("-o", "--out", default=None,
                        help="where to save the overlay (default: <image>_keypoints.<ext> in the current folder)")
    parser.add_argument("--no-show", action="store_true", help="only save, never open a window")
    args = parser.parse_args(argv)

    import facekeypoints as fk
    from facekeypoints.errors import FkpError, UsageError
    from facekeypoints.fileio import check_output_file
    from facekeypoints.imageio import IMAGE_EXTENSIONS, write_image_atomic
    from facekeypoints.video.display import has_gui, show

    src = Path(args.image)
    if args.out:
        out = Path(args.out)
    else:  # the current folder: the photo's own folder may be a data set or read-only
        ext = src.suffix if src.suffix.lower() in IMAGE_EXTENSIONS else ".png"
        out = Path(f"{src.stem}_keypoints{ext}")
    try:
        check_output_file(out, "overlay image", image=True)  # before any work
        if out.exists() and src.exists() and out.resolve() == src.resolve():
            raise UsageError(f"{out}: is the input photo; give another -o")
        image = fk.read_image(src)
        faces = fk.KeypointDetector().detect(image)
        overlay = fk.draw(image, faces)
        write_image_atomic(out, overlay)
    except UsageError as e:
        print(f"face_keypoints.py: {e}", file=sys.stderr)
        return 2
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
