"""OpenCV's Haar cascade, the original write-up's face detector, tuned for recall."""

from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np

from ..imageio import to_gray
from .base import Detection, box_iou, nms

#: Haar weight -> face probability: a logistic fitted on the raw detections of every 300-W photo
#: (1,434 boxes: 1,149 on labelled faces, 285 elsewhere, which includes a few unlabelled real faces),
#: well calibrated there (boxes scored 0.4-0.6 were faces 50% of the time, 0.8-1.0 94%). It separates
#: faces from false alarms with AUC 0.84 (medians 0.92 vs 0.62); the face verifier's probability
#: on the same boxes reaches 0.94 (medians 0.999 vs 0.07), which is why it gates every box.
HAAR_SCORE_SLOPE, HAAR_SCORE_OFFSET = 0.553, -0.832


def haar_confidence(weight: float) -> float:
    """A Haar cascade's level weight (unbounded, about -2..13) as a 0-1 face probability."""
    return float(1.0 / (1.0 + math.exp(-(HAAR_SCORE_SLOPE * float(weight) + HAAR_SCORE_OFFSET))))


def load_cascade(name: str) -> cv2.CascadeClassifier:
    """One of OpenCV's bundled Haar cascades, or a clear error when the wheel lacks them."""
    path = cv2.data.haarcascades + name
    c = cv2.CascadeClassifier(path)
    if c.empty():
        raise RuntimeError(f"OpenCV cascade {path} could not be loaded; install opencv-python-headless<5")
    return c


