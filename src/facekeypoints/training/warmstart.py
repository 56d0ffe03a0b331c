"""Start a model from a shipped ONNX model's weights (``fkp train --init default.onnx``).

The shipped 15-point ``integral`` model took 100 epochs; ``integral68`` has the same backbone
and top-down path and differs only in its last 1x1 convolution (68 heatmaps instead of 15), and
the ``-wide`` models have wider middle stages, started from the narrow model's channels.
Starting from it spends the training budget on what is new (the 68 heatmaps) instead of on
relearning edges and eyes.

The export folded each BatchNorm into its convolution (``export._fuse_bn``), so the ONNX
file holds one (weight, bias) per convolution. Here each convolution gets the folded weight
and its BatchNorm is *calibrated* so that it reproduces the folded bias: on a batch of real
training crops, the running mean/variance are the statistics of the convolution's output and
the affine (gamma, beta) undoes them, so that the unfolded model computes exactly what the
ONNX model computes (eval mode) and nearly so in training mode (batch statistics). The
heatmap layer's channels are copied from the 15: each landmark starts from the keypoint that
is it (eye corners, brow ends, nose tip, mouth points), else the nearest one on the mean face.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import FkpError
from ..schema import IBUG68_TO_15, KEYPOINT_NAMES, NUM_LANDMARKS


def _onnx_weights(path: Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], np.ndarray | None]:
    """Module path (as in the folded torch model) -> (weight, bias) of each ONNX Conv; and a 68-point
    model's learnt logit offsets beyond the crop (``outside``), or None."""
    import onnx
    from onnx import numpy_helper

    try:
        m = onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - any parse problem is a bad file to the user
        raise FkpError(f"{path}: not a loadable ONNX model ({type(e).__name__})") from None
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    out = {}
    for node in m.graph.node:
        if node.op_type != "Conv":
            continue
        comps = [c for c in node.name.split("/") if c][1:-1]  # drop "net" (the export wrapper) and "Conv"
        if not comps:
            continue
        name = ".".join([comps[0]] + [c.split(".")[-1] for c in comps[1:]])
        w = init.get(node.input[1])
        b = init.get(node.input[2]) if len(node.input) > 2 else None
        if w is None:
            continue
        out[name] = (w, np.zeros(w.shape[0], np.float32) if b is None else b)
    return out, init.get("net.outside")


def _conv_bn_pairs(model: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d | None]]:
    """Every convolution in definition order, with the BatchNorm that follows it (if any):
    the order in which ``export._fuse_bn`` folds them."""
    leaves = [m for m in model.modules() if not list(m.children())]
    pairs = []
    for i, m in enumerate(leaves):
        if isinstance(m, nn.Conv2d):
            nxt = leaves[i + 1] if i + 1 < len(leaves) else None
            pairs.append((m, nxt if isinstance(nxt, nn.BatchNorm2d) else None))
    return pairs


def _head_sources(mean68: np.ndarray | None) -> list[int]:
    """For each of the 68 landmarks, the keypoint channel it starts from."""
    single = {idx[0]: k for k, n in enumerate(KEYPOINT_NAMES) for idx in [IBUG68_TO_15[n]] if len(idx) == 1}
    eyes = {i: KEYPOINT_NAMES.index("right_eye_center") for i in range(36, 42)}
    eyes.update({i: KEYPOINT_NAMES.index("left_eye_center") for i in range(42, 48)})
    src = []
    for i in range(NUM_LANDMARKS):
        if i in single:
            src.append(single[i])
        elif i in eyes:
            src.append(eyes[i])
        elif mean68 is not None:
            kp = np.stack([mean68[list(IBUG68_TO_15[n])].mean(0) for n in KEYPOINT_NAMES])
            src.append(int(np.argmin(np.linalg.norm(kp - mean68[i], axis=1))))
        else:
            src.append(KEYPOINT_NAMES.index("nose_tip"))
    return src


