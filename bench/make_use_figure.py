"""Build docs/use.jpg: head-pose axes and aligned crops on a real multi-face photo.

Top: the photo with keypoints, each face's head axes (``fkp detect --draw-pose``) and its
yaw / pitch / roll. Bottom: each face's 112x112 ArcFace-aligned crop (``fk.align``) with the
five template points marked, so how well a face lands on the template shows at a glance.

    python bench/make_use_figure.py [--photo ../shared/data/photos/2008_002506.jpg] [-o docs/use.jpg]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

import facekeypoints as fk
from facekeypoints.alignment import template
from facekeypoints.pose import draw_pose

ROOT = Path(__file__).resolve().parents[1]


def _label(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.5) -> None:
    for color, th in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, th, cv2.LINE_AA)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo", type=Path, default=ROOT.parent / "shared/data/photos/2008_002506.jpg")
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "docs/use.jpg")
    ap.add_argument("--width", type=int, default=800)
    args = ap.parse_args()
    image = fk.read_image(args.photo)
    faces = sorted(fk.KeypointDetector().detect(image), key=lambda f: f.box[0])  # left to right
    s = args.width / image.shape[1]
    big = cv2.resize(image, (args.width, int(round(image.shape[0] * s))), interpolation=cv2.INTER_CUBIC)
    shown = [fk.Face(tuple(v * s for v in f.box), f.score, f.keypoints * np.float32(s),
                     image_size=(big.shape[1], big.shape[0])) for f in faces]  # same pose: the camera scales too
    top = draw_pose(fk.draw(big, shown, boxes=False), shown, length=1.0)
    for f in shown:
        x0, _, _, y1 = (int(v) for v in f.box)
        for k, (name, v) in enumerate(zip(("yaw", "pitch", "roll"), f.pose)):
            _label(top, f"{name} {v:+.0f}", (max(x0, 2), y1 + 18 + 20 * k), 0.55)
    crops = []
    for f in faces:
        c = cv2.resize(fk.align(image, f), (224, 224), interpolation=cv2.INTER_CUBIC)
        for p in template() * 2:
            cv2.drawMarker(c, (int(round(p[0])), int(round(p[1]))), (0, 255, 255), cv2.MARKER_CROSS, 10, 1, cv2.LINE_AA)
        crops.append(np.pad(c, ((8, 8), (8, 8), (0, 0)), constant_values=255))
    row = np.hstack(crops)
    row = np.pad(row, ((0, 24), (0, max(args.width - row.shape[1], 0)), (0, 0)), constant_values=255)[:, :args.width]
    _label(row, "fk.align(image, face): 112x112 ArcFace crops (shown 2x), template points in yellow",
           (10, row.shape[0] - 8), 0.5)
    out = np.vstack([top, row])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), out, [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"{args.out}: {out.shape[1]}x{out.shape[0]}, {args.out.stat().st_size // 1024} KB, {len(faces)} faces")
    for f in faces:
        print(f"  yaw {f.pose.yaw:+.1f} pitch {f.pose.pitch:+.1f} roll {f.pose.roll:+.1f}")


if __name__ == "__main__":
    main()
