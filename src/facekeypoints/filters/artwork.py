"""The project's own artwork, drawn procedurally in face units (eye midpoint = 0,
inter-ocular distance = 1, x to the image's right, y down). Each sprite is a
box plus a drawing function; :func:`render` rasterises it once (cached)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np

from .canvas import Canvas, Sprite, to_pixels

UNIT = 160.0  # level-0 sprite pixels per inter-ocular distance


@dataclass(frozen=True)
class Art:
    """A sprite design: the face-unit box it covers and the code that paints it."""

    name: str
    box: tuple[float, float, float, float]
    draw: Callable[[Canvas], None]
    unit: float = UNIT
    feather: float = 0.5

    def to_pixels(self, pts: np.ndarray) -> np.ndarray:
        """Face-unit points -> this sprite's level-0 pixel coordinates."""
        return to_pixels(pts, (self.box[0], self.box[1]), self.unit)


@lru_cache(maxsize=64)
def render(art: Art) -> Sprite:
    c = Canvas(art.box, art.unit)
    art.draw(c)
    return c.render(art.feather)


def _catmull_rom(points: list[tuple[float, float]], n: int) -> np.ndarray:
    """Smooth curve through the points (n samples per segment)."""
    p = np.asarray(points, np.float64)
    p = np.vstack([p[0], p, p[-1]])
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        for t in np.linspace(0, 1, n, endpoint=False):
            out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                              + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3))
    out.append(p[-2])
    return np.array(out)


def _soft_spot(c: Canvas, cx: float, cy: float, r: float) -> np.ndarray:
    """Gaussian light spot (0..1) for highlights."""
    return np.exp(-((c.u - cx) ** 2 + (c.v - cy) ** 2) / (2 * r * r)).astype(np.float32)


# --- sunglasses: two tapered lenses centred on the eye centres (x = +-0.5) ---

def _draw_sunglasses(c: Canvas) -> None:
    frame_col = c.vgradient((58, 52, 48), (18, 16, 16), -0.3, 0.3)
    lens_col = c.vgradient((40, 28, 22), (105, 80, 62), -0.2, 0.25)
    for s in (-1, 1):
        cx, cy = 0.5 * s, 0.03
        outer = c.blob(cx + 0.015 * s, cy, 0.37, 0.255, taper=0.14, n_top=5.0, n_bottom=2.6)
        lens = c.blob(cx + 0.015 * s, cy + 0.005, 0.305, 0.195, taper=0.16, n_top=5.0, n_bottom=2.6)
        c.paint(outer * (1 - lens), frame_col)
        c.paint(lens, lens_col, 0.9)
        # reflections: two diagonal bands clipped to the lens
        x, y = c.local(cx, cy, -35)
        c.paint(lens * (np.abs(x + 0.10) < 0.045), (255, 255, 255), 0.22)
        c.paint(lens * (np.abs(x + 0.0) < 0.015), (255, 255, 255), 0.16)
        # temple stub at the outer top corner
        c.paint(c.polygon([(0.84 * s, -0.21), (1.07 * s, -0.19), (1.07 * s, -0.12), (0.84 * s, -0.11)]), (24, 22, 22))
    # bridge: a thick bar between the frames plus a slim lower arch
    c.paint(c.polygon([(-0.17, -0.17), (0.17, -0.17), (0.17, -0.08), (0.07, -0.10), (-0.07, -0.10), (-0.17, -0.08)]),
            frame_col)
    # thin highlight along the top of the frame
    c.paint(c.stroke([(-0.82, -0.205), (-0.2, -0.2)], 0.012) + c.stroke([(0.2, -0.2), (0.82, -0.205)], 0.012),
            (140, 130, 125), 0.6)


SUNGLASSES = Art("sunglasses", (-1.11, -0.32, 1.11, 0.36), _draw_sunglasses)


# --- handlebar moustache under the nose (around the philtrum, y = 0.80) ---