class HaarDetector:
    """OpenCV's frontal-face Haar cascade with settings and fallbacks that raise recall.

    * detects on a copy downscaled to ``max_side`` pixels, faces from ``min_size`` pixels up
      there (512 and 28: photos up to 512 px keep every face from 28 px, as dlib's group photos
      need; a 640x480 frame finds faces from 35 px, close to dlib HOG's 40 px floor);
    * equalises the histogram (dim and low-contrast photos); ``pad`` frames it with a black
      border of that fraction of its longer side, for faces that fill the photo or touch its
      edge;
    * runs the main cascade coarse to fine: first with big scale steps (``coarse``: scale
      factor 1.2, one neighbour), which finds the face of a portrait, selfie or webcam frame
      at about 60% of the fine pass's cost; then, only if that found nothing or found a face smaller than
      ``fine_below`` times ``min_size`` (small faces come in crowds, and big steps skip some),
      the fine pass (``scale_factor`` 1.1, ``min_neighbors=3``). Either way a box is kept only
      if the independent ``alt2`` cascade also finds a face in its neighbourhood (on 300-W and
      dlib's photos: 99% of true faces kept, 60% of false alarms dropped);
    * a second, cheap pass for faces that fill the photo or touch its edge, which the cascade
      loses at its largest scales: the picture framed by a black border and shrunk to
      ``big_side`` pixels (0 = off), keeping only faces it finds that the main pass missed;
    * when nothing is found: with ``profile=True`` (default) OpenCV's profile cascade on the
      picture and its mirror, then rotated retries at ``retry_angles`` degrees, whose boxes carry the angle
      so the crop is rotated too.

    ``Detection.score`` is :func:`haar_confidence` of the cascade's weight: a 0-1 face probability.

    Measured on the 300-W photos (``bench/bench_photos.py --haar-sweep``): the big-face pass
    raised recall on the validation photos from 88% to 93% for 12% more time, the profile
    fallback to 94% at no cost on photos with faces; coarse to fine cut the time per photo
    by about 30% and lost no face there or in dlib's group photos. :meth:`fast` detects at
    320 px: faster, but it misses faces under about 48 px in a 640 px photo (docs/benchmarks.md).
    """

    @classmethod
    def fast(cls, **kw) -> HaarDetector:
        """Portraits and webcams: detect at 320 px on a padded frame, profile fallback."""
        return cls(**{"max_side": 320, "min_size": 20, "pad": 0.1, "profile": True, "big_side": 0, **kw})

    def __init__(
        self,
        max_side: int = 512,
        scale_factor: float = 1.1,
        min_neighbors: int = 3,
        min_size: int = 28,
        pad: float = 0.0,
        profile: bool = True,
        retry_angles: tuple[float, ...] = (-30.0, 30.0),
        fallback: bool = True,
        verify: bool = True,
        big_side: int = 160,
        coarse: tuple[float, int] | None = (1.2, 1),
        fine_below: float = 3.5,
    ) -> None:
        self.max_side = max_side
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size
        self.retry_angles = retry_angles
        self.fallback = fallback
        self.pad = pad
        self.big_side = big_side
        self.coarse = coarse
        self.fine_below = fine_below
        self._profile = load_cascade("haarcascade_profileface.xml") if profile else None
        self._main = load_cascade("haarcascade_frontalface_default.xml")
        self._alt = load_cascade("haarcascade_frontalface_alt2.xml") if verify else None

    def _run(self, cascade: cv2.CascadeClassifier, gray: np.ndarray, min_size: int | None = None,
             steps: tuple[float, int] | None = None) -> list[tuple[tuple[float, ...], float]]:
        m = self.min_size if min_size is None else min_size
        scale_factor, min_neighbors = steps or (self.scale_factor, self.min_neighbors)
        rects, _, weights = cascade.detectMultiScale3(
            gray,
            scaleFactor=scale_factor,
            minNeighbors=min_neighbors,
            minSize=(m, m),
            outputRejectLevels=True,
        )
        out = []
        for (x, y, w, h), s in zip(np.asarray(rects).reshape(-1, 4), np.asarray(weights).reshape(-1)):
            out.append(((float(x), float(y), float(x + w), float(y + h)), float(s)))
        return out

    def __call__(self, gray: np.ndarray) -> list[Detection]:
        gray = to_gray(gray)
        h, w = gray.shape[:2]
        if min(h, w) < self.min_size:
            return []
        f = min(1.0, self.max_side / max(h, w))
        small = cv2.resize(gray, (max(int(w * f), 1), max(int(h * f), 1)), interpolation=cv2.INTER_AREA) if f < 1 else gray
        small = cv2.equalizeHist(small)
        p = int(round(self.pad * max(small.shape)))
        framed = cv2.copyMakeBorder(small, p, p, p, p, cv2.BORDER_CONSTANT, value=0) if p else small

        def scaled(box: tuple[float, ...]) -> tuple[float, float, float, float]:
            return tuple((float(v) - p) / f for v in box)  # type: ignore[return-value]

        found = self._frontal(framed, scaled)
        if self.big_side:
            found += [d for d in self._big(small, f) if all(box_iou(d.box, k.box) < 0.3 for k in found)]
        if not found and self._profile is not None:
            found = self._profiles(framed, scaled)
        if not found and self.fallback:
            found = self._rotated(small, f)
        return [replace(d, score=haar_confidence(d.score)) for d in nms(found)]  # nms ranks by the raw weight

    def _frontal(self, framed: np.ndarray, scaled) -> list[Detection]:
        """The main cascade, coarse to fine: a quick pass with big scale steps finds the faces
        of portraits, selfies and webcams; the fine pass runs only when that found nothing or
        found a small face (small faces come in crowds, and big scale steps skip some)."""
        boxes: list[tuple[tuple[float, ...], float]] = []
        if self.coarse is not None:
            boxes = [(b, s) for b, s in self._run(self._main, framed, steps=self.coarse) if self._verified(framed, b)]
        if self.coarse is None or not boxes or min(b[2] - b[0] for b, _ in boxes) < self.fine_below * self.min_size:
            boxes += [(b, s) for b, s in self._run(self._main, framed) if self._verified(framed, b)]
        return [Detection(scaled(b), s) for b, s in boxes]

    def _big(self, small: np.ndarray, f: float) -> list[Detection]:
        """Faces that fill the picture: frame it with a black border (15% of its longer side),
        shrink to ``big_side`` and run the cascade there (about a tenth of the main pass's time)."""
        p = int(round(0.15 * max(small.shape)))
        framed = cv2.copyMakeBorder(small, p, p, p, p, cv2.BORDER_CONSTANT, value=0)
        g = self.big_side / max(framed.shape)
        if g >= 1:
            return []
        tiny = cv2.resize(framed, (max(int(framed.shape[1] * g), 1), max(int(framed.shape[0] * g), 1)),
                          interpolation=cv2.INTER_AREA)
        out = []
        for b, s in self._run(self._main, tiny, min_size=24):
            if self._verified(tiny, b):
                out.append(Detection(tuple((v / g - p) / f for v in b), s))  # type: ignore[arg-type]
        return out

    def _profiles(self, framed: np.ndarray, scaled) -> list[Detection]:
        """The profile cascade knows one side only: run it on the picture and its mirror."""
        out = [Detection(scaled(b), s) for b, s in self._run(self._profile, framed)]
        fw = framed.shape[1]
        for (x0, y0, x1, y1), s in self._run(self._profile, np.ascontiguousarray(framed[:, ::-1])):
            out.append(Detection(scaled((fw - x1, y0, fw - x0, y1)), s))
        return out

    def _verified(self, gray: np.ndarray, box: tuple[float, ...]) -> bool:
        """Second opinion: the independent alt2 cascade must also find a face around the box."""
        if self._alt is None:
            return True
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        w = x1 - x0
        m = w // 4
        roi = gray[max(y0 - m, 0):y1 + m, max(x0 - m, 0):x1 + m]
        lo = max(int(w * 0.6), 20)
        return len(self._alt.detectMultiScale(roi, 1.05, 1, minSize=(lo, lo))) > 0

    def _rotated(self, small: np.ndarray, f: float) -> list[Detection]:
        sh, sw = small.shape[:2]
        centre = ((sw - 1) / 2, (sh - 1) / 2)
        out: list[Detection] = []
        for deg in self.retry_angles:
            # getRotationMatrix2D turns the picture counter-clockwise by +deg, which straightens a
            # face whose eye line (image y down) is at +deg: that roll goes with the box.
            m = cv2.getRotationMatrix2D(centre, deg, 1.0)
            cos, sin = abs(m[0, 0]), abs(m[0, 1])
            nw, nh = int(sh * sin + sw * cos), int(sh * cos + sw * sin)
            m[0, 2] += (nw - sw) / 2
            m[1, 2] += (nh - sh) / 2
            rot = cv2.warpAffine(small, m, (nw, nh), borderMode=cv2.BORDER_REPLICATE)
            inv = cv2.invertAffineTransform(m)
            for (x0, y0, x1, y1), s in self._run(self._main, rot):
                if not self._verified(rot, (x0, y0, x1, y1)):
                    continue
                c = inv @ np.array([(x0 + x1) / 2, (y0 + y1) / 2, 1.0])
                half = (x1 - x0) / 2
                box = ((c[0] - half) / f, (c[1] - half) / f, (c[0] + half) / f, (c[1] + half) / f)
                out.append(Detection(box, s, math.radians(deg)))
        return out
