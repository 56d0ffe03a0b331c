"""Keypoint regression CNNs (torch; training side only).

Both take (N, 1, 96, 96) greyscale in [0, 1] and return (N, 30) coordinates
normalised to [-1, 1] (x = (px - 47.5) / 48), in Kaggle column order.

* ``seed``: the original write-up's design: three conv/max-pool blocks and two
  wide dense layers (about 9.6 M weights), trained with SGD + Nesterov momentum.
* ``integral`` (default): a small residual CNN with batch norm (folded into the
  convolutions at export), a top-down path to 24x24 heatmaps and a soft-argmax:
  about a fifteenth of the seed's weights, and on 300-W about 10% lower NME than
  ``compact`` for the same training (docs/training/).
* ``compact``: the same backbone with a dense-layer head instead (the previous default).
* ``integral68``: ``integral`` with one heatmap per iBUG landmark: returns (N, 136), the 68
  points; the 15 keypoints are the fixed linear map ``IBUG68_TO_15_MATRIX`` of them
  (:func:`to_keypoints`), so sets that label only 15 or 5 points train through it.

* ``integral48``: ``integral`` with 48x48 heatmaps (an ablation of the heatmap resolution).
* ``integral-wide``: ``integral`` with wider middle stages (more capacity); ``integral68-wide``: the
  same for the 68 landmarks.

``model.n_points`` tells which (15 or 68).
"""

from __future__ import annotations

import torch
from torch import nn

from ..geometry import CROP_SIZE
from ..schema import IBUG68_TO_15_MATRIX, NUM_KEYPOINTS, NUM_LANDMARKS

OUT = 2 * NUM_KEYPOINTS
OUTSIDE_LOGIT = -4.0  # integral68's starting logit offset for the heatmap cells beyond the crop