def _draw_moustache(c: Canvas) -> None:
    ctrl = [(0.02, 0.80), (0.18, 0.825), (0.36, 0.86), (0.52, 0.85), (0.63, 0.79), (0.67, 0.71), (0.63, 0.645),
            (0.57, 0.64)]
    radii = [0.085, 0.095, 0.08, 0.06, 0.04, 0.028, 0.02, 0.014]
    line = _catmull_rom(ctrl, 24)
    r = np.interp(np.linspace(0, len(radii) - 1, len(line)), np.arange(len(radii)), radii)
    mask = np.zeros_like(c.alpha)
    for s in (-1, 1):
        mask = np.maximum(mask, c.brush(line * [s, 1], r))
    # a small notch under the nose separates the two halves
    mask *= 1 - c.ellipse(0.0, 0.74, 0.035, 0.045)
    c.paint(mask, c.vgradient((38, 44, 56), (12, 14, 18), 0.72, 0.92))
    # hair strands: short lighter and darker strokes running outwards
    rng = np.random.default_rng(7)
    light = np.zeros_like(mask)
    dark = np.zeros_like(mask)
    for _ in range(160):
        s = rng.choice([-1, 1])
        i = rng.integers(0, len(line) - 6)
        p0 = line[i] + rng.normal(0, 0.35, 2) * r[i]
        p1 = line[i + 5] + rng.normal(0, 0.35, 2) * r[i + 5]
        target = light if rng.random() < 0.4 else dark
        np.maximum(target, c.stroke([p0 * [s, 1], p1 * [s, 1]], 0.008), out=target)
    c.paint(mask * light, (80, 92, 110), 0.5)
    c.paint(mask * dark, (5, 6, 8), 0.5)
    # sheen along the top edge
    for s in (-1, 1):
        c.paint(mask * _soft_spot(c, 0.25 * s, 0.79, 0.05), (160, 170, 185), 0.35)


MOUSTACHE = Art("moustache", (-0.78, 0.56, 0.78, 0.98), _draw_moustache)


# --- crown on top of the head ---

def _draw_crown(c: Canvas) -> None:
    y0, k = -1.10, 1.22  # base height and size (designed at k = 1 with the base at y = 0)

    def at(x: float, dy: float) -> tuple[float, float]:
        return (k * x, y0 + k * dy)

    def bottom(x: np.ndarray) -> np.ndarray:  # front of the band bulges down
        return y0 + k * 0.05 * (1 - (x / (0.78 * k)) ** 2) - k * 0.05

    xs = np.linspace(-0.78 * k, 0.78 * k, 40)
    outline = [(float(x), float(bottom(x))) for x in xs]
    tips = [at(0.80, -0.50), at(0.36, -0.66), at(0.0, -0.79), at(-0.36, -0.66), at(-0.80, -0.50)]
    valleys = [at(0.58, -0.28), at(0.18, -0.30), at(-0.18, -0.30), at(-0.58, -0.28)]
    top = [tips[0], valleys[0], tips[1], valleys[1], tips[2], valleys[2], tips[3], valleys[3], tips[4]]
    body = c.polygon(outline + top)
    shade = (0.72 + 0.28 * np.cos(np.clip(c.u / (0.85 * k), -1, 1) * math.pi / 2))[..., None]
    gold = c.vgradient((70, 205, 250), (20, 125, 200), y0 - 0.8 * k, y0) * shade
    c.paint(body, gold)
    c.paint(c.stroke(outline + top, 0.022, closed=True), (10, 80, 140), 0.9)
    # band with jewels
    bh = 0.2 * k
    c.paint(body * (c.v > bottom(c.u) - bh), c.vgradient((30, 160, 225), (15, 105, 175), y0 - bh, y0) * shade)
    c.paint(c.stroke([(float(x), float(bottom(x) - bh)) for x in xs], 0.02), (10, 80, 140), 0.9)
    for x, col in ((-0.48 * k, (200, 90, 30)), (0.0, (40, 30, 210)), (0.48 * k, (60, 160, 40))):
        y = float(bottom(np.float32(x))) - bh / 2
        gem = c.ellipse(x, y, 0.085 * k, 0.065 * k)
        c.paint(gem, col)
        c.paint(gem * _soft_spot(c, x - 0.03 * k, y - 0.025 * k, 0.025 * k), (255, 255, 255), 0.8)
    for x, y in tips:
        ball = c.ellipse(x, y, 0.055 * k, 0.055 * k)
        c.paint(ball, (225, 228, 235))
        c.paint(ball * _soft_spot(c, x - 0.018 * k, y - 0.018 * k, 0.02 * k), (255, 255, 255))
        c.paint(ball * _soft_spot(c, x + 0.02 * k, y + 0.03 * k, 0.025 * k), (150, 150, 160), 0.5)
    # vertical glints on the spikes
    p = 0.36 * k
    c.paint(body * (c.v < bottom(c.u) - bh) * (np.abs(((c.u + p / 2) % p) - p / 2) < 0.012), (200, 240, 255), 0.45)


