"""The filters: sprite filters placed by similarity fits, plus two pixel effects."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import cv2
import numpy as np

from .artwork import (
    CAT_EAR_LEFT,
    CAT_EAR_RIGHT,
    CAT_FACE,
    CLOWN_NOSE,
    CROWN,
    DOG_EAR_LEFT,
    DOG_EAR_RIGHT,
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
    compose,
    face_matrix,
    face_point,
    matrix_scale,
    roi_of,
    template_point,
)


def composite(image: np.ndarray, sprite: Sprite, m: np.ndarray) -> None:
    """Warp a sprite by m (level-0 sprite pixels -> image pixels) into image, in place.

    Picks the pyramid level nearest the on-screen size, warps only the clipped
    bounding box of the sprite and blends it there.
    """
    (a, b, tx), (c, d, ty) = m.tolist()
    s = math.hypot(a, c)
    if not (s > 1e-3 and math.isfinite(s + b + d + tx + ty)):
        return
    k = min(max(math.floor(-math.log2(s)), 0), LEVELS)
    lv, ox, oy = sprite.trimmed[k]
    # pixel (u, v) of the trimmed level k is level-0 pixel (f (u + ox) + o, f (v + oy) + o)
    f = float(1 << k)
    px, py = f * ox + 0.5 * f - 0.5, f * oy + 0.5 * f - 0.5
    mk = np.array([[a * f, b * f, a * px + b * py + tx], [c * f, d * f, c * px + d * py + ty]])
    roi = roi_of(mk, lv.shape[1], lv.shape[0], image.shape)
    if roi is None:
        return
    x0, y0, x1, y1 = roi
    mk[0, 2] -= x0
    mk[1, 2] -= y0
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

    @cached_property
    def anchors(self) -> dict[str, np.ndarray]:
        """Anchor points in the sprite's own (level-0) pixel coordinates."""
        names = self.fit + ((self.pin,) if self.pin and self.pin not in self.fit else ())
        return {n: self.art.to_pixels(template_point(n)) for n in names}

    @cached_property
    def _to_face(self) -> np.ndarray:
        """Sprite pixels -> face units (the inverse of ``art.to_pixels``)."""
        u, (ox, oy) = self.art.unit, self.art.box[:2]
        return np.array([[1 / u, 0, ox + 0.5 / u], [0, 1 / u, oy + 0.5 / u]])

    def placement(self, kp: np.ndarray, face: np.ndarray | None = None) -> np.ndarray:
        """2x3 matrix: sprite pixels -> image pixels for a face's (15, 2) keypoints.

        Equal to the least-squares similarity from the anchors to the face points
        (the anchors are the template scaled and shifted, which a similarity absorbs),
        computed as face-units -> image after sprite -> face-units. ``face`` may pass
        that face-units fit when several parts share it.
        """
        m = compose(face_matrix(kp, self.fit) if face is None else face, self._to_face)
        if self.pin:
            m[:, 2] += face_point(kp, self.pin) - apply_matrix(m, self.anchors[self.pin])
        return m

    @cached_property
    def sprite(self) -> Sprite:
        return render(self.art)

    def draw(self, image: np.ndarray, kp: np.ndarray, face: np.ndarray | None = None) -> None:
        composite(image, self.sprite, self.placement(kp, face))


@dataclass(frozen=True)
class SpriteFilter:
    """Artwork parts drawn in order; ``placement`` is the first part's transform."""

    name: str
    description: str
    parts: tuple[Part, ...]

    def placement(self, kp: np.ndarray) -> np.ndarray:
        return self.parts[0].placement(kp)

    def draw(self, image: np.ndarray, kp: np.ndarray) -> None:
        fits: dict[tuple[str, ...], np.ndarray] = {}
        for p in self.parts:
            if p.fit not in fits:
                fits[p.fit] = face_matrix(kp, p.fit)
            p.draw(image, kp, fits[p.fit])


