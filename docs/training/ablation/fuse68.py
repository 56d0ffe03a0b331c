"""points=68 framed by the 15-point model (the default) against the 68-point model alone
(``keypoints_model=None``), end to end on the 300-W + LFPW validation photos: the 68-point NME
(outer-eye-corner distance, overall, jaw and the rest) and the 15-point NME, on the faces both
modes found.

    python docs/training/ablation/fuse68.py [POINTS68.onnx [KEYPOINTS15.onnx]]
"""

import sys
from pathlib import Path

import numpy as np

import facekeypoints as fk
from facekeypoints.imageio import read_image
from facekeypoints.schema import to_points15
from facekeypoints.training.data.landmarks import in_validation, load_300w
from facekeypoints.training.detector.data import SPLIT_SEED, VAL_FRACTION

DATA = Path("../shared/data")


def validation_photos() -> list[tuple[Path, np.ndarray]]:
    """(photo, its 68 labels) for every 300-W and LFPW validation face (the benchmark's split)."""
    items = []
    for src in ("300w", "lfpw"):
        for s in load_300w(DATA / src):
            group = ("lfpw/" + s.image.stem) if src == "lfpw" else s.group
            if in_validation(group, VAL_FRACTION, SPLIT_SEED) and s.points68 is not None:
                items.append((s.image, s.points68))
    return items


def labelled_face(faces: list, labels: np.ndarray):
    """The face nearest the labelled one, if its points' mean lies within one outer-eye-corner distance."""
    if not faces:
        return None
    f = min(faces, key=lambda f: np.linalg.norm(f.keypoints.mean(0) - labels.mean(0)))
    return f if np.linalg.norm(f.keypoints.mean(0) - labels.mean(0)) <= np.linalg.norm(labels[45] - labels[36]) else None


def main(model68: str | None = None, model15: str | None = None) -> None:
    items = validation_photos()
    kw = {"threads": 1, "points": 68, "model": model68}
    systems = {"framed by the 15-point model": fk.KeypointDetector(**kw, keypoints_model=model15 or "default"),
               "alone": fk.KeypointDetector(**kw, keypoints_model=None)}
    errors: dict[str, dict] = {k: {} for k in systems}
    for i, (path, labels) in enumerate(items):
        image = read_image(path)
        ocular = np.linalg.norm(labels[45] - labels[36])
        for name, det in systems.items():
            f = labelled_face(det.detect(image), labels)
            if f is None:
                continue
            e68 = np.linalg.norm(f.keypoints - labels, axis=1) / ocular
            e15 = np.linalg.norm(f.points15 - to_points15(labels), axis=1) / ocular
            errors[name][i] = (e68.mean(), e68[:17].mean(), e68[17:].mean(), e15.mean())
    common = sorted(set.intersection(*[set(e) for e in errors.values()]))
    for name in systems:
        a = np.array([errors[name][i] for i in common]) * 100
        print(f"{name}: found {len(errors[name])}/{len(items)}; on the {len(common)} both found: 68-point NME "
              f"{a[:, 0].mean():.2f}% (jaw {a[:, 1].mean():.2f}%, the rest {a[:, 2].mean():.2f}%), "
              f"15-point NME {a[:, 3].mean():.2f}%")


if __name__ == "__main__":
    main(*sys.argv[1:3])
