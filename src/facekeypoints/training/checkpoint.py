"""Checkpoints: load one on the CPU, and predict crops with a torch model.

Kept apart from the training loop so evaluation and export need only this, not
the loop (the loop calls evaluation, never the other way round).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import FkpError
from ..geometry import Framing
from .model import build, denormalise, n_points


def load_checkpoint(path: str | os.PathLike) -> tuple[torch.nn.Module, dict]:
    """Load a training checkpoint on the CPU (whatever device trained it)."""
    p = Path(path)
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
        model = build(ckpt["arch"])
        model.load_state_dict(ckpt["model"])
    except FileNotFoundError:
        raise FkpError(f"{p}: no such checkpoint") from None
    except Exception as e:  # noqa: BLE001 - any unpickling problem is a bad file to the user
        raise FkpError(f"{p}: not a facekeypoints checkpoint ({type(e).__name__})") from None
    model.eval()
    return model, ckpt


def checkpoint_framing(ckpt: dict) -> Framing:
    """The crop framing a checkpoint's model was trained on (``TrainConfig.crop_zoom`` / ``crop_down``;
    the Kaggle framing for checkpoints from before them)."""
    cfg = ckpt.get("config", {})
    return Framing(float(cfg.get("crop_zoom", 1.0)), float(cfg.get("crop_down", 0.0)))


def predict_crops(model: torch.nn.Module, images: np.ndarray, batch: int = 256,
                  device: torch.device | None = None) -> np.ndarray:
    """(N, 96, 96) uint8 -> (N, P, 2) crop pixels, P = 15 keypoints or 68 landmarks as the
    model returns (``device``: where the model is; default CPU)."""
    model.eval()
    k = n_points(model)
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = torch.from_numpy(images[i:i + batch])
            if device is not None:
                x = x.to(device)
            x = x.float().div_(255).unsqueeze(1)
            out.append(denormalise(model(x)).float().cpu().numpy().reshape(-1, k, 2))
    return np.concatenate(out) if out else np.zeros((0, k, 2), np.float32)