_ALL = tuple(TEMPLATE)


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
        return face_matrix(kp, _ALL)

    def draw(self, image: np.ndarray, kp: np.ndarray) -> None:
        (a, b, tx), (c, _, ty) = self.placement(kp).tolist()
        s = math.hypot(a, c)
        if not (s > 1e-3 and math.isfinite(s + tx + ty)):
            return
        ax, ay = self.axes[0] * s, self.axes[1] * s
        block = max(2, int(round(2 * ax / self.blocks)))
        feather = block / 3
        angle = math.atan2(c, a)
        centre = (a * self.centre[0] - c * self.centre[1] + tx, c * self.centre[0] + a * self.centre[1] + ty)
        # bounding box of the rotated ellipse plus the feather
        hw = math.hypot(ax * math.cos(angle), ay * math.sin(angle)) + 3 * feather
        hh = math.hypot(ax * math.sin(angle), ay * math.cos(angle)) + 3 * feather
        roi = roi_of(np.array([[1.0, 0, centre[0] - hw], [0, 1.0, centre[1] - hh]]), int(2 * hw) + 1,
                     int(2 * hh) + 1, image.shape)
        if roi is None:
            return
        x0, y0, x1, y1 = roi
        patch = image[y0:y1, x0:x1]
        h, w = patch.shape[:2]
        # block means; an exact integer factor keeps INTER_AREA on its fast path
        pw, ph = -w % block, -h % block
        padded = cv2.copyMakeBorder(patch, 0, ph, 0, pw, cv2.BORDER_REPLICATE) if pw or ph else patch
        small = cv2.resize(padded, ((w + pw) // block, (h + ph) // block), interpolation=cv2.INTER_AREA)
        big = cv2.resize(small, (w + pw, h + ph), interpolation=cv2.INTER_NEAREST)
        # feathered ellipse, drawn and blurred at 1/q resolution (cheap), then scaled up
        q = max(1, block // 3)
        mw, mh = math.ceil(w / q), math.ceil(h / q)
        sh = 16
        mask = np.zeros((mh, mw), np.uint8)
        cx, cy = (centre[0] - x0 + 0.5) / q - 0.5, (centre[1] - y0 + 0.5) / q - 0.5
        cv2.ellipse(mask, (int(round(cx * sh)), int(round(cy * sh))), (int(round(ax / q * sh)), int(round(ay / q * sh))),
                    math.degrees(angle), 0, 360, 255, -1, cv2.LINE_AA, 4)
        mask = cv2.GaussianBlur(mask, (0, 0), feather / q)
        if q > 1:
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
        blend_mask(patch, np.ascontiguousarray(big[:h, :w]), mask)


@dataclass(frozen=True)
class BigEyesFilter:
    """Magnify each eye with a smooth radial warp (identity at the rim, so no seam)."""

    name: str
    description: str
    radius: float = 0.48  # face units
    strength: float = 0.45  # 1 / (1 - strength) = magnification at the eye centre

    def placement(self, kp: np.ndarray) -> np.ndarray:
        """Face units -> image pixels."""
        return face_matrix(kp, EYES)

    def draw(self, image: np.ndarray, kp: np.ndarray) -> None:
        s = matrix_scale(self.placement(kp))
        rad = int(round(self.radius * s))
        if not (math.isfinite(s) and 2 <= rad <= max(image.shape[:2])):
            return
        dx, dy, inside = _bulge(rad, self.strength)
        eyes = [face_point(kp, n) for n in EYE_CENTRES]
        # both eyes sample the unmodified pixels (their discs may touch)
        lo = np.floor(np.min(eyes, axis=0)).astype(int) - rad - 2
        hi = np.ceil(np.max(eyes, axis=0)).astype(int) + rad + 3
        bx0, by0 = max(lo[0], 0), max(lo[1], 0)
        src = image[by0:max(hi[1], by0), bx0:max(hi[0], bx0)].copy()
        h, w = image.shape[:2]
        for c in eyes:
            cx, cy = int(round(c[0])), int(round(c[1]))
            x0, y0, x1, y1 = cx - rad, cy - rad, cx + rad + 1, cy + rad + 1
            u0, v0, u1, v1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
            if u1 <= u0 or v1 <= v0 or src.size == 0:
                continue
            win = (slice(v0 - y0, v1 - y0), slice(u0 - x0, u1 - x0))
            warped = cv2.remap(src, dx[win] + np.float32(cx - bx0), dy[win] + np.float32(cy - by0), cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
            np.copyto(image[v0:v1, u0:u1], warped, where=inside[win])


@lru_cache(maxsize=64)
def _bulge(rad: int, strength: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sampling offsets (x, y) of a magnifying disc of radius rad px, and its (h, w, 1) inside mask.

    The output pixel at offset r samples the source at r * (1 - strength * (1 - r^2/rad^2)^2):
    magnified by 1 / (1 - strength) at the centre, the identity at the rim.
    """
    v = np.arange(-rad, rad + 1, dtype=np.float32)
    xs, ys = np.meshgrid(v, v)
    r2 = (xs * xs + ys * ys) / np.float32(rad * rad)
    factor = 1 - np.float32(strength) * np.clip(1 - r2, 0, 1) ** 2
    out = (xs * factor, ys * factor, (r2 < 1)[..., None])
    for a in out:
        a.setflags(write=False)
    return out


Filter = SpriteFilter | PixelateFilter | BigEyesFilter

_HEAD = EYES + BROWS

FILTERS: dict[str, Filter] = {f.name: f for f in (
    SpriteFilter("sunglasses", "dark wayfarer sunglasses over the eyes", (Part(SUNGLASSES, EYES),)),
    SpriteFilter("moustache", "curled handlebar moustache under the nose",
                 (Part(MOUSTACHE, EYE_CENTRES + ("nose_tip", "mouth_left_corner", "mouth_right_corner",
                                                 "mouth_center_top_lip"), pin="philtrum"),)),
    SpriteFilter("crown", "golden crown with jewels on top of the head", (Part(CROWN, _HEAD),)),
    SpriteFilter("dog", "floppy dog ears, a shiny dog nose and a tongue", (
        Part(DOG_EAR_RIGHT, _HEAD),
        Part(DOG_EAR_LEFT, _HEAD),
        Part(DOG_TONGUE, EYE_CENTRES + ("mouth_left_corner", "mouth_right_corner", "mouth_center_bottom_lip"),
             pin="mouth_center_bottom_lip"),
        Part(DOG_NOSE, EYE_CENTRES + ("nose_tip",), pin="nose_tip"),
    )),
    SpriteFilter("cat", "pointed cat ears, a pink nose and whiskers", (
        Part(CAT_EAR_RIGHT, _HEAD),
        Part(CAT_EAR_LEFT, _HEAD),
        Part(CAT_FACE, EYE_CENTRES + ("nose_tip", "mouth_left_corner", "mouth_right_corner"), pin="nose_tip"),
    )),
    SpriteFilter("clown_nose", "round red clown nose on the nose tip",
                 (Part(CLOWN_NOSE, EYE_CENTRES + ("nose_tip",), pin="nose_tip"),)),
    BigEyesFilter("big_eyes", "cartoon big eyes (smooth magnifying warp around each eye)"),
    PixelateFilter("blur", "pixelate the whole face for privacy"),
)}