CROWN = Art("crown", (-1.1, -2.15, 1.1, -1.03), _draw_crown)


# --- dog: floppy ears, a shiny nose, a tongue ---

def _draw_dog_ear(c: Canvas, s: int) -> None:
    """One floppy ear; s = 1 on the image's right (the subject's left), -1 on the left."""
    top, low = np.array([0.74 * s, -1.48]), np.array([1.30 * s, -0.42])
    mid = (top + low) / 2
    length = float(np.linalg.norm(low - top))
    ang = math.degrees(math.atan2(low[0] - top[0], low[1] - top[1]))  # tilt from vertical
    ear = c.blob(float(mid[0]), float(mid[1]), 0.34, length / 2, taper=-0.35, n_top=2.2, n_bottom=2.0,
                 angle_deg=-ang)
    inner = c.blob(float(mid[0] - 0.03 * s), float(mid[1] + 0.07), 0.2, length / 2 - 0.16, taper=-0.4,
                   angle_deg=-ang)
    c.paint(ear, c.vgradient((60, 100, 160), (28, 55, 95), -1.5, -0.5))
    c.paint(inner, c.vgradient((95, 125, 185), (75, 105, 165), -1.4, -0.5), 0.8)
    x, _ = c.local(float(mid[0]), float(mid[1]), -ang)
    c.paint(ear * (np.abs(x + 0.16 * s) < 0.05), (120, 160, 210), 0.18)
    rng = np.random.default_rng(3 if s > 0 else 4)
    fur = np.zeros_like(c.alpha)
    for _ in range(60):
        p = mid + rng.normal(0, [0.15, 0.3])
        d = np.array([0.05 * s, 0.12]) * rng.uniform(0.6, 1.2)
        np.maximum(fur, c.stroke([p, p + d], 0.01), out=fur)
    c.paint(ear * fur, (20, 40, 70), 0.18)


DOG_EAR_LEFT = Art("dog_ear_left", (0.56, -1.56, 1.56, -0.3), partial(_draw_dog_ear, s=1))
DOG_EAR_RIGHT = Art("dog_ear_right", (-1.56, -1.56, -0.56, -0.3), partial(_draw_dog_ear, s=-1))


def _draw_dog_nose(c: Canvas) -> None:
    nose = c.blob(0.0, 0.52, 0.25, 0.135, taper=0.38, n_top=2.6, n_bottom=2.2)
    c.paint(nose, c.vgradient((55, 48, 48), (12, 12, 14), 0.38, 0.66))
    c.paint(nose * _soft_spot(c, -0.06, 0.455, 0.05), (255, 255, 255), 0.55)
    c.paint(nose * _soft_spot(c, 0.07, 0.45, 0.03), (255, 255, 255), 0.3)
    for s in (-1, 1):
        c.paint(c.ellipse(0.085 * s, 0.575, 0.055, 0.028, angle_deg=-25 * s) * nose, (0, 0, 0), 0.85)
    c.paint(c.stroke([(0.0, 0.6), (0.0, 0.7)], 0.018), (15, 15, 18), 0.9)
    c.paint(c.stroke([(0.0, 0.7), (-0.06, 0.74)], 0.014) + c.stroke([(0.0, 0.7), (0.06, 0.74)], 0.014), (15, 15, 18), 0.6)


DOG_NOSE = Art("dog_nose", (-0.34, 0.34, 0.34, 0.8), _draw_dog_nose)


def _draw_dog_tongue(c: Canvas) -> None:
    tongue = c.blob(0.0, 1.40, 0.16, 0.24, taper=-0.12, n_top=6.0, n_bottom=2.2)
    c.paint(tongue, c.vgradient((150, 110, 235), (120, 85, 215), 1.18, 1.64))
    c.paint(tongue * c.stroke([(0.0, 1.22), (0.0, 1.48)], 0.025), (95, 55, 185), 0.7)
    c.paint(tongue * _soft_spot(c, -0.07, 1.46, 0.04), (255, 230, 255), 0.35)


