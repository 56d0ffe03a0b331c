"""Train the face verifier that filters the Haar cascade's detections.

Positives: every training face, cropped like a detector box (with the keypoint
model's augmentation). Negatives, from the same training photos only (validation
photos are held out by the same group split as the keypoint model):
* the Haar cascade's own boxes that miss the labelled face (its real false alarms),
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
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ..detection import HaarDetector, box_iou
from ..fileio import write_json_atomic
from ..geometry import CROP_SIZE, Frame, crop, frame_from_keypoints
from ..imageio import read_image, to_gray
from .data.augment import AugmentConfig, eval_batch, make_batch
from .data.dataset import load, resolve, split
from .data.landmarks import in_validation, load_300w, load_udacity
from .model import VerifierNet


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


def _low_res(imgs: np.ndarray, rng: np.random.Generator, p: float = 0.4) -> np.ndarray:
    """Simulate small faces (24-48 px in the photo) on a share of crops, faces and
    non-faces alike, so that sharpness is no cue for the verifier."""
    out = imgs.copy()
    for i in np.flatnonzero(rng.random(len(imgs)) < p):
        s = int(rng.integers(24, 49))
        small = cv2.resize(imgs[i], (s, s), interpolation=cv2.INTER_AREA)
        out[i] = cv2.resize(small, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR)
    return out


def _negatives(photos, rng: np.random.Generator, val_fraction: float, seed: int,
               cache_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Mined negatives for the training and validation photos (cached: mining runs Haar on every photo)."""
    path = Path(cache_dir) / f"verifier-negatives-{seed}-{val_fraction}-{len(photos)}.npz" if cache_dir else None
    if path is not None and path.exists():
        z = np.load(path)
        return z["train"], z["val"]
    haar = HaarDetector(max_side=640, min_neighbors=1, verify=False, fallback=False, profile=False, big_side=0, coarse=None)
    tr = mine_negatives([s for s in photos if not in_validation(s.group, val_fraction, seed)], rng, haar)
    va = mine_negatives([s for s in photos if in_validation(s.group, val_fraction, seed)], rng, haar)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, train=tr, val=va)
        os.replace(tmp, path)
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
                   val_fraction: float = 0.15, threads: int = 1) -> dict:
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    faces = load(data, cache_dir)
    tr_idx, va_idx = split(faces, val_fraction, seed)
    pos_tr, pos_va = faces.subset(tr_idx), faces.subset(va_idx)
    photos = [s for s in _samples(data) if s.source == "300w"]  # Udacity frames are all face: no background
    neg_tr, neg_va = _negatives(photos, rng, val_fraction, seed, cache_dir)
    print(f"verifier: {len(pos_tr)} faces / {len(neg_tr)} non-faces to train, {len(pos_va)} / {len(neg_va)} to validate")

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
        print(f"epoch {epoch + 1}/{epochs} loss {np.mean(losses):.4f}")
    model.eval()
    pv, _, _ = eval_batch(pos_va.contexts, pos_va.keypoints, pos_va.mask, seed)
    with torch.no_grad():
        p_pos = torch.sigmoid(model(torch.from_numpy(pv).float().div_(255).unsqueeze(1))).squeeze(1).numpy()
        p_neg = torch.sigmoid(model(torch.from_numpy(neg_va).float().div_(255).unsqueeze(1))).squeeze(1).numpy()
    with torch.no_grad():
        small = _low_res(pv, np.random.default_rng(seed), p=1.0)
        p_small = torch.sigmoid(model(torch.from_numpy(small).float().div_(255).unsqueeze(1))).squeeze(1).numpy()
    metrics = {"faces_kept": float((p_pos >= 0.5).mean()), "small_faces_kept": float((p_small >= 0.5).mean()),
               "non_faces_rejected": float((p_neg < 0.5).mean()), "val_faces": len(pv), "val_non_faces": len(neg_va)}
    print(json.dumps(metrics))
    _export(model, out, metrics)
    return metrics


def _export(model: nn.Module, out: str, metrics: dict) -> None:
    import onnxruntime as ort

    from .. import __version__
    from .export import _fuse_bn, sha256

    class Prob(nn.Module):
        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.net(x)).reshape(-1)

    deployed = Prob(_fuse_bn(model)).eval()
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
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--out", default="verifier.onnx")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args(argv)
    train_verifier(args.data, args.out, args.epochs, args.seed, args.cache_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