class SeedNet(nn.Module):
    """Stacked conv/pool blocks + dense layers, as in the original tutorial."""

    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int, k: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2), nn.ReLU(inplace=True), nn.MaxPool2d(2))

        self.features = nn.Sequential(block(1, 32, 3), block(32, 64, 3), block(64, 128, 3))
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(128 * 12 * 12, 500), nn.ReLU(inplace=True), nn.Dropout(0.3),
            nn.Linear(500, 500), nn.ReLU(inplace=True), nn.Dropout(0.3),
            nn.Linear(500, OUT),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _cbr(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _Res(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c),
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class CompactNet(nn.Module):
    """96 -> 48 -> 24 -> 12 -> 6 -> 3 residual stages, then a small dense head.

    Keeps spatial layout until the end (no global pooling: position is the answer).
    """

    def __init__(self, width: tuple[int, ...] = (16, 32, 64, 96, 128)) -> None:
        super().__init__()
        w0, w1, w2, w3, w4 = width
        self.features = nn.Sequential(
            _cbr(1, w0, 2),  # 48
            _cbr(w0, w1, 2), _Res(w1),  # 24
            _cbr(w1, w2, 2), _Res(w2),  # 12
            _cbr(w2, w3, 2), _Res(w3),  # 6
            _cbr(w3, w4, 2),  # 3
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(w4 * 9, 192), nn.ReLU(inplace=True), nn.Dropout(0.1),
                                  nn.Linear(192, OUT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class IntegralNet(nn.Module):
    """Heatmaps + soft-argmax ("integral regression"): same backbone as CompactNet, then a
    top-down path back to 24x24 where each keypoint gets a heatmap whose expected position
    is the output. Position stays tied to image location instead of being re-learnt by a
    dense layer, which generalises better from few faces; still trained with MSE on (x, y).
    """

    def __init__(self, width: tuple[int, ...] = (16, 32, 64, 96, 128), head: int = 32,
                 n_points: int = NUM_KEYPOINTS, pad: int = 0) -> None:
        super().__init__()
        self.n_points = n_points
        self.pad = pad
        w0, w1, w2, w3, w4 = width
        self.s24 = nn.Sequential(_cbr(1, w0, 2), _cbr(w0, w1, 2), _Res(w1))
        self.s12 = nn.Sequential(_cbr(w1, w2, 2), _Res(w2))
        self.s6 = nn.Sequential(_cbr(w2, w3, 2), _Res(w3))
        self.s3 = nn.Sequential(_cbr(w3, w4, 2), _cbr(w4, w4))
        self.l3, self.l6 = nn.Conv2d(w4, head, 1), nn.Conv2d(w3, head, 1)
        self.l12, self.l24 = nn.Conv2d(w2, head, 1), nn.Conv2d(w1, head, 1)
        # with ``pad``: the heatmaps extend ``pad`` cells beyond the crop on every side (the
        # features edge-replicated, plus two coordinate channels so that outside cells differ),
        # so that the soft-argmax can place points the crop cuts off, e.g. the chin
        self.smooth = nn.Sequential(_cbr(head, head), nn.Conv2d(head + (2 if pad else 0), n_points, 1))
        g = CROP_SIZE // 4
        centres = (torch.arange(-pad, g + pad, dtype=torch.float32) + 0.5) * 4 - 0.5  # crop pixels of each cell
        self.register_buffer("grid", normalise(centres), persistent=False)
        if pad:
            n = g + 2 * pad
            yy, xx = torch.meshgrid(self.grid, self.grid, indexing="ij")
            self.register_buffer("coords", torch.stack([xx, yy]).reshape(1, 2, n, n), persistent=False)
            # a learnt logit offset per cell, shared by all points, starting low outside the crop:
            # the mass goes there only where the evidence asks for it (and a warm start keeps its aim)
            ring = torch.full((1, 1, n, n), OUTSIDE_LOGIT)
            ring[..., pad:pad + g, pad:pad + g] = 0.0
            self.outside = nn.Parameter(ring)

    def top_down(self, f24: torch.Tensor) -> torch.Tensor:
        """The 24x24 stage's features -> the deeper stages -> the merged 24x24 map (before smoothing)."""
        up = nn.functional.interpolate
        f12 = self.s12(f24)
        f6 = self.s6(f12)
        f3 = self.s3(f6)
        p = self.l6(f6) + up(self.l3(f3), scale_factor=2.0, mode="nearest")
        p = self.l12(f12) + up(p, scale_factor=2.0, mode="nearest")
        return self.l24(f24) + up(p, scale_factor=2.0, mode="nearest")

    def soft_argmax(self, h: torch.Tensor) -> torch.Tensor:
        """(N, points, g, g) heatmap logits -> (N, 2 * points) expected positions on ``self.grid``."""
        n, k, gh, gw = h.shape
        prob = torch.softmax(h.reshape(n, k, gh * gw), dim=2).reshape(n, k, gh, gw)
        px = (prob.sum(dim=2) * self.grid).sum(dim=2)
        py = (prob.sum(dim=3) * self.grid).sum(dim=2)
        return torch.stack([px, py], dim=2).reshape(n, 2 * k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.top_down(self.s24(x))
        if self.pad:  # the 3x3 smoothing on the crop's cells, the heatmap layer on the extended grid
            q = nn.functional.pad(self.smooth[0](p), (self.pad,) * 4, mode="replicate")
            q = torch.cat([q, self.coords.expand(q.shape[0], -1, -1, -1)], dim=1)
            h = self.smooth[1](q) + self.outside  # (N, points, 24 + 2 pad, 24 + 2 pad)
        else:
            h = self.smooth(p)  # (N, points, 24, 24)
        return self.soft_argmax(h)


class Integral68Net(IntegralNet):
    """``integral`` with 68 heatmaps (the iBUG landmarks); the 15 keypoints are derived.

    The Kaggle framing cuts the lower jaw off: on the 300-W photos the chin sits at y = 103 px of
    the 96 px crop (median; 114 px at the 90th percentile) and 39% of faces have a jaw point
    outside the crop, where a soft-argmax over the crop's cells cannot reach. So the heatmaps
    extend 6 cells (24 px) beyond the crop on each side."""

    def __init__(self, width: tuple[int, ...] = (16, 32, 64, 96, 128)) -> None:
        super().__init__(width, n_points=NUM_LANDMARKS, pad=6)


class Integral48Net(IntegralNet):
    """``integral`` with its heatmaps at 48x48 (2 px cells) instead of 24x24: the 24x24 top-down
    features, smoothed as before, are upsampled (bilinear) and added to a 1x1 projection of the
    48x48 stem, then one 1x1 layer makes the heatmaps. Tests whether the soft-argmax's 4 px cells
    limit the accuracy (docs/training/ablation); the extra work is two 1x1 layers at 48x48."""

    def __init__(self, width: tuple[int, ...] = (16, 32, 64, 96, 128), head: int = 32) -> None:
        super().__init__(width, head)
        w0 = width[0]
        self.l48 = nn.Conv2d(w0, head, 1)
        self.smooth = nn.Sequential(_cbr(head, head))
        self.heat48 = nn.Sequential(nn.BatchNorm2d(head), nn.ReLU(inplace=True), nn.Conv2d(head, self.n_points, 1))
        centres = (torch.arange(CROP_SIZE // 2, dtype=torch.float32) + 0.5) * 2 - 0.5
        self.register_buffer("grid", normalise(centres), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f48 = self.s24[0](x)
        p = self.smooth(self.top_down(self.s24[2](self.s24[1](f48))))
        up = nn.functional.interpolate(p, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.soft_argmax(self.heat48(self.l48(f48) + up))


#: ``integral-wide``'s stage widths: the 24x24, 12x12 and 6x6 stages 40, 80 and 112 channels wide.
WIDE = (16, 40, 80, 112, 128)


class IntegralWideNet(IntegralNet):
    """``integral`` with wider 24x24, 12x12 and 6x6 stages (:data:`WIDE`: 40, 80, 112 channels instead of
    32, 64, 96): about 1.4x the multiply-adds for 2.8 % lower NME in the capacity ablation
    (docs/training/ablation); the int8 variant brings it back under the float ``integral``'s time."""

    def __init__(self) -> None:
        super().__init__(width=WIDE)


class Integral68WideNet(Integral68Net):
    """``integral68`` on ``integral-wide``'s stages, so that it can start from a wide 15-point model."""

    def __init__(self) -> None:
        super().__init__(width=WIDE)


ARCHITECTURES = {"compact": CompactNet, "seed": SeedNet, "integral": IntegralNet, "integral68": Integral68Net,
                 "integral48": Integral48Net, "integral-wide": IntegralWideNet,
                 "integral68-wide": Integral68WideNet}


def build(arch: str) -> nn.Module:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch]()


def n_points(model: nn.Module) -> int:
    """Points a model returns: 15 keypoints, or 68 landmarks."""
    return int(getattr(model, "n_points", NUM_KEYPOINTS))


_TO15 = torch.from_numpy(IBUG68_TO_15_MATRIX)


def to_keypoints(y: torch.Tensor) -> torch.Tensor:
    """(N, 136) landmarks (any affine-consistent units) -> (N, 30) keypoints; (N, 30) passes."""
    if y.shape[1] == OUT:
        return y
    pts = y.reshape(len(y), NUM_LANDMARKS, 2)
    return torch.einsum("kl,nlc->nkc", _TO15.to(y.device, y.dtype), pts).reshape(len(y), OUT)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def normalise(px: torch.Tensor) -> torch.Tensor:
    return (px - (CROP_SIZE - 1) / 2) / (CROP_SIZE / 2)


def denormalise(y: torch.Tensor) -> torch.Tensor:
    return y * (CROP_SIZE / 2) + (CROP_SIZE - 1) / 2


class VerifierNet(nn.Module):
    """Face / not-a-face for a 96x96 crop made the keypoint way (one logit).

    Tiny on purpose (about 60 k weights, a fraction of a millisecond): it only has to
    reject the Haar cascade's false alarms (paws, fabric, foliage) and crops that
    slid off a face.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.AvgPool2d(2),  # 48
            _cbr(1, 16, 2), _cbr(16, 32, 2), _cbr(32, 64, 2), _cbr(64, 64, 2),  # 3x3
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(64 * 9, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