@torch.no_grad()
def init_from_onnx(model: nn.Module, path: str | os.PathLike, calib: np.ndarray,
                   mean68: np.ndarray | None = None) -> int:
    """Load an exported ``integral`` ONNX model's weights into ``model`` (``integral``, ``integral68``
    or their wide variants). A wider model is *widened*: its extra channels keep their random start
    and every convolution reads them with zero weights, so it starts as the narrower model's exact
    function (Net2Net-style) and training grows the new channels from there. A 68-point file into a
    68-point model brings its heatmap layer and its learnt logits beyond the crop too, so a training
    continues from it. ``calib``: (N, 96, 96) uint8 training crops for the BatchNorm statistics;
    ``mean68``: the mean face's 68 landmarks (any frame), to pick the heatmap channels of
    landmarks that are none of the 15. Returns the number of convolutions loaded."""
    from .export import _fuse_bn
    from .model import build

    p = Path(path)
    convs, outside = _onnx_weights(p)
    with torch.enable_grad():
        folded = _fuse_bn(build("integral").eval())
    names = [n for n, m in folded.named_modules() if isinstance(m, nn.Conv2d)]
    missing = [n for n in names if n not in convs]
    if missing:
        raise FkpError(f"{p}: not an 'integral' model (no weights for {', '.join(missing[:3])})")
    pairs = _conv_bn_pairs(model)
    if len(pairs) != len(names):
        raise FkpError(f"{p}: {len(names)} convolutions, the model has {len(pairs)}")
    head = getattr(model, "n_points", len(KEYPOINT_NAMES))
    bias_of: dict[nn.Conv2d, torch.Tensor] = {}
    for (conv, bn), name in zip(pairs, names):
        w, b = (torch.from_numpy(np.array(a, np.float32)) for a in convs[name])
        if conv.weight.shape[0] < w.shape[0] and name != names[-1]:
            raise FkpError(f"{p}: {name} has {w.shape[0]} channels, the model {conv.weight.shape[0]}: other stage "
                           "widths (a model starts from one of its own widths or narrower)")
        if conv.weight.shape[0] > w.shape[0] and name != names[-1]:  # widening: the extra channels keep
            extra = conv.weight.shape[0] - w.shape[0]                # their random start, zero bias
            w = torch.cat([w, conv.weight[w.shape[0]:, :w.shape[1]].detach().clone()], dim=0)
            b = torch.cat([b, torch.zeros(extra)])
        if conv.weight.shape[0] != w.shape[0]:  # the heatmap layer: one channel per landmark
            if w.shape[0] != len(KEYPOINT_NAMES) or conv.weight.shape[0] != head:
                raise FkpError(f"{p}: {name} has {w.shape[0]} channels, the model {conv.weight.shape[0]}")
            src = _head_sources(mean68)
            w, b = w[src], b[src]
        if conv.weight.shape[1] > w.shape[1]:  # extra inputs (integral68's coordinate channels, a wider
            # stage's new channels) start at 0, so the wider model computes the narrower one's function
            w = torch.cat([w, torch.zeros(w.shape[0], conv.weight.shape[1] - w.shape[1], *w.shape[2:])], dim=1)
        if conv.weight.shape != w.shape:
            raise FkpError(f"{p}: {name} is {tuple(w.shape)}, the model's {tuple(conv.weight.shape)}")
        conv.weight.copy_(w)
        if bn is None:
            conv.bias.copy_(b)
        else:  # identity for now: eval mode computes the folded model exactly
            bn.weight.fill_(1.0)
            bn.bias.copy_(b)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
            bias_of[conv] = b
    if outside is not None and getattr(model, "outside", None) is not None:
        if tuple(model.outside.shape) != outside.shape:
            raise FkpError(f"{p}: its heatmaps are {outside.shape[-1]} cells wide, the model's "
                           f"{model.outside.shape[-1]}")
        model.outside.copy_(torch.from_numpy(np.array(outside, np.float32)))  # continue a 68-point model
    # calibrate: record each convolution's output statistics in the folded model's behaviour
    stats: dict[nn.Conv2d, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = [conv.register_forward_hook(lambda m, _i, o: stats.__setitem__(m, (o.mean((0, 2, 3)), o.var((0, 2, 3)))))
             for conv in bias_of]
    was = model.training
    model.eval()
    model(torch.from_numpy(calib).float().div_(255).unsqueeze(1))
    for h in hooks:
        h.remove()
    for conv, bn in pairs:
        if bn is None:
            continue
        mu, var = stats[conv]
        sd = torch.sqrt(var + bn.eps)
        bn.running_mean.copy_(mu)
        bn.running_var.copy_(var)
        bn.weight.copy_(sd)
        bn.bias.copy_(mu + bias_of[conv])
    model.train(was)
    return len(pairs)
