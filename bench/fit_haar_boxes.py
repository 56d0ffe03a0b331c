"""Fit the Haar-box -> crop-frame constants in facekeypoints.geometry.

Runs the default Haar detector on 300-W photos, pairs each labelled face with its
detection, and reports how the detector box relates to the keypoint frame
(centre offset and side, in box widths) and the spread that training jitter
must reproduce. Usage: python bench/fit_haar_boxes.py [../shared/data]
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from facekeypoints.detection import HaarDetector
from facekeypoints.geometry import frame_from_keypoints
from facekeypoints.imageio import read_image, to_gray
from facekeypoints.training.data.landmarks import load_300w


def main() -> None:
    data = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
    samples = load_300w(data / "300w")
    det = HaarDetector(max_side=640, fallback=False, profile=False, big_side=0, coarse=None)  # as fitted
    rows = []
    for s in tqdm(samples, desc="haar"):
        gray = to_gray(read_image(s.image))
        kf = frame_from_keypoints(s.keypoints)
        best = None
        for d in det(gray):
            x0, y0, x1, y1 = d.box
            if x0 < kf.cx < x1 and y0 < kf.cy < y1:
                w = x1 - x0
                r = (kf.side / w, (kf.cx - (x0 + x1) / 2) / w, (kf.cy - (y0 + y1) / 2) / w)
                if best is None or abs(math.log(r[0])) < abs(math.log(best[0])):
                    best = r
        if best is not None:
            rows.append(best)
    a = np.array(rows)
    side, dx, dy = np.median(a, axis=0)
    # spread of the detector relative to the keypoint frame, robust (MAD) and plain
    ls = np.log(a[:, 0] / side)
    off = np.concatenate([(a[:, 1] - dx) / a[:, 0], (a[:, 2] - dy) / a[:, 0]])
    mad = lambda v: float(1.4826 * np.median(np.abs(v - np.median(v))))  # noqa: E731
    out = {
        "faces": len(samples), "detected": len(rows),
        "BOX_SIDE": float(side), "BOX_DX": float(dx), "BOX_DY": float(dy),
        "log_side_std": float(ls.std()), "log_side_mad": mad(ls),
        "centre_std": float(off.std()), "centre_mad": mad(off),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
