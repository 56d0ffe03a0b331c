"""Session 9: can a keypoint-side measure tell the dog's face in photos/dogs.jpg from hard real faces?

For every verified five-point candidate that passes the span gate, on dogs.jpg and on the 300-W + LFPW
validation photos (plus every third Udacity validation frame), print the quantiles over the labelled
faces and the dog's values of: the mirror gap, the drift between the first and the refined pass, the
detector/keypoint five-point agreement, the span ratio, the verifier on the refined crop and, given
the model's torch checkpoint, the heatmap peak (the soft-argmax's largest cell probability, mean over
points). docs/training/ablation (session 9) has the figures for the wide model.

    python docs/detector/search/dog.py MODEL.onnx [CHECKPOINT.pt]
"""

import sys
from pathlib import Path

import numpy as np

from facekeypoints.detection.learned import FIVE_INDEX
from facekeypoints.geometry import crop, frame_from_keypoints
from facekeypoints.imageio import read_image, to_gray
from facekeypoints.pipeline import KeypointDetector
from facekeypoints.schema import to_points15
from facekeypoints.training.detector.measure import val_faces

DATA = Path("../shared/data")
MEASURES = ("mirror gap", "pass drift", "5-point agreement", "span ratio", "verifier on refined crop", "heatmap peak")


def heatmap_peak(checkpoint: str):
    """(N, 96, 96) crops -> (N,) mean heatmap peak of the checkpoint's model."""
    import torch

    from facekeypoints.training.checkpoint import load_checkpoint

    torch.set_num_threads(1)
    net, _ = load_checkpoint(checkpoint)
    net.eval()
    seen = {}
    plain = net.soft_argmax

    def soft_argmax(h):
        seen["peak"] = torch.softmax(h.flatten(2), dim=2).max(dim=2).values.mean(dim=1)
        return plain(h)

    net.soft_argmax = soft_argmax

    def run(crops: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            net(torch.from_numpy(crops).float().div(255).unsqueeze(1))
        return seen["peak"].numpy()

    return run


def main(model: str, checkpoint: str | None = None) -> None:
    vf = val_faces(DATA)
    items = [(DATA / "photos" / "dogs.jpg", None)] + [(p, k) for p, k, _ in vf["300w+lfpw"]]
    items += [(p, k) for p, k, _ in vf["udacity"][::3]]
    kd = KeypointDetector(model=model, threads=1, max_mirror_gap=None)
    peak = heatmap_peak(checkpoint) if checkpoint else None
    dog, faces = [], []
    for i, (path, labels) in enumerate(items):
        gray = to_gray(read_image(path))
        dets, frames, crops = kd.verified(gray, kd.detector(gray))
        if not dets:
            continue
        first = kd._predict(kd.model, gray, frames, crops)
        gaps: list = []
        final = kd.keypoints_from_frames(gray, frames, crops=crops, flip=True, gaps=gaps)
        refined = [frame_from_keypoints(k, rotate=True) for k in final]
        rcrops = np.stack([crop(gray, f) for f in refined])
        verifier = kd.verifier.predict(rcrops)
        peaks = peak(rcrops) if peak else np.full(len(dets), np.nan)
        for j, (d, f, k) in enumerate(zip(dets, frames, final)):
            if d.points is None or not kd.spans_face(k, f):
                continue
            drift = np.linalg.norm(to_points15(first[j]) - to_points15(k), axis=-1).mean() / refined[j].side
            agree = np.linalg.norm(k[FIVE_INDEX] - np.asarray(d.points), axis=-1).mean() / f.side
            row = (gaps[-1][j], drift, agree, frame_from_keypoints(k).side / f.side, verifier[j], peaks[j])
            if i == 0:
                dog.append(row)
            elif labels is not None and np.linalg.norm(k.mean(0) - labels.mean(0)) < 0.2 * f.side:
                faces.append(row)
    faces_a = np.array(faces)
    print(f"{len(faces)} labelled faces; quantiles 0 / 1 / 50 / 99 / 100 %; then the dog's candidates")
    for c, name in enumerate(MEASURES):
        q = np.quantile(faces_a[:, c], [0, 0.01, 0.5, 0.99, 1.0])
        print(f"{name:>26}: " + " ".join(f"{v:.4f}" for v in q) + "  dog " + " ".join(f"{r[c]:.4f}" for r in dog))


if __name__ == "__main__":
    main(*sys.argv[1:3])
