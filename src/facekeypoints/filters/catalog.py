"""The filters: sprite filters placed by similarity fits, plus two pixel effects."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .artwork import (
    CAT_EARS,
    CAT_FACE,
    CLOWN_NOSE,
    CROWN,
    DOG_EARS,
    DOG_NOSE,
    DOG_TONGUE,
    MOUSTACHE,
    SUNGLASSES,
    Art,
    render,
)
from .canvas import LEVELS, Sprite
from .placement import (
    BROWS,
    EYE_CENTRES,
    EYES,
    TEMPLATE,
    apply_matrix,
    blend_mask,
    blend_premultiplied,
    face_point,
    fit_similarity,
    matrix_angle,
    matrix_scale,
    roi_of,
    template_point,
)


def composite(image: np.ndarray, sprite: Sprite, m: np.ndarray) -> None:
    """Warp a sprite by m (level-0 sprite pixels -> image pixels) into image, in place.

    Picks the pyramid level nearest the on-screen size, warps only the clipped
    bounding box of the sprite and blends it there.
    """
    s = matrix_scale(m)
    if not (np.isfinite(m).all() and s > 1e-3):
        return
    k = int(min(max(math.floor(math.log2(1.0 / s)), 0), LEVELS))
    f = float(2**k)
    lv = sprite.levels[k]
    # level-k pixel (u, v) is level-0 pixel ((u + .5) f - .5, (v + .5) f - .5)
    mk = m @ np.array([[f, 0, 0.5 * f - 0.5], [0, f, 0.5 * f - 0.5], [0, 0, 1]])
    roi = roi_of(mk, lv.shape[1], lv.shape[0], image.shape)
    if roi is None:
        return
    x0, y0, x1, y1 = roi
    mk[:, 2] -= (x0, y0)
    layer = cv2.warpAffine(lv, mk, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=(0, 0, 0, 0))
    blend_premultiplied(image[y0:y1, x0:x1], layer)


@dataclass(frozen=True)
class Part:
    """One sprite of a filter. ``fit``: face points whose template positions in the
    sprite (the anchors) are matched to the detected ones by a least-squares
    similarity; ``pin``: a face point the sprite must hit exactly (translation only)."""

    art: Art
    fit: tuple[str, ...]
    pin: str | None = None

    @property
    def anchors(self) -> dict[str, np.ndarray]:
        """Anchor points in the sprite's own (level-0) pixel coordinates."""
        names = self.fit + ((self.pin,) if self.pin and self.pin not in self.fit else ())
        return {n: self.art.to_pixels(template_point(n)) for n in names}

    def placement(self, kp: np.ndarray) -> np.ndarray:
        """2x3 matrix: sprite pixels -> image pixels for a face's (15, 2) keypoints."""
        a = self.anchors
        src = np.array([a[n] for n in self.fit])
        dst = np.array([face_point(kp, n) for n in self.fit])
        m = fit_similarity(src, dst)
        if self.pin:
            m[:, 2] += face_point(kp, self.pin) - apply_matrix(m, a[self.pin])
        return m

    def draw(self, image: np.ndarray, kp: np.ndarray) -> None:
        composite(image, render(self.art), self.placement(kp))


@dataclass(frozen=True)
class SpriteFilter:
    """Artwork parts drawn in order; ``placement`` is the first part's transform."""

    name: str
    description: str
    parts: tuple[Part, ...]

    def placement(self, kp: np.ndarray) -> np.ndarray:
        return self.parts[0].placement(kp)

    def draw(self, image: np.ndarray, kp: np.ndarray) -> None:
        for p in self.parts:
            p.draw(image, kp)


_ALL = tuple(TEMPLATE)


def _face_matrix(kp: np.ndarray, names: tuple[str, ...] = _ALL) -> np.ndarray:
    """Face units -> image pixels, fitted on the given points."""
    return fit_similarity(np.array([template_point(n) for n in names]), np.array([face_point(kp, n) for n in names]))


