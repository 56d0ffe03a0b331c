"""Temporal smoothing of keypoints: One Euro filter, plain EMA, or none.

The One Euro filter (Casiez, Roussel & Vogel, CHI 2012) is a low-pass filter
whose cutoff rises with speed: still faces get a low cutoff (little jitter),
moving faces a high one (little lag). Two changes make it behave the same for
any face size and frame rate:

* speed is measured in face sizes per second (pixels/s divided by the face's
  crop side), so ``beta`` means the same for a 60 px and a 600 px face;
* every step uses the real time since the previous frame, so a dropped frame
  or a slow camera does not change the filter's time constants.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

SMOOTHERS = ("oneeuro", "ema", "none")


def _alpha(dt: float, cutoff: np.ndarray | float) -> np.ndarray | float:
    """Smoothing factor of a first-order low-pass filter with this cutoff (Hz) for a step of dt seconds."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class Smoother(Protocol):
    def __call__(self, x: np.ndarray, t: float, scale: float) -> np.ndarray: ...

    def reset(self) -> None: ...


class NoSmoothing:
    """Pass-through (raw per-frame keypoints)."""

    def __call__(self, x: np.ndarray, t: float, scale: float) -> np.ndarray:
        return np.asarray(x, np.float32)

    def reset(self) -> None:
        pass


class OneEuroFilter:
    """One Euro filter over an array of coordinates (e.g. (15, 2) keypoints), one filter per coordinate.

    ``min_cutoff`` (Hz): cutoff at rest; lower = steadier, more lag when slow.
    ``beta`` (per face size/s): how fast the cutoff rises with speed; higher = less lag when moving.
    ``d_cutoff`` (Hz): cutoff of the speed estimate.
    ``scale`` passed at each call is the face size in pixels; speeds are divided by it.
    """

    def __init__(self, min_cutoff: float = 0.5, beta: float = 40.0, d_cutoff: float = 1.0) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("OneEuroFilter needs min_cutoff > 0, d_cutoff > 0 and beta >= 0")
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t = 0.0

    def __call__(self, x: np.ndarray, t: float, scale: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self._x is None:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.astype(np.float32)
        dt = t - self._t
        if dt <= 0:  # repeated or out-of-order timestamp: keep the last estimate
            return self._x.astype(np.float32)
        dx = (x - self._x) / (dt * max(scale, 1e-6))
        self._dx = self._dx + _alpha(dt, self.d_cutoff) * (dx - self._dx)
        a = _alpha(dt, self.min_cutoff + self.beta * np.abs(self._dx))
        self._x = self._x + a * (x - self._x)
        self._t = t
        return self._x.astype(np.float32)


class EmaFilter:
    """Exponential moving average with a fixed cutoff (Hz), i.e. a One Euro filter with beta = 0."""

    def __init__(self, cutoff: float = 3.0) -> None:
        if cutoff <= 0:
            raise ValueError("EmaFilter needs cutoff > 0")
        self.cutoff = cutoff
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._t = 0.0

    def __call__(self, x: np.ndarray, t: float, scale: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self._x is None:
            self._x, self._t = x.copy(), t
        elif t > self._t:
            self._x = self._x + _alpha(t - self._t, self.cutoff) * (x - self._x)
            self._t = t
        return self._x.astype(np.float32)


def make_smoother(kind: str, **params: float) -> Smoother:
    """``"oneeuro"`` (params min_cutoff, beta, d_cutoff), ``"ema"`` (cutoff) or ``"none"``."""
    if kind == "oneeuro":
        return OneEuroFilter(**params)
    if kind == "ema":
        return EmaFilter(**params)
    if kind == "none":
        return NoSmoothing()
    raise ValueError(f"unknown smoothing {kind!r}; choose one of {', '.join(SMOOTHERS)}")
