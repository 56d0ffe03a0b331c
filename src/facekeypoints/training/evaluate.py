"""Evaluation: Kaggle RMSE (96x96 frame) and inter-ocular NME, overall and per
keypoint, as a table, a JSON file and a bar chart.

Crops come from detector-like boxes (Haar statistics, seeded), and the model is
run the way the photo pipeline runs it: a first pass, then ``refine`` passes
re-centred on the previous prediction. Kaggle rows are the exception: their first
pass sees the row's own 96x96 image, as ``fkp kaggle-submit`` does, so their RMSE
is Kaggle's, in the competition's pixels. Works with an ONNX model (no torch) or
a training checkpoint (``.pt``, needs torch).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import metrics
from ..fileio import write_json_atomic
from ..geometry import CROP_SIZE, crop, frame_from_keypoints, mirror_average
from ..schema import KEYPOINT_NAMES
from .data.augment import eval_batch, eval_frames
from .data.dataset import FaceSet, load, split
from .data.harmonise import label_gap

Predictor = Callable[[np.ndarray], np.ndarray]


def load_predictor(model: str | os.PathLike | None, threads: int | None = None) -> Predictor:
    """A function (N, 96, 96) uint8 -> (N, 15, 2) crop pixels for an ONNX file or checkpoint."""
    if model is not None and str(model).endswith((".pt", ".pth", ".ckpt")):
        from .checkpoint import load_checkpoint, predict_crops

        net, _ = load_checkpoint(model)
        return lambda crops: predict_crops(net, crops)
    from ..runtime import OnnxKeypointModel

    return OnnxKeypointModel(model, threads=threads).predict


def predict_faces(predict: Predictor, faces: FaceSet, refine: int = 1, seed: int = 0,
                  flip: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run the model on detector-like crops of each face; returns crops, predictions,
    labels and mask, all in the 96x96 frame of the first crop. ``flip``: mirror-average
    the final pass, as the photo pipeline does."""
    exact = np.array([s == "kaggle" for s in faces.sources], bool)  # Kaggle rows: their own 96x96 image
    imgs, kps, msk = eval_batch(faces.contexts, faces.keypoints, faces.mask, seed, exact)
    if not len(imgs):
        return imgs, np.zeros((0, len(KEYPOINT_NAMES), 2), np.float32), kps, msk
    pred = mirror_average(predict, imgs) if flip and not refine else predict(imgs)
    if refine:
        # Map each eval crop back into its 192 px context, re-crop around the prediction.
        first = eval_frames(len(imgs), seed, exact)
        for i in range(refine):
            ctx_pred = [f.to_image(p) for f, p in zip(first, pred)]
            frames = [frame_from_keypoints(k, rotate=True) for k in ctx_pred]
            crops = np.stack([crop(c, fr) for c, fr in zip(faces.contexts, frames)])
            refined = mirror_average(predict, crops) if flip and i == refine - 1 else predict(crops)
            pred = np.stack([f0.to_crop(fr.to_image(p)) for f0, fr, p in zip(first, frames, refined)])
    return imgs, pred, kps, msk


def predict_kaggle(predict: Predictor, images: np.ndarray, refine: int = 1, flip: bool = True) -> np.ndarray:
    """(N, 15, 2) keypoints in the pixels of Kaggle 96x96 images, predicted exactly as
    :func:`evaluate` measures Kaggle rows: a first pass on the image itself, then ``refine``
    re-centred passes, the last mirror-averaged (``flip``)."""
    from .data.dataset import kaggle_faces

    n = len(images)
    faces = kaggle_faces(images, np.full((n, len(KEYPOINT_NAMES), 2), np.nan, np.float32),
                         np.zeros((n, len(KEYPOINT_NAMES)), bool), [f"test/{i}" for i in range(n)])
    return predict_faces(predict, faces, refine, 0, flip)[1]


def evaluate(model: str | os.PathLike | None, data: list[str], split_name: str = "val", val_fraction: float = 0.15,
             seed: int = 0, refine: int = 1, out_dir: str | os.PathLike | None = None, cache_dir: str | None = None,
             predictor: Predictor | None = None, gap: bool = False, flip: bool = True) -> dict:
    """Evaluate on the validation split (default), the training split or all faces; write
    JSON + PNG to ``out_dir``. ``flip``: mirror-average the final pass (the photo pipeline's
    default). ``gap``: also measure each set's label convention against 300-W's
    (:func:`facekeypoints.training.data.harmonise.label_gap`; use the training split; single passes)."""
    faces = load(data, cache_dir)
    if split_name != "all":
        tr, va = split(faces, val_fraction, seed)
        faces = faces.subset(va if split_name == "val" else tr)
    if len(faces) == 0:
        from ..errors import FkpError

        raise FkpError("no faces to evaluate (empty validation split?)")
    predict = predictor or load_predictor(model)
    flip = flip and not gap  # label offsets are measured, and applied, on single passes
    _, pred, kps, msk = predict_faces(predict, faces, refine, seed, flip)
    result: dict = {"model": str(model) if model else "default", "split": split_name, "refine": refine, "flip": flip,
                    "frame": f"{CROP_SIZE}x{CROP_SIZE}", "sets": {}}
    result["sets"]["all"] = metrics.summary(pred, kps, msk)
    for src in sorted(set(faces.sources)):
        idx = np.array([s == src for s in faces.sources])
        result["sets"][src] = metrics.summary(pred[idx], kps[idx], msk[idx])
    if gap:
        result["label_gap"] = {k: v.tolist() for k, v in label_gap(pred, kps, msk, faces.sources).items()}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "metrics.json", result)
        plot_per_keypoint(result, out / "per_keypoint.png")
    return result


def format_table(result: dict) -> str:
    sets = result["sets"]
    names = list(sets)
    lines = [f"{'':28s}" + "".join(f"{n + ' RMSE':>14s}{n + ' NME%':>13s}" for n in names)]
    lines.append(f"{'faces':28s}" + "".join(f"{sets[n]['faces']:>14d}{'':>13s}" for n in names))
    lines.append(f"{'ALL KEYPOINTS':28s}" + "".join(f"{sets[n]['rmse']:>14.3f}{100 * sets[n]['nme']:>13.2f}" for n in names))
    for k in KEYPOINT_NAMES:
        lines.append(f"{k:28s}" + "".join(
            f"{sets[n]['per_keypoint'][k]['rmse']:>14.3f}{100 * sets[n]['per_keypoint'][k]['nme']:>13.2f}" for n in names))
    return "\n".join(lines)


def plot_per_keypoint(result: dict, path: str | os.PathLike) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = result["sets"]
    names = list(sets)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    w = 0.8 / len(names)
    x = np.arange(len(KEYPOINT_NAMES))
    for i, n in enumerate(names):
        ax.bar(x + i * w, [100 * sets[n]["per_keypoint"][k]["nme"] for k in KEYPOINT_NAMES], w,
               label=f"{n} (NME {100 * sets[n]['nme']:.2f}%, RMSE {sets[n]['rmse']:.2f}px)")
    ax.set_xticks(x + w * (len(names) - 1) / 2, [k.replace("_", " ") for k in KEYPOINT_NAMES], rotation=40, ha="right", fontsize=8)
    ax.set_ylabel("NME (% of outer-eye distance)")
    ax.set_title(f"Per-keypoint error ({result['split']} split, refine={result['refine']})")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