DOG_TONGUE = Art("dog_tongue", (-0.22, 1.12, 0.22, 1.7), _draw_dog_tongue)


# --- clown nose: a lit red sphere ---

def _draw_clown_nose(c: Canvas) -> None:
    cx, cy, r = 0.0, 0.52, 0.22
    x, y = (c.u - cx) / r, (c.v - cy) / r
    d2 = x * x + y * y
    inside = (d2 <= 1).astype(np.float32)
    z = np.sqrt(np.clip(1 - d2, 0, 1))
    light = np.array([-0.45, -0.55, 0.70])
    light /= np.linalg.norm(light)
    diffuse = np.clip(x * light[0] + y * light[1] + z * light[2], 0, 1)
    half = light + np.array([0, 0, 1.0])
    half /= np.linalg.norm(half)
    spec = np.clip(x * half[0] + y * half[1] + z * half[2], 0, 1) ** 40
    base = np.array([30, 25, 215], np.float32)
    col = base * (0.28 + 0.8 * diffuse)[..., None] + 255 * 0.85 * spec[..., None]
    c.paint(inside, np.clip(col, 0, 255))


CLOWN_NOSE = Art("clown_nose", (-0.27, 0.27, 0.27, 0.77), _draw_clown_nose)


# --- cat: pointed ears, a pink nose and whiskers ---

def _draw_cat_ear(c: Canvas, s: int) -> None:
    """One pointed ear; s = 1 on the image's right (the subject's left), -1 on the left."""
    outer = [(0.22 * s, -1.42), (0.98 * s, -0.98), (0.96 * s, -1.98)]
    inner = [(0.40 * s, -1.40), (0.88 * s, -1.12), (0.89 * s, -1.78)]
    c.paint(c.polygon(outer), c.vgradient((95, 105, 120), (55, 62, 72), -1.95, -1.0))
    c.paint(c.polygon(inner), c.vgradient((185, 160, 240), (150, 125, 215), -1.8, -1.1))
    rng = np.random.default_rng(11 if s > 0 else 12)
    tufts = np.zeros_like(c.alpha)
    for _ in range(25):
        t = rng.uniform(0.15, 0.85)
        p = np.array(inner[0]) * (1 - t) + np.array(inner[2]) * t + rng.normal(0, 0.02, 2)
        np.maximum(tufts, c.stroke([p, p + [0.1 * s * rng.uniform(0.5, 1), 0.04]], 0.007), out=tufts)
    c.paint(tufts * c.polygon(inner), (235, 235, 240), 0.4)


CAT_EAR_LEFT = Art("cat_ear_left", (0.15, -2.05, 1.05, -0.9), partial(_draw_cat_ear, s=1))
CAT_EAR_RIGHT = Art("cat_ear_right", (-1.05, -2.05, -0.15, -0.9), partial(_draw_cat_ear, s=-1))


def _draw_cat_face(c: Canvas) -> None:
    whisk = np.zeros_like(c.alpha)
    for s in (-1, 1):
        for k, (y0, y1, bend) in enumerate(((0.62, 0.50, -0.03), (0.67, 0.68, 0.0), (0.72, 0.86, 0.03))):
            pts = _catmull_rom([(0.2 * s, y0), (0.55 * s, (y0 + y1) / 2 + bend), (0.95 * s, y1)], 12)
            np.maximum(whisk, c.stroke(pts, 0.013 - 0.002 * k), out=whisk)
        for dx, dy in ((0.14, 0.66), (0.19, 0.70), (0.13, 0.72)):
            np.maximum(whisk, c.ellipse(dx * s, dy, 0.012, 0.012), out=whisk)
    c.paint(whisk, (35, 35, 40), 0.85)
    nose = c.blob(0.0, 0.53, 0.1, 0.065, taper=0.75, n_top=2.5, n_bottom=2.0)
    c.paint(nose, (150, 120, 230))
    c.paint(nose * _soft_spot(c, -0.025, 0.505, 0.02), (255, 255, 255), 0.5)
    c.paint(c.stroke([(0.0, 0.59), (0.0, 0.66)], 0.012), (60, 50, 90), 0.8)


CAT_FACE = Art("cat_face", (-1.0, 0.42, 1.0, 0.92), _draw_cat_face)
