"""Evaluation: Kaggle RMSE (96x96 frame) and inter-ocular NME, overall and per
keypoint, as a table, a JSON file and a bar chart; for a 68-landmark model also the
68-point NME (300-W's metric) overall and per region, on the sets that label 68 points.

Crops come from detector-like boxes (Haar statistics, seeded), and the model is
run the way the photo pipeline runs it: a first pass, then ``refine`` passes
re-centred on the previous prediction. Kaggle rows are the exception: their first
pass sees the row's own 96x96 image, as ``fkp kaggle-submit`` does, so their RMSE
is Kaggle's, in the competition's pixels. Works with an ONNX model (no torch) or
a training checkpoint (``.pt``, needs torch).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import metrics
from ..fileio import write_json_atomic
from ..geometry import CROP_SIZE, KAGGLE_FRAMING, Framing, crop, frame_from_keypoints, mirror_average
from ..schema import IBUG68_REGIONS, IBUG68_TO_15_MATRIX, KEYPOINT_NAMES, NUM_LANDMARKS
from .data.augment import eval_batch, eval_frames
from .data.dataset import FaceSet, load, split
from .data.harmonise import label_gap

Predictor = Callable[[np.ndarray], np.ndarray]


def as_keypoints(pred: np.ndarray) -> np.ndarray:
    """(N, 68, 2) landmarks -> (N, 15, 2) keypoints (``IBUG68_TO_15_MATRIX``); 15 pass through."""
    pred = np.asarray(pred, np.float32)
    if pred.ndim == 3 and pred.shape[1] == NUM_LANDMARKS:
        return np.einsum("kl,nlc->nkc", IBUG68_TO_15_MATRIX, pred).astype(np.float32)
    return pred


class _Onnx68:
    """An ONNX model of either point count, read from its output (the 15-point runtime
    class predates 68-landmark models)."""

    def __init__(self, path: str | os.PathLike, threads: int | None) -> None:
        from ..runtime import as_batch, onnx_session

        self.session, self.meta = onnx_session(Path(path), threads, True)
        self.k = int(self.meta.get("points", len(KEYPOINT_NAMES)))
        self._batch = as_batch

    def predict(self, crops: np.ndarray) -> np.ndarray:
        x = self._batch(crops)
        if not len(x):
            return np.zeros((0, self.k, 2), np.float32)
        name = self.session.get_inputs()[0].name
        return np.asarray(self.session.run(None, {name: x})[0], np.float32).reshape(len(x), self.k, 2)


def load_predictor(model: str | os.PathLike | None, threads: int | None = None, native: bool = False) -> Predictor:
    """A function (N, 96, 96) uint8 -> (N, 15, 2) crop pixels for an ONNX file or checkpoint.
    ``native``: return what the model returns, (N, 68, 2) for a 68-landmark model."""
    if model is not None and str(model).endswith((".pt", ".pth", ".ckpt")):
        from .checkpoint import load_checkpoint, predict_crops

        net, _ = load_checkpoint(model)
        fn = lambda crops: predict_crops(net, crops)  # noqa: E731
    elif model is not None:
        fn = _Onnx68(model, threads).predict
    else:
        from ..runtime import OnnxKeypointModel

        fn = OnnxKeypointModel(model, threads=threads).predict
    return fn if native else (lambda crops: as_keypoints(fn(crops)))


def model_framing(model: str | os.PathLike | None) -> Framing:
    """The crop framing a model was trained on (:class:`Framing`): an ONNX sidecar's ``"framing"``,
    a checkpoint's ``crop_zoom`` / ``crop_down``; the Kaggle framing for the shipped 15-point model
    and for models from before framings."""
    if model is None:
        return KAGGLE_FRAMING
    if str(model).endswith((".pt", ".pth", ".ckpt")):
        from .checkpoint import checkpoint_framing, load_checkpoint

        return checkpoint_framing(load_checkpoint(model)[1])
    meta = Path(model).with_suffix(".json")
    if not meta.is_file():
        return KAGGLE_FRAMING
    try:
        return Framing.from_meta(json.loads(meta.read_text()).get("framing"))
    except (OSError, ValueError, TypeError, AttributeError) as e:
        from ..errors import FkpError

        raise FkpError(f"{meta}: unreadable crop framing ({type(e).__name__})") from None


def predict_faces(predict: Predictor, faces: FaceSet, refine: int = 1, seed: int = 0,
                  flip: bool = False, with68: bool = False,
                  framing: Framing = KAGGLE_FRAMING) -> tuple[np.ndarray, ...]:
    """Run the model on detector-like crops of each face; returns crops, predictions,
    labels and mask, all in the 96x96 frame of the first (Kaggle-framed) crop (``with68``: then
    also the 68 landmark labels and their mask). ``flip``: mirror-average the final pass, as the
    photo pipeline does. ``framing``: the model's own crop on each frame (:class:`Framing`, as the
    photo pipeline cuts it; the figures stay in the Kaggle frame). Predictions have the model's own
    point count (15 or 68); :func:`as_keypoints` turns 68 into the 15."""
    exact = np.array([s == "kaggle" for s in faces.sources], bool)  # Kaggle rows: their own 96x96 image
    imgs, kps, msk = eval_batch(faces.contexts, faces.keypoints, faces.mask, seed, exact)
    first = eval_frames(len(imgs), seed, exact)
    rest: tuple = ()
    if with68:
        # every labelled landmark, also those the crop cuts off (the chin often lies below it):
        # the 300-W metric counts them all
        p68 = np.stack([f.to_crop(p) for f, p in zip(first, faces.points68)]) if len(imgs) else faces.points68.copy()
        rest = (p68, faces.mask68.copy())
    if not len(imgs):
        return (imgs, np.zeros((0, len(KEYPOINT_NAMES), 2), np.float32), kps, msk, *rest)

    def in_first(frames: list, pred: np.ndarray) -> np.ndarray:
        """Points predicted in each face's ``frames`` crop -> the first crop's pixels."""
        return np.stack([f0.to_crop(fr.to_image(p)) for f0, fr, p in zip(first, frames, pred)])

    if framing.identity:
        pred = mirror_average(predict, imgs) if flip and not refine else predict(imgs)
    else:
        cut = [framing.apply(f) for f in first]
        framed = eval_batch(faces.contexts, faces.keypoints, faces.mask, seed, exact, framing=framing)[0]
        pred = in_first(cut, mirror_average(predict, framed) if flip and not refine else predict(framed))
    # Map each eval crop back into its 192 px context, re-crop around the prediction.
    for i in range(refine):
        ctx_pred = [f.to_image(p) for f, p in zip(first, as_keypoints(pred))]
        frames = [framing.apply(frame_from_keypoints(k, rotate=True)) for k in ctx_pred]
        crops = np.stack([crop(c, fr) for c, fr in zip(faces.contexts, frames)])
        pred = in_first(frames, mirror_average(predict, crops) if flip and i == refine - 1 else predict(crops))
    return (imgs, pred, kps, msk, *rest)


def set_metrics(pred: np.ndarray, kps: np.ndarray, msk: np.ndarray, p68: np.ndarray, m68: np.ndarray,
                sources: list[str]) -> dict:
    """Per source (and "all"): the 15-keypoint summary (a 68-landmark model's through the
    fixed map) and, for a 68-landmark model, ``nme68`` and its ``landmarks68`` summary on the
    faces that label all 68; with both 300-W and LFPW also "300w+lfpw". MTFL has no eye corners: its ``nme_eye_centres`` divides by the
    eye-centre distance instead."""
    pred15 = as_keypoints(pred)
    has68 = pred.shape[1] == NUM_LANDMARKS
    res = {}
    src = np.asarray(sources)
    names = ["all", *sorted(set(sources))]
    if {"300w", "lfpw"} <= set(sources):
        names.append("300w+lfpw")  # 300-W's own training photos together (AFW, HELEN, LFPW)
    for name in names:
        idx = (np.ones(len(src), bool) if name == "all" else np.isin(src, ["300w", "lfpw"]) if name == "300w+lfpw"
               else src == name)
        r = metrics.summary(pred15[idx], kps[idx], msk[idx])
        if not np.isfinite(r["nme"]) and msk[idx].any():
            r["nme_eye_centres"] = metrics.nme_eye_centres(pred15[idx], kps[idx], msk[idx])
        if has68 and m68[idx].all(-1).any():
            r["landmarks68"] = metrics.summary68(pred[idx], p68[idx], m68[idx])
            r["nme68"] = r["landmarks68"]["nme"]
        res[name] = r
    return res


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
             predictor: Predictor | None = None, gap: bool = False, flip: bool = True,
             framing: Framing | None = None) -> dict:
    """Evaluate on the validation split (default), the training split or all faces; write
    JSON + PNG to ``out_dir``. ``flip``: mirror-average the final pass (the photo pipeline's
    default). ``gap``: also measure each set's label convention against 300-W's
    (:func:`facekeypoints.training.data.harmonise.label_gap`; use the training split; single passes).
    ``framing``: the model's crop framing (default: what ``model`` records, :func:`model_framing`)."""
    faces = load(data, cache_dir)
    if split_name != "all":
        tr, va = split(faces, val_fraction, seed)
        faces = faces.subset(va if split_name == "val" else tr)
    if len(faces) == 0:
        from ..errors import FkpError

        raise FkpError("no faces to evaluate (empty validation split?)")
    predict = predictor or load_predictor(model, native=True)
    framing = framing or (model_framing(model) if predictor is None else KAGGLE_FRAMING)
    flip = flip and not gap  # label offsets are measured, and applied, on single passes
    _, pred, kps, msk, p68, m68 = predict_faces(predict, faces, refine, seed, flip, with68=True, framing=framing)
    result: dict = {"model": str(model) if model else "default", "split": split_name, "refine": refine, "flip": flip,
                    "frame": f"{CROP_SIZE}x{CROP_SIZE}", "framing": framing.to_meta(), "points": int(pred.shape[1]),
                    "sets": set_metrics(pred, kps, msk, p68, m68, faces.sources)}
    if gap:
        result["label_gap"] = {k: v.tolist() for k, v in label_gap(as_keypoints(pred), kps, msk, faces.sources).items()}
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
    for n in names:
        if "nme_eye_centres" in sets[n]:
            lines.append(f"{n}: no eye corners; NME by eye-centre distance {100 * sets[n]['nme_eye_centres']:.2f}%")
    with68 = [n for n in names if "landmarks68" in sets[n]]
    if with68:
        lines.append("")
        lines.append(f"{'68 LANDMARKS (NME %)':28s}" + "".join(f"{n:>14s}" for n in with68))
        lines.append(f"{'faces':28s}" + "".join(f"{sets[n]['landmarks68']['faces']:>14d}" for n in with68))
        lines.append(f"{'all 68':28s}" + "".join(f"{100 * sets[n]['nme68']:>14.2f}" for n in with68))
        for r in IBUG68_REGIONS:
            lines.append(f"{r:28s}" + "".join(f"{100 * sets[n]['landmarks68']['per_region'][r]:>14.2f}" for n in with68))
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

