"""Crop geometry shared by training and inference.

A face is cropped as a square, possibly rotated, region of the photo and
resampled to ``CROP_SIZE`` x ``CROP_SIZE``. Training crops and run-time crops
come from the same two functions, so the model sees at run time what it saw in
training:

* :func:`frame_from_box` turns a face-detector box into a crop frame;
* :func:`frame_from_keypoints` turns 15 keypoints into the crop frame that
  centres them the Kaggle way (eye centres near x=30 and x=66, y=38 in 96x96).

The constants relating detector boxes to keypoint frames were fitted on the
Haar cascade's boxes for the 300-W photos (``python bench/fit_haar_boxes.py``: 1,046 of 1,207 faces
found; median side 0.977 box widths, log-side spread 0.13 std / 0.10 MAD, centre
spread 0.031 of the side).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from .schema import INDEX, flip_keypoints, to_points15

CROP_SIZE = 96

# Kaggle framing: the keypoint scale (see _keypoint_scale) spans this many crop pixels,
# and the crop centre lies this fraction of the way from eye midpoint to mouth midpoint.
KAGGLE_SCALE_PX = 37.0
CENTRE_FRACTION = 0.26

# Haar box (x0, y0, x1, y1) of width w -> frame: centre = box centre + (dx, dy) * w,
# side = BOX_SIDE * w. Fitted by bench/fit_haar_boxes.py on 300-W; residual spread
# (std of log side ratio and of centre offset / side) drives the training jitter.
BOX_DX = 0.004
BOX_DY = -0.010
BOX_SIDE = 0.977
BOX_JITTER_LOG_SIDE = 0.11
BOX_JITTER_CENTRE = 0.031

_LE, _RE = INDEX["left_eye_center"], INDEX["right_eye_center"]
_MOUTH = [INDEX["mouth_left_corner"], INDEX["mouth_right_corner"]]


@dataclass(frozen=True)
class Frame:
    """A square crop region: centre (cx, cy), side length and rotation in radians.

    ``angle`` is the in-plane roll of the face (image y axis points down); the
    crop is rotated by it so that the face comes out upright.
    """

    cx: float
    cy: float
    side: float
    angle: float = 0.0

    def matrix(self, size: int = CROP_SIZE) -> np.ndarray:
        """2x3 affine mapping image pixel coordinates to crop pixel coordinates."""
        s = size / self.side
        c, si = math.cos(self.angle), math.sin(self.angle)
        # p' = s * R(-angle) (p - c) + (size - 1) / 2
        a = np.array([[c, si], [-si, c]]) * s
        t = np.array([(size - 1) / 2, (size - 1) / 2]) - a @ np.array([self.cx, self.cy])
        return np.hstack([a, t[:, None]])

    def to_crop(self, points: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
        m = self.matrix(size)
        p = np.asarray(points, dtype=np.float64)
        return (p @ m[:, :2].T + m[:, 2]).astype(np.float32)

    def to_image(self, points: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
        m = cv2.invertAffineTransform(self.matrix(size))
        p = np.asarray(points, dtype=np.float64)
        return (p @ m[:, :2].T + m[:, 2]).astype(np.float32)

    def box(self) -> tuple[float, float, float, float]:
        """Axis-aligned box of the (unrotated) square, for display."""
        h = self.side / 2
        return (self.cx - h, self.cy - h, self.cx + h, self.cy + h)


@dataclass(frozen=True)
class Framing:
    """Where a model's crop sits relative to the Kaggle frame of the same face: ``zoom`` times its
    side, its centre moved ``down`` Kaggle sides along the face's own downward axis (rolled with it).

    The Kaggle framing (``zoom=1``, ``down=0``) cuts the lower jaw off: on the 300-W + LFPW photos the
    chin lies at y = 103 of 96 px (median). A 68-point model can be trained on a wider, lower crop
    that holds the whole face (``fkp train --crop-zoom --crop-down``); its ONNX sidecar records the
    framing, and the runtime cuts its crops so. Frames elsewhere (refinement, tracking, gates) stay
    Kaggle frames: a model's framing is applied only where its crop is cut."""

    zoom: float = 1.0
    down: float = 0.0

    #: The framings a model may have (``fkp train`` and the runtime refuse others): the 192 px training
    #: contexts hold crops up to about 2 Kaggle sides wide.
    ZOOM_RANGE = (0.5, 2.0)
    MAX_DOWN = 0.5

    @property
    def identity(self) -> bool:
        return self.zoom == 1.0 and self.down == 0.0

    @property
    def in_range(self) -> bool:
        return self.ZOOM_RANGE[0] <= self.zoom <= self.ZOOM_RANGE[1] and abs(self.down) <= self.MAX_DOWN

    #: The allowed ranges as error messages give them ("0.5-2", "-0.5-0.5").
    ZOOM_TEXT = f"{ZOOM_RANGE[0]:g}-{ZOOM_RANGE[1]:g}"
    DOWN_TEXT = f"{-MAX_DOWN:g}-{MAX_DOWN:g}"

    def apply(self, frame: Frame) -> Frame:
        """The crop frame this framing cuts for a face whose Kaggle frame is ``frame``."""
        if self.identity:
            return frame
        d = self.down * frame.side
        return Frame(frame.cx - math.sin(frame.angle) * d, frame.cy + math.cos(frame.angle) * d,
                     frame.side * self.zoom, frame.angle)

    def to_meta(self) -> dict:
        return {"zoom": float(self.zoom), "down": float(self.down)}

    @staticmethod
    def from_meta(meta: dict | None) -> Framing:
        """From a model sidecar's ``"framing"`` (absent: the Kaggle framing, as every model before it)."""
        if not meta:
            return KAGGLE_FRAMING
        return Framing(float(meta.get("zoom", 1.0)), float(meta.get("down", 0.0)))


