"""Checkpoint -> ONNX (dynamic batch), verified against torch on real-looking input.

The ONNX graph takes ``input``: (N, 1, 96, 96) float32 in [0, 1] and returns
``keypoints``: (N, 15, 2) in crop pixels (a 68-landmark model: (N, 68, 2), the 15 being
``IBUG68_TO_15_MATRIX @`` them), so the runtime needs no torch and no knowledge of the
training normalisation. A JSON sidecar records the input size, the point count
(``"points"``), keypoint names, version and the model's sha256 (checked at load).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..errors import FkpError
from ..fileio import write_json_atomic
from ..geometry import CROP_SIZE
from ..schema import IBUG68_REGION_OF, KEYPOINT_NAMES, NUM_LANDMARKS
from .checkpoint import checkpoint_framing, load_checkpoint
from .model import denormalise, n_points


class _Deployed(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.k = n_points(net)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return denormalise(self.net(x)).reshape(-1, self.k, 2)


def _fuse_bn(model: nn.Module) -> nn.Module:
    """Fold BatchNorm into the preceding convolution (smaller, faster graph)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for name, child in list(model.named_children()):
        if isinstance(child, nn.Sequential):
            mods = list(child)
            fused: list[nn.Module] = []
            i = 0
            while i < len(mods):
                if isinstance(mods[i], nn.Conv2d) and i + 1 < len(mods) and isinstance(mods[i + 1], nn.BatchNorm2d):
                    fused.append(fuse_conv_bn_eval(mods[i], mods[i + 1]))
                    i += 2
                else:
                    fused.append(_fuse_bn(mods[i]))
                    i += 1
            setattr(model, name, nn.Sequential(*fused))
        else:
            _fuse_bn(child)
    return model


def sha256(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def export(checkpoint: str | os.PathLike, out: str | os.PathLike, atol: float = 1e-4, check_images: np.ndarray | None = None) -> dict:
    """Export a checkpoint to ONNX + ``.json`` metadata; returns the metadata.

    Raises if onnxruntime's output differs from torch's by more than ``atol`` pixels.
    """
    import onnxruntime as ort

    net, ckpt = load_checkpoint(checkpoint)
    ref = _Deployed(net).eval()
    deployed = _Deployed(_fuse_bn(load_checkpoint(checkpoint)[0])).eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")  # unique per export
    os.close(fd)
    tmp = Path(name)
    try:
        dummy = torch.rand(2, 1, CROP_SIZE, CROP_SIZE)
        with warnings.catch_warnings():  # the TorchScript exporter is deprecated but exact for this plain CNN
            warnings.simplefilter("ignore")
            torch.onnx.export(deployed, (dummy,), str(tmp), input_names=["input"], output_names=["keypoints"],
                              dynamic_axes={"input": {0: "batch"}, "keypoints": {0: "batch"}}, opset_version=17,
                              dynamo=False)
        if check_images is None:
            check_images = (np.random.default_rng(0).random((8, CROP_SIZE, CROP_SIZE)) * 255).astype(np.uint8)
        x = check_images.astype(np.float32)[:, None] / 255.0
        sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"input": x})[0]
        with torch.no_grad():
            want = ref(torch.from_numpy(x)).numpy()
        diff = float(np.abs(got - want).max())
        if diff > atol:
            raise FkpError(f"{out}: ONNX output differs from torch by {diff:.2e} px (limit {atol:.0e})")
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except OSError as e:
        raise FkpError(f"{out}: cannot write ({e.strerror or e})") from None
    finally:
        tmp.unlink(missing_ok=True)
    best = ckpt.get("best_metrics", {})
    meta = {
        "format": "facekeypoints-onnx/1",
        "version": __version__,
        "arch": ckpt["arch"],
        "input": {"name": "input", "shape": [None, 1, CROP_SIZE, CROP_SIZE], "range": [0.0, 1.0], "color": "gray"},
        "output": {"name": "keypoints", "shape": [None, ref.k, 2], "units": "crop pixels"},
        "points": ref.k,
        "keypoints": list(KEYPOINT_NAMES),
        "crop_size": CROP_SIZE,
        # where the crop sits on a face's Kaggle frame (geometry.Framing); the runtime cuts crops so
        "framing": checkpoint_framing(ckpt).to_meta(),
        "epoch": ckpt.get("epoch"),
        "validation": {k: {m: v[m] for m in ("faces", "rmse", "nme", "nme68") if m in v} for k, v in best.items()},
        "max_abs_diff_vs_torch": diff,
        "sha256": sha256(out),
    }
    if ref.k == NUM_LANDMARKS:  # the 15 keypoint names above are derived from these
        meta["landmark_regions"] = list(IBUG68_REGION_OF)
    write_json_atomic(out.with_suffix(".json"), meta)
    return meta
