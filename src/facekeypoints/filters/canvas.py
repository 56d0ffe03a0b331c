"""A tiny vector canvas for the procedural sprite artwork.

Shapes are given in face units (see :mod:`.placement`); they are rasterised at
``SS`` times the sprite resolution and averaged down, which anti-aliases every
edge, then the alpha is feathered by a fraction of a pixel. The result is a
premultiplied BGRA pyramid (mip-maps), so a small face warps a small sprite
instead of aliasing a big one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

SS = 3  # supersampling factor
LEVELS = 4  # pyramid levels below full size
_ALIGN = 2**LEVELS
_SHIFT = 4  # cv2 sub-pixel bits


@dataclass(frozen=True, eq=False)
class Sprite:
    """Rendered artwork: ``levels[k]`` is premultiplied BGRA uint8 at 1/2**k scale.

    ``origin`` is the face-unit point at the top-left corner of pixel (0, 0)'s area
    and ``unit`` the level-0 pixels per inter-ocular distance.
    """

    levels: tuple[np.ndarray, ...]
    origin: tuple[float, float]
    unit: float

    @cached_property
    def trimmed(self) -> tuple[tuple[np.ndarray, int, int], ...]:
        """Per level: the smallest sub-image holding all non-zero alpha, and its (x, y) offset;
        warping it instead of the whole level skips the transparent margins."""
        out = []
        for lv in self.levels:
            ys, xs = np.nonzero(lv[..., 3])
            if len(xs) == 0:
                out.append((lv[:1, :1], 0, 0))
                continue
            x0, y0 = int(xs.min()), int(ys.min())
            sub = np.ascontiguousarray(lv[y0:int(ys.max()) + 1, x0:int(xs.max()) + 1])
            sub.setflags(write=False)
            out.append((sub, x0, y0))
        return tuple(out)


def to_pixels(pts: np.ndarray, origin: tuple[float, float], unit: float) -> np.ndarray:
    """Face units -> level-0 sprite pixel coordinates (pixel centres at integers)."""
    p = np.asarray(pts, np.float64)
    return (p - np.asarray(origin)) * unit - 0.5


class Canvas:
    """Premultiplied float layers over the box (xmin, ymin, xmax, ymax), in face units."""

    def __init__(self, box: tuple[float, float, float, float], unit: float) -> None:
        xmin, ymin, xmax, ymax = box
        self.origin = (xmin, ymin)
        self.unit = unit
        self.w = int(math.ceil((xmax - xmin) * unit / _ALIGN)) * _ALIGN
        self.h = int(math.ceil((ymax - ymin) * unit / _ALIGN)) * _ALIGN
        hs, ws = self.h * SS, self.w * SS
        self.pm = np.zeros((hs, ws, 3), np.float32)
        self.alpha = np.zeros((hs, ws), np.float32)
        step = 1.0 / (unit * SS)
        self.u = (xmin + (np.arange(ws, dtype=np.float32) + 0.5) * step)[None, :]
        self.v = (ymin + (np.arange(hs, dtype=np.float32) + 0.5) * step)[:, None]

    # --- shapes: float masks in [0, 1] at the supersampled resolution ---

    def _pts(self, pts) -> np.ndarray:
        p = (np.asarray(pts, np.float64) - np.asarray(self.origin)) * self.unit * SS - 0.5
        return np.round(p * (1 << _SHIFT)).astype(np.int32)

    def px(self, length: float) -> float:
        """A length in face units, in supersampled pixels."""
        return length * self.unit * SS

    def polygon(self, pts) -> np.ndarray:
        m = np.zeros(self.alpha.shape, np.uint8)
        cv2.fillPoly(m, [self._pts(pts)], 255, cv2.LINE_8, _SHIFT)
        return m.astype(np.float32) / 255

    def stroke(self, pts, width: float, closed: bool = False) -> np.ndarray:
        m = np.zeros(self.alpha.shape, np.uint8)
        cv2.polylines(m, [self._pts(pts)], closed, 255, max(1, int(round(self.px(width)))), cv2.LINE_8, _SHIFT)
        return m.astype(np.float32) / 255

    def brush(self, centres, radii) -> np.ndarray:
        """Union of discs: a stroke whose width varies along its path."""
        m = np.zeros(self.alpha.shape, np.uint8)
        for c, r in zip(self._pts(centres), radii):
            cv2.circle(m, (int(c[0]), int(c[1])), int(round(self.px(r) * (1 << _SHIFT))), 255, -1, cv2.LINE_8, _SHIFT)
        return m.astype(np.float32) / 255

    def local(self, cx: float, cy: float, angle_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates relative to (cx, cy), rotated by angle (degrees, clockwise on screen)."""
        t = math.radians(angle_deg)
        du, dv = self.u - cx, self.v - cy
        return du * math.cos(t) + dv * math.sin(t), -du * math.sin(t) + dv * math.cos(t)

    def ellipse(self, cx: float, cy: float, a: float, b: float, angle_deg: float = 0.0) -> np.ndarray:
        x, y = self.local(cx, cy, angle_deg)
        return ((x / a) ** 2 + (y / b) ** 2 <= 1.0).astype(np.float32)

    def blob(self, cx: float, cy: float, a: float, b: float, taper: float = 0.0,
             n_top: float = 2.0, n_bottom: float = 2.0, angle_deg: float = 0.0) -> np.ndarray:
        """Superellipse, squarer on top (n_top) or bottom, narrower towards the bottom (taper)."""
        x, y = self.local(cx, cy, angle_deg)
        yn = y / b
        half = a * (1.0 - taper * yn)
        n = np.where(yn < 0, n_top, n_bottom)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.abs(x / half) ** n + np.abs(yn) ** n
        return ((f <= 1.0) & (half > 0)).astype(np.float32)

    # --- colour fields ---

    def vgradient(self, top, bottom, v0: float, v1: float) -> np.ndarray:
        t = np.clip((self.v - v0) / (v1 - v0), 0, 1)[..., None]
        return (np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t) * np.ones_like(self.u)[..., None]

    # --- compositing ---

    def paint(self, mask: np.ndarray, color, opacity: float | np.ndarray = 1.0) -> None:
        """Paint a colour (BGR tuple or field, 0-255) through a mask, "over" what is there."""
        k = np.clip(mask * opacity, 0, 1).astype(np.float32)
        col = np.asarray(color, np.float32) / 255
        self.pm *= (1 - k)[..., None]
        self.pm += col * k[..., None]
        self.alpha *= 1 - k
        self.alpha += k

    def render(self, feather: float = 0.5) -> Sprite:
        """Average down to sprite size, feather the edge by ``feather`` pixels, build the pyramid."""
        pm = cv2.resize(self.pm, (self.w, self.h), interpolation=cv2.INTER_AREA)
        a = cv2.resize(self.alpha, (self.w, self.h), interpolation=cv2.INTER_AREA)
        if feather > 0:
            pm = cv2.GaussianBlur(pm, (0, 0), feather)
            a = cv2.GaussianBlur(a, (0, 0), feather)
        img = np.dstack([np.minimum(pm, a[..., None]), a])
        level = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
        levels = [level]
        for _ in range(LEVELS):
            h, w = level.shape[:2]
            level = cv2.resize(level, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
            levels.append(level)
        for lv in levels:
            lv.setflags(write=False)
        return Sprite(tuple(levels), self.origin, self.unit)