#: The framing every 15-point model and the first 68-point models were trained on.
KAGGLE_FRAMING = Framing()


def _keypoint_scale(kp: np.ndarray) -> float:
    """Face size from eye and mouth geometry, robust to yaw (eye distance shrinks)
    and pitch (eye-mouth distance shrinks)."""
    eye_mid = (kp[_LE] + kp[_RE]) / 2
    mouth_mid = kp[_MOUTH].mean(axis=0)
    iod = float(np.linalg.norm(kp[_LE] - kp[_RE]))
    em = float(np.linalg.norm(mouth_mid - eye_mid))
    return math.sqrt((iod**2 + em**2) / 2)


def eye_angle(kp: np.ndarray) -> float:
    """Roll of the face: angle of the line from the right eye to the left eye (15 keypoints or 68 landmarks)."""
    kp = to_points15(kp)
    d = kp[_LE] - kp[_RE]
    return math.atan2(float(d[1]), float(d[0]))


def frame_from_keypoints(kp: np.ndarray, rotate: bool = False) -> Frame:
    """Crop frame that places 15 keypoints in the Kaggle framing.

    ``rotate=True`` also undoes the face's roll (used for refinement and tracking).
    68 landmarks are mapped to the 15 first (a 68-point model is trained on these frames).
    """
    kp = np.asarray(to_points15(kp), dtype=np.float64)
    eye_mid = (kp[_LE] + kp[_RE]) / 2
    mouth_mid = kp[_MOUTH].mean(axis=0)
    centre = eye_mid + CENTRE_FRACTION * (mouth_mid - eye_mid)
    side = _keypoint_scale(kp) * CROP_SIZE / KAGGLE_SCALE_PX
    return Frame(float(centre[0]), float(centre[1]), float(side), eye_angle(kp) if rotate else 0.0)


def frame_from_box(box: tuple[float, float, float, float] | np.ndarray) -> Frame:
    """Crop frame for a face-detector box (x0, y0, x1, y1), Haar-calibrated."""
    x0, y0, x1, y1 = (float(v) for v in box)
    w = max(x1 - x0, y1 - y0, 1.0)
    return Frame((x0 + x1) / 2 + BOX_DX * w, (y0 + y1) / 2 + BOX_DY * w, BOX_SIDE * w)


