"""The face detector network: a depthwise-separable backbone (strides 2-32), a light
feature pyramid merged into one stride-8 map, and a centre-based head (CenterFace /
CenterNet style): per cell a face-centre logit, the centre's offset inside the cell,
the log of the box side (in stride units) and 5 points relative to the centre in
box sides. Fully convolutional: any input size that is a multiple of 32."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STRIDE = 8
OUT_CHANNELS = 1 + 2 + 1 + 10  # heat logit, offset (x, y), log side, 5 points (x, y)


def _cbr(cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class DWBlock(nn.Module):
    """Depthwise k x k (stride s) + pointwise 1x1, residual when shapes allow (BlazeFace-like)."""

    def __init__(self, cin: int, cout: int, s: int = 1, k: int = 5) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cin, k, s, k // 2, groups=cin, bias=False), nn.BatchNorm2d(cin),
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = s == 1 and cin == cout
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return self.act(y + x if self.skip else y)


class FaceDetNet(nn.Module):
    def __init__(self, width: tuple[int, ...] = (16, 32, 48, 96, 128), fpn: int = 48) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = width
        self.stem = nn.Sequential(*_cbr(1, c1, 3, 2))                                 # /2
        self.s4 = nn.Sequential(DWBlock(c1, c2, 2, 3), DWBlock(c2, c2, 1, 3))         # /4
        self.s8 = nn.Sequential(DWBlock(c2, c3, 2), DWBlock(c3, c3), DWBlock(c3, c3))  # /8
        self.s16 = nn.Sequential(DWBlock(c3, c4, 2), DWBlock(c4, c4), DWBlock(c4, c4))  # /16
        self.s32 = nn.Sequential(DWBlock(c4, c5, 2), DWBlock(c5, c5), DWBlock(c5, c5))  # /32
        self.l8 = nn.Sequential(*_cbr(c3, fpn, 1))
        self.l16 = nn.Sequential(*_cbr(c4, fpn, 1))
        self.l32 = nn.Sequential(*_cbr(c5, fpn, 1))
        self.m16 = DWBlock(fpn, fpn)
        self.m8 = DWBlock(fpn, fpn)
        self.head = nn.Sequential(DWBlock(fpn, fpn, 1, 3), nn.Conv2d(fpn, OUT_CHANNELS, 1))
        nn.init.constant_(self.head[-1].bias, 0.0)
        with torch.no_grad():
            self.head[-1].bias[0] = -4.6  # prior face probability 1% per cell (focal loss init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f8 = self.s8(self.s4(self.stem(x)))
        f16 = self.s16(f8)
        f32 = self.s32(f16)
        p = self.l32(f32)
        p = self.m16(self.l16(f16) + F.interpolate(p, scale_factor=2.0, mode="nearest"))
        p = self.m8(self.l8(f8) + F.interpolate(p, scale_factor=2.0, mode="nearest"))
        return self.head(p)
