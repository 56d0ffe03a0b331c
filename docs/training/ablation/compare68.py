"""points=68 (framed by the shipped 15-point model) with each 68-point model given, end to end on
the 300-W + LFPW validation photos, on the faces every model found: the 68-point NME (outer-eye-corner
distance) overall and per region, as the benchmark reports it.

    python docs/training/ablation/compare68.py A.onnx [B.onnx ...]     # "shipped" = points68.onnx
"""

import sys

import numpy as np
from fuse68 import labelled_face, validation_photos  # this folder's (a script's folder is on sys.path)

import facekeypoints as fk
from facekeypoints.imageio import read_image
from facekeypoints.schema import IBUG68_REGION_OF

REGIONS = {"jaw": ("jaw",), "brows": ("right_eyebrow", "left_eyebrow"), "nose": ("nose_bridge", "nose_base"),
           "eyes": ("right_eye", "left_eye"), "mouth": ("outer_lip", "inner_lip")}


def main(models: list[str]) -> None:
    items = validation_photos()
    framer = fk.KeypointDetector(threads=1).model  # one 15-point model for all, loaded once
    systems = {m: fk.KeypointDetector(None if m == "shipped" else m, threads=1, points=68, keypoints_model=framer)
               for m in models}
    errors: dict[str, dict] = {m: {} for m in systems}
    for i, (path, labels) in enumerate(items):
        image = read_image(path)
        ocular = np.linalg.norm(labels[45] - labels[36])
        for m, det in systems.items():
            if (f := labelled_face(det.detect(image), labels)) is not None:
                errors[m][i] = np.linalg.norm(f.keypoints - labels, axis=1) / ocular
    common = sorted(set.intersection(*[set(e) for e in errors.values()]))
    region = np.array(IBUG68_REGION_OF)
    print(f"{len(common)} faces found by every model (of {len(items)})")
    for m in systems:
        e = np.stack([errors[m][i] for i in common]) * 100
        parts = " ".join(f"{r} {e[:, np.isin(region, names)].mean():.2f}%" for r, names in REGIONS.items())
        print(f"{m}: found {len(errors[m])}; NME {e.mean():.2f}% (median {np.median(e.mean(1)):.2f}%); {parts}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["shipped"])