def box_from_frame(frame: Frame) -> tuple[float, float, float, float]:
    """Inverse of :func:`frame_from_box`: the detector-style box a frame stands for."""
    w = frame.side / BOX_SIDE
    cx, cy = frame.cx - BOX_DX * w, frame.cy - BOX_DY * w
    return (cx - w / 2, cy - w / 2, cx + w / 2, cy + w / 2)


def jitter_frame(frame: Frame, rng: np.random.Generator, strength: float = 1.0) -> Frame:
    """Perturb a frame like a detector would (same spread as Haar vs. keypoint frames)."""
    ls = rng.normal(0.0, BOX_JITTER_LOG_SIDE * strength)
    dx, dy = rng.normal(0.0, BOX_JITTER_CENTRE * strength, size=2)
    return Frame(frame.cx + dx * frame.side, frame.cy + dy * frame.side, frame.side * math.exp(ls), frame.angle)


def crop(gray: np.ndarray, frame: Frame, size: int = CROP_SIZE) -> np.ndarray:
    """Resample the frame's square of a greyscale image to size x size (uint8).

    Large faces are first shrunk with area averaging so the crop is not aliased;
    regions outside the image repeat the border pixels (the same in training and
    at run time), and the mapping stays exact because it is one affine transform.
    """
    factor = frame.side / size
    m = frame.matrix(size)
    if factor > 1.5:
        # Shrink only the region the crop needs (bounded even for huge photos).
        r = frame.side * 0.75  # > half diagonal of the square
        h, w = gray.shape[:2]
        x0, y0 = max(int(frame.cx - r), 0), max(int(frame.cy - r), 0)
        x1, y1 = min(int(frame.cx + r) + 2, w), min(int(frame.cy + r) + 2, h)
        if x1 > x0 and y1 > y0:
            gray, m = shrink_region(gray, m, (x0, y0, x1, y1), factor)
    return cv2.warpAffine(gray, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def shrink_region(image: np.ndarray, m: np.ndarray, region: tuple[int, int, int, int],
                  factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Area-shrink ``image[y0:y1, x0:x1]`` by ``factor / 1.25`` (``factor``: image pixels per
    output pixel of the affine map ``m``) and fold that resize into ``m``, so a warp of the small
    copy equals a warp of the image without aliasing. Returns (small copy, its map)."""
    x0, y0, x1, y1 = region
    roi = image[y0:y1, x0:x1]
    f = factor / 1.25
    nw, nh = max(int(round(roi.shape[1] / f)), 1), max(int(round(roi.shape[0] / f)), 1)
    small = cv2.resize(roi, (nw, nh), interpolation=cv2.INTER_AREA)
    sx, sy = roi.shape[1] / nw, roi.shape[0] / nh
    # small pixel (u, v) <-> image ((u + .5) * sx - .5 + x0, (v + .5) * sy - .5 + y0)
    to_img = np.array([[sx, 0, 0.5 * sx - 0.5 + x0], [0, sy, 0.5 * sy - 0.5 + y0], [0, 0, 1]])
    return small, (np.vstack([m, [0, 0, 1]]) @ to_img)[:2]


def mirror_average(predict: Callable[[np.ndarray], np.ndarray], crops: np.ndarray) -> np.ndarray:
    """Keypoints averaged over the crops and their mirror images (left/right names swapped
    back), in one model call of twice the batch.

    The two halves err differently (annotators' and the model's own left/right leanings),
    so the average is steadier: on the 300-W validation faces 3% lower NME with the shipped
    model. Costs one more model pass per face, so the photo pipeline does it on the final
    pass only.
    ``predict``: (N, 96, 96) uint8 crops -> (N, 15, 2) crop pixels."""
    direct, mirrored = mirror_pair(predict, crops)
    return (direct + mirrored) / 2


def mirror_pair(predict: Callable[[np.ndarray], np.ndarray], crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two halves :func:`mirror_average` averages: keypoints predicted on the crops and on
    their mirror images (flipped back, left/right names swapped), in one model call."""
    n = len(crops)
    both = predict(np.concatenate([crops, crops[:, :, ::-1]]))
    return both[:n], flip_keypoints(both[n:], crops.shape[2])