@dataclass(frozen=True)
class PixelateFilter:
    """Pixelate an ellipse covering the face (forehead to chin) with a feathered edge."""

    name: str
    description: str
    centre: tuple[float, float] = (0.0, 0.38)  # face units
    axes: tuple[float, float] = (1.18, 1.65)
    blocks: float = 8.0  # blocks across the face width

    def placement(self, kp: np.ndarray) -> np.ndarray:
        """Face units -> image pixels."""
        return _face_matrix(kp)

    def draw(self, image: np.ndarray, kp: np.ndarray) -> None:
        m = self.placement(kp)
        s = matrix_scale(m)
        if not (np.isfinite(m).all() and s > 1e-3):
            return
        ax, ay = self.axes[0] * s, self.axes[1] * s
        block = max(2, int(round(2 * ax / self.blocks)))
        feather = block / 3
        centre = apply_matrix(m, np.array(self.centre))
        r = max(ax, ay) + 3 * feather
        roi = roi_of(np.array([[1.0, 0, centre[0] - r], [0, 1.0, centre[1] - r]]), int(2 * r) + 1, int(2 * r) + 1,
                     image.shape)
        if roi is None:
            return
        x0, y0, x1, y1 = roi
        patch = image[y0:y1, x0:x1]
        h, w = patch.shape[:2]
        small = cv2.resize(patch, (max(1, math.ceil(w / block)), max(1, math.ceil(h / block))),
                           interpolation=cv2.INTER_AREA)
        big = cv2.resize(small, (small.shape[1] * block, small.shape[0] * block), interpolation=cv2.INTER_NEAREST)
        mask = np.zeros((h, w), np.uint8)
        sh = 16
        cv2.ellipse(mask, (int(round((centre[0] - x0) * sh)), int(round((centre[1] - y0) * sh))),
                    (int(round(ax * sh)), int(round(ay * sh))), math.degrees(matrix_angle(m)), 0, 360, 255, -1,
                    cv2.LINE_AA, 4)
        mask = cv2.GaussianBlur(mask, (0, 0), feather)
        blend_mask(patch, big[:h, :w], mask)


@dataclass(frozen=True)
class BigEyesFilter:
    """Magnify each eye with a smooth radial warp (identity at the rim, so no seam)."""

    name: str
    description: str
    radius: float = 0.48  # face units
    strength: float = 0.45  # 1 / (1 - strength) = magnification at the eye centre

    def placement(self, kp: np.ndarray) -> np.ndarray:
        """Face units -> image pixels."""
        return _face_matrix(kp, EYES)

    def draw(self, image: np.ndarray, kp: np.ndarray) -> None:
        m = self.placement(kp)
        s = matrix_scale(m)
        rad = self.radius * s
        if not (np.isfinite(m).all() and rad >= 2):
            return
        eyes = np.array([face_point(kp, n) for n in EYE_CENTRES])
        lo, hi = eyes.min(axis=0) - rad - 2, eyes.max(axis=0) + rad + 2
        box = roi_of(np.array([[1.0, 0, lo[0]], [0, 1.0, lo[1]]]), int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1,
                     image.shape, pad=0)
        if box is None:
            return
        bx0, by0, bx1, by1 = box
        src = image[by0:by1, bx0:bx1].copy()  # both eyes sample the unmodified pixels
        for c in eyes:
            roi = roi_of(np.array([[1.0, 0, c[0] - rad], [0, 1.0, c[1] - rad]]), int(2 * rad) + 1, int(2 * rad) + 1,
                         image.shape, pad=0)
            if roi is None:
                continue
            x0, y0, x1, y1 = roi
            xs = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(c[0])
            ys = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(c[1])
            r2 = (xs * xs + ys * ys) / np.float32(rad * rad)
            inside = r2 < 1
            factor = 1 - np.float32(self.strength) * np.clip(1 - r2, 0, 1) ** 2
            mx = (xs * factor + np.float32(c[0] - bx0)).astype(np.float32)
            my = (ys * factor + np.float32(c[1] - by0)).astype(np.float32)
            warped = cv2.remap(src, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            image[y0:y1, x0:x1][inside] = warped[inside]


Filter = SpriteFilter | PixelateFilter | BigEyesFilter

_HEAD = EYES + BROWS

FILTERS: dict[str, Filter] = {f.name: f for f in (
    SpriteFilter("sunglasses", "dark wayfarer sunglasses over the eyes", (Part(SUNGLASSES, EYES),)),
    SpriteFilter("moustache", "curled handlebar moustache under the nose",
                 (Part(MOUSTACHE, EYE_CENTRES + ("nose_tip", "mouth_left_corner", "mouth_right_corner",
                                                 "mouth_center_top_lip"), pin="philtrum"),)),
    SpriteFilter("crown", "golden crown with jewels on top of the head", (Part(CROWN, _HEAD),)),
    SpriteFilter("dog", "floppy dog ears, a shiny dog nose and a tongue", (
        Part(DOG_EARS, _HEAD),
        Part(DOG_TONGUE, EYE_CENTRES + ("mouth_left_corner", "mouth_right_corner", "mouth_center_bottom_lip"),
             pin="mouth_center_bottom_lip"),
        Part(DOG_NOSE, EYE_CENTRES + ("nose_tip",), pin="nose_tip"),
    )),
    SpriteFilter("cat", "pointed cat ears, a pink nose and whiskers", (
        Part(CAT_EARS, _HEAD),
        Part(CAT_FACE, EYE_CENTRES + ("nose_tip", "mouth_left_corner", "mouth_right_corner"), pin="nose_tip"),
    )),
    SpriteFilter("clown_nose", "round red clown nose on the nose tip",
                 (Part(CLOWN_NOSE, EYE_CENTRES + ("nose_tip",), pin="nose_tip"),)),
    BigEyesFilter("big_eyes", "cartoon big eyes (smooth magnifying warp around each eye)"),
    PixelateFilter("blur", "pixelate the whole face for privacy"),
)}
