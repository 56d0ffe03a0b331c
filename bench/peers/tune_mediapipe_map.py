"""Choose FACEMESH_TO_15 in mediapipe_map.py on 300-W TRAIN-split faces (never validation).

Runs MediaPipe (through its runner) on ``--faces`` train photos, matches the labelled
face, and prints, for each keypoint, every candidate's mean error / outer-eye-corner
distance; the best ones are printed as a dict to paste into mediapipe_map.py.
``--draw out.jpg`` also writes a photo with labelled (green) and mapped (red) points.
Usage: python bench/peers/tune_mediapipe_map.py [--faces 250] [--draw /tmp/mp_check.png]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import cv2
import numpy as np
from client import PeerClient
from mediapipe_map import CANDIDATES, FACEMESH_TO_15, from_facemesh

from facekeypoints.metrics import interocular
from facekeypoints.schema import KEYPOINT_NAMES, LEFT_EYE, RIGHT_EYE
from facekeypoints.training.data.landmarks import load_300w, split_by_group

ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--faces", type=int, default=250)
    ap.add_argument("--draw", default=None, help="write a check image of the first few faces here")
    args = ap.parse_args()
    train, _ = split_by_group(load_300w(Path(args.data) / "300w"), 0.15, 0)
    random.Random(0).shuffle(train)
    gts, meshes, images = [], [], []
    with PeerClient("mediapipe") as peer:
        for s in train[: args.faces]:
            faces = peer.run(s.image)["faces"]
            mid = (s.keypoints[LEFT_EYE] + s.keypoints[RIGHT_EYE]) / 2
            best, dist = None, float(interocular(s.keypoints))
            for f in faces:
                kp = from_facemesh(np.array(f["points"]))
                d = float(np.linalg.norm((kp[LEFT_EYE] + kp[RIGHT_EYE]) / 2 - mid))
                if d < dist:
                    best, dist = np.array(f["points"]), d
            if best is not None:
                gts.append(s.keypoints)
                meshes.append(best)
                images.append(s.image)
    gt = np.array(gts, np.float64)
    mesh = np.array(meshes, np.float64)
    iod = interocular(gt)
    print(f"{len(gt)} of {min(args.faces, len(train))} train faces matched")
    def err(k: int, cand: tuple[int, ...]) -> float:
        return float((np.linalg.norm(mesh[:, list(cand)].mean(1) - gt[:, k], axis=-1) / iod).mean())

    chosen: dict[str, tuple[int, ...]] = {}
    for name in KEYPOINT_NAMES:
        if name in chosen or name.startswith("left") or name == "mouth_left_corner":
            continue
        k = KEYPOINT_NAMES.index(name)
        pair = name.replace("right", "left") if "right" in name else None
        scores = []
        for i, cand in enumerate(CANDIDATES[name]):
            # a left/right pair is chosen jointly (mirrored landmarks) so the map stays symmetric
            e = err(k, cand) if pair is None else (err(k, cand) + err(KEYPOINT_NAMES.index(pair), CANDIDATES[pair][i])) / 2
            scores.append((e, i))
        scores.sort()
        chosen[name] = CANDIDATES[name][scores[0][1]]
        if pair:
            chosen[pair] = CANDIDATES[pair][scores[0][1]]
        print(f"{name:26s} " + "  ".join(f"{CANDIDATES[name][i]}:{e:.4f}" for e, i in scores[:4]))
    print("FACEMESH_TO_15 = {")
    for name in KEYPOINT_NAMES:
        print(f"    {name!r}: {chosen[name]},")
    print("}")
    kp_frozen = np.array([from_facemesh(m) for m in mesh])
    print(f"frozen map: NME {float((np.linalg.norm(kp_frozen - gt, axis=-1).mean(1) / iod).mean()):.4f}")
    if args.draw:
        tiles = []
        for img_path, g, m in list(zip(images, gt, mesh))[:4]:
            img = cv2.imread(str(img_path))
            for (x, y) in g:
                cv2.circle(img, (round(x), round(y)), 3, (0, 255, 0), -1)
            for (x, y) in from_facemesh(m, FACEMESH_TO_15):
                cv2.circle(img, (round(x), round(y)), 2, (0, 0, 255), -1)
            tiles.append(cv2.resize(img, (512, 512)))
        cv2.imwrite(args.draw, np.concatenate([np.concatenate(tiles[:2], 1), np.concatenate(tiles[2:4], 1)], 0))
        print(f"wrote {args.draw}: labelled = green, mapped FaceMesh = red")


if __name__ == "__main__":
    main()
