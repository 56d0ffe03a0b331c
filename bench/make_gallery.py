"""Build docs/gallery.jpg: one panel per filter on a real multi-face photo, made by the CLI.

Runs ``fkp detect PHOTO --filter NAME -o DIR`` for every filter (plus plain
``fkp detect`` for the keypoints), then tiles the outputs with a label each.

    python bench/make_gallery.py [--photo ../shared/data/photos/bald_guys.jpg] [-o docs/gallery.jpg]
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from facekeypoints.filters import FILTERS

ROOT = Path(__file__).resolve().parents[1]


def panel(path: Path, label: str, width: int) -> np.ndarray:
    img = cv2.imread(str(path))
    img = cv2.resize(img, (width, int(round(img.shape[0] * width / img.shape[1]))), interpolation=cv2.INTER_AREA)
    (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.8, 2)
    cv2.rectangle(img, (0, 0), (tw + 16, th + 16), (0, 0, 0), -1)
    cv2.putText(img, label, (8, th + 8), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    return img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo", type=Path, default=ROOT.parent / "shared/data/photos/bald_guys.jpg")
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "docs/gallery.jpg")
    ap.add_argument("--width", type=int, default=640, help="panel width (px)")
    ap.add_argument("--cols", type=int, default=3)
    ap.add_argument("--quality", type=int, default=85, help="JPEG quality")
    args = ap.parse_args()

    names = ["keypoints", *FILTERS]
    panels = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            out = Path(tmp) / name
            cmd = ["fkp", "detect", str(args.photo), "-o", str(out)] + ([] if name == "keypoints" else ["--filter", name])
            print("$", " ".join(cmd), file=sys.stderr)
            subprocess.run(cmd, check=True)
            panels.append(panel(out / args.photo.name, name, args.width))
    h = max(p.shape[0] for p in panels)
    panels = [cv2.copyMakeBorder(p, 0, h - p.shape[0], 0, 0, cv2.BORDER_CONSTANT, value=(255, 255, 255)) for p in panels]
    rows = math.ceil(len(panels) / args.cols)
    blank = np.full_like(panels[0], 255)
    panels += [blank] * (rows * args.cols - len(panels))
    sheet = np.vstack([np.hstack(panels[r * args.cols:(r + 1) * args.cols]) for r in range(rows)])
    ext = args.out.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, args.quality] if ext in (".jpg", ".jpeg") else [cv2.IMWRITE_PNG_COMPRESSION, 9]
    ok, buf = cv2.imencode(ext, sheet, params)
    if not ok:
        raise SystemExit(f"cannot encode {args.out}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_name(f".{args.out.name}.tmp")
    tmp_out.write_bytes(buf.tobytes())
    os.replace(tmp_out, args.out)
    print(f"{args.out}: {sheet.shape[1]}x{sheet.shape[0]}, {len(buf) / 1e6:.2f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
