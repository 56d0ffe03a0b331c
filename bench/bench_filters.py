"""How much a face filter adds to a live frame.

Makes a 640x480 frame from a 300-W photo (one face, scaled to a webcam-like
size), then compares the median time of the live loop's keypoint step for that
face (``det.keypoints_from_frames`` on the frame, as the video tracker calls it:
refine=0, one onnxruntime thread) with the median time of ``apply_filter`` for
each filter (which includes copying the frame). Goal: each filter < 20% of the
keypoint step.

    python bench/bench_filters.py [--photo P] [--iod 70] [--repeat 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from facekeypoints.filters import FILTERS, apply_filter
from facekeypoints.geometry import frame_from_keypoints
from facekeypoints.imageio import read_image, to_gray
from facekeypoints.pipeline import KeypointDetector
from facekeypoints.schema import LEFT_EYE, RIGHT_EYE

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTO = ROOT.parent / "shared/data/300w/afw/4332978153_1.jpg"


def make_frame(photo: Path, iod: float, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """Scale the photo so the labelled face's eyes are ``iod`` px apart; centre it in a 640x480 frame."""
    from facekeypoints.schema import from_ibug68
    from facekeypoints.training.data.landmarks import read_pts

    img = read_image(photo)
    kp = from_ibug68(read_pts(photo.with_suffix(".pts")))
    s = iod / float(np.linalg.norm(kp[LEFT_EYE] - kp[RIGHT_EYE]))
    c = (kp[LEFT_EYE] + kp[RIGHT_EYE]) / 2 * s
    w, h = size
    m = np.array([[s, 0, w / 2 - c[0]], [0, s, h * 0.42 - c[1]]])
    return cv2.warpAffine(img, m, size, flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT101)


def median_ms(fn, repeat: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo", type=Path, default=DEFAULT_PHOTO, help="a 300-W .jpg with its .pts")
    ap.add_argument("--iod", type=float, default=70.0, help="eye distance of the face in the frame (px)")
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--save", type=Path, default=None, help="write the frame with every filter here (a folder)")
    args = ap.parse_args()

    frame = make_frame(args.photo, args.iod)
    det = KeypointDetector(threads=1, flip=False)  # as the video tracker runs it: no mirrored pass
    faces = det.detect(frame)
    if not faces:
        raise SystemExit(f"no face found in the frame made from {args.photo}")
    face = faces[0]
    gray = to_gray(frame)
    crop = frame_from_keypoints(face.keypoints, rotate=True)
    t_kp = median_ms(lambda: det.keypoints_from_frames(gray, [crop], refine=0), args.repeat)
    t_kp1 = median_ms(lambda: det.keypoints_from_frames(gray, [crop], refine=1), args.repeat)
    t_copy = median_ms(lambda: frame.copy(), args.repeat)
    print(f"frame 640x480 from {args.photo.name}, one face, IOD {args.iod:.0f} px, median of {args.repeat}")
    print(f"keypoint step (keypoints_from_frames, refine=0): {t_kp:.2f} ms; refine=1: {t_kp1:.2f} ms; "
          f"frame copy: {t_copy:.3f} ms\n")
    print("| filter | median ms | % of keypoint step (refine=0) | % (refine=1) |")
    print("|---|---:|---:|---:|")
    for name in [*FILTERS, "dog,sunglasses"]:
        t = median_ms(lambda n=name: apply_filter(frame, [face], n), args.repeat)
        print(f"| {name} | {t:.2f} | {100 * t / t_kp:.1f}% | {100 * t / t_kp1:.1f}% |")
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(args.save / f"{name.replace(',', '+')}.png"), apply_filter(frame, [face], name))


if __name__ == "__main__":
    main()
