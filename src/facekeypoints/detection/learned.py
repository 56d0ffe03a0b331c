"""The learned face detector: a small centre-based CNN trained in this repository
(``fkp train-detector``, docs/detector.md), shipped as ``models/detector.onnx`` and run
with onnxruntime (no torch).

The photo is shrunk (or enlarged) so its longer side has a pass's ``side`` pixels, padded to a
multiple of 32, and the network gives per stride-8 cell a face-centre probability (already
peak-picked by a 3x3 max-pool inside the graph), the centre's offset, the box side and five
points. The default runs two passes (:data:`DEFAULT_SCALES`): a coarse one (224 px) keeps the
faces of 32 px and more there (big faces, which the network scores best at that scale), a fine
one (448 px) those under 100 px there (crowds); peaks over each pass's threshold become detections
and one greedy NMS merges them, the coarse pass's box winning where the bands overlap. docs/detector.md says how the settings were chosen.

Box convention (the one the detector learnt and the tests measure, :func:`box_from_points`):
a square, axis-aligned box computed from the five points alone, so every data source (68-point
sets, MTFL's 5 points, a teacher's 5 points) yields the same box. With the eye midpoint ``e``,
the mouth-corner midpoint ``m``, the inter-ocular distance ``iod`` and the eye-mouth distance
``em``: centre ``e + 0.672 (m - e)``, side ``2.19 sqrt((iod^2 + em^2) / 2)``. Both constants are
the medians over the 2,012 300-W + LFPW faces of the 68-point extent measured in the face's own
(de-rolled) frame: the box centre is the extent's centre, its side the geometric mean of the
extent's width and height (jaw to jaw, brows to chin).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from ..imageio import to_gray
from ..runtime import onnx_session
from ..schema import INDEX
from .base import Detection

#: The five points, subject's own left first, as names of the 15-point schema.
FIVE_POINTS = ("left_eye_center", "right_eye_center", "nose_tip", "mouth_left_corner", "mouth_right_corner")
FIVE_INDEX = [INDEX[n] for n in FIVE_POINTS]
#: Index permutation that renames the five points for a mirrored image.
FIVE_FLIP = [1, 0, 2, 4, 3]

BOX_CENTRE_FRACTION = 0.672
BOX_SIDE_PER_SCALE = 2.19
STRIDE = 8


def box_from_points(p5: np.ndarray) -> np.ndarray:
    """(..., 5, 2) points (``FIVE_POINTS`` order) -> (..., 4) square boxes (x0, y0, x1, y1)."""
    p = np.asarray(p5, dtype=np.float64)
    eye = (p[..., 0, :] + p[..., 1, :]) / 2
    mouth = (p[..., 3, :] + p[..., 4, :]) / 2
    iod = np.linalg.norm(p[..., 0, :] - p[..., 1, :], axis=-1)
    em = np.linalg.norm(mouth - eye, axis=-1)
    half = BOX_SIDE_PER_SCALE * np.sqrt((iod**2 + em**2) / 2) / 2
    c = eye + BOX_CENTRE_FRACTION * (mouth - eye)
    return np.concatenate([c - half[..., None], c + half[..., None]], axis=-1)


def points_roll(p5: np.ndarray) -> float:
    """Roll of a face from its five points: angle of the line from the right eye to the left eye."""
    d = np.asarray(p5[0], np.float64) - np.asarray(p5[1], np.float64)
    return math.atan2(float(d[1]), float(d[0]))


def _gray8(image: np.ndarray) -> np.ndarray:
    """Grey uint8 from grey, BGR or BGRA arrays of uint8, uint16 or float (0-1) pixels."""
    img = np.asarray(image)
    if img.size == 0:
        return np.zeros((0, 0), np.uint8)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[:, :, 0]
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(np.nan_to_num(img.astype(np.float32)) * 255.0, 0, 255).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY)
    return to_gray(img)


def default_detector_path() -> Path:
    """The learned detector that ships inside the package."""
    return Path(str(resources.files("facekeypoints") / "models" / "detector.onnx"))


def _scale_factor(shape: tuple[int, ...], max_side: int, max_upscale: float = 2.0) -> float:
    return min(max_side / max(shape[0], shape[1]), max_upscale)


def _resize(src: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (w, h): area averaging when shrinking under 0.7x (no aliasing), bilinear otherwise
    (the trainer's own rule when it warps pictures onto its canvases)."""
    r = size[0] / max(src.shape[1], 1)
    return cv2.resize(src, size, interpolation=cv2.INTER_AREA if r < 0.7 else cv2.INTER_LINEAR)


def _pad(small: np.ndarray) -> np.ndarray:
    nh, nw = small.shape[:2]
    x = np.zeros((1, 1, -(-nh // 32) * 32, -(-nw // 32) * 32), np.float32)
    np.multiply(small, np.float32(1 / 255), out=x[0, 0, :nh, :nw])
    return x


def letterbox(gray: np.ndarray, max_side: int, max_upscale: float = 2.0) -> tuple[np.ndarray, float]:
    """Resize so the longer side is ``max_side`` (small pictures enlarged at most ``max_upscale``
    times: their faces fill them, and the network learnt faces up to ~220 px) and pad
    (bottom/right, black) to multiples of 32.

    Returns the (1, 1, H, W) float32 input in [0, 1] and the scale factor applied."""
    h, w = gray.shape[:2]
    f = _scale_factor(gray.shape, max_side, max_upscale)
    nw, nh = max(int(round(w * f)), 1), max(int(round(h * f)), 1)
    return _pad(_resize(gray, (nw, nh))), f


def pyramid(gray: np.ndarray, factors: list[float]) -> dict[float, np.ndarray]:
    """The letterboxed inputs for several scale factors (one per distinct factor).
    Each level is resized from the smallest one already made that is larger (a 640 px frame's
    224 px level from its 448 px one: an exact halving, much cheaper than from the frame)."""
    h, w = gray.shape[:2]
    made: list[tuple[float, np.ndarray]] = []
    out: dict[float, np.ndarray] = {}
    for f in sorted(set(factors), reverse=True):
        src = next((img for g, img in reversed(made) if g >= f), gray)
        small = _resize(src, (max(int(round(w * f)), 1), max(int(round(h * f)), 1)))
        made.append((f, small))
        out[f] = _pad(small)
    return out


def decode(out: np.ndarray, score_threshold: float, max_faces: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Network output (14, h, w) -> scores (N,), boxes (N, 4), points (N, 5, 2) in input pixels.

    Channel 0 holds peak-picked probabilities (zero off the 3x3 maxima), 1-2 the centre offset
    in the cell, 3 the log of the box side in strides, 4-13 the points relative to the centre
    in box sides."""
    heat = out[0]
    ys, xs = np.nonzero(heat >= score_threshold)
    scores = heat[ys, xs]
    order = np.argsort(-scores)[:max_faces]
    ys, xs, scores = ys[order], xs[order], scores[order]
    cx = (xs + out[1, ys, xs]) * STRIDE
    cy = (ys + out[2, ys, xs]) * STRIDE
    side = np.exp(np.clip(out[3, ys, xs], -3.0, 6.0)) * STRIDE
    pts = out[4:14, ys, xs].T.reshape(-1, 5, 2) * side[:, None, None] + np.stack([cx, cy], 1)[:, None, :]
    boxes = np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], 1)
    return scores.astype(np.float32), boxes, pts


def nms_indices(boxes: np.ndarray, scores: np.ndarray, iou: float, rank: np.ndarray | None = None) -> list[int]:
    """Greedy NMS over (N, 4) boxes sorted by ``scores`` (by ``rank`` first, lower first, when given);
    returns kept indices."""
    order = list(np.argsort(-scores, kind="stable") if rank is None else np.lexsort((-scores, rank)))
    keep: list[int] = []
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order:
        i = order.pop(0)
        keep.append(i)
        if not order:
            break
        rest = np.array(order)
        ix = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None)
        iy = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None)
        inter = ix * iy
        ov = inter / (area[i] + area[rest] - inter + 1e-9)
        order = [j for j, o in zip(rest, ov) if o <= iou]
    return keep


@dataclass(frozen=True)
class Scale:
    """One pass of the detector: the photo resized so its longer side is ``side`` px (small pictures
    enlarged at most ``max_upscale`` times), peaks of face probability >= ``threshold`` kept when their box side, in
    this pass's pixels, lies in [``min_face``, ``max_face``)."""

    side: int
    threshold: float = 0.5
    min_face: float = 0.0
    max_face: float = math.inf
    max_upscale: float = 2.0


#: The default passes (docs/detector.md: chosen on training pictures and synthetic crowds of
#: training faces): faces of 32 px and more at 224 px, those under 100 px at 448 px (never enlarged:
#: on small pictures it found specks). The bands overlap because the two passes' size estimates of
#: one face differ by up to ~15%: with 40 / 80 a ~115 px face in a 640 px frame fell between them.
#: Where both see a face, the 224 px box is kept (:meth:`LearnedDetector.raw`).
DEFAULT_SCALES = (Scale(224, 0.3, 32.0), Scale(448, 0.3, 0.0, 100.0, max_upscale=1.0))


class LearnedDetector:
    """The shipped CNN face detector: ``gray or BGR image -> list[Detection]``.

    Each :class:`Detection` carries the box (the convention of :func:`box_from_points`), the
    face probability (0-1) as ``score``, the five points (``FIVE_POINTS`` order, image pixels)
    and ``angle`` = 0 (the roll is in the points; the pipeline decides how to use them).

    ``scales``: the passes (:class:`Scale`; default :data:`DEFAULT_SCALES`). ``max_side`` /
    ``score_threshold``: a single pass at that side and threshold instead (the detector before the
    two-pass default: ``max_side=320, score_threshold=0.5``). ``nms_iou``: the NMS overlap over all
    passes. ``threads``: onnxruntime intra-op threads (None = its default).
    """

    def __init__(self, path: str | os.PathLike | None = None, max_side: int | None = None,
                 score_threshold: float | None = None, nms_iou: float = 0.4, threads: int | None = None,
                 verify: bool = True, scales: tuple[Scale, ...] | None = None) -> None:
        self.path = Path(path) if path is not None else default_detector_path()
        self.session, self.meta = onnx_session(self.path, threads, verify)
        self.input_name = self.session.get_inputs()[0].name
        if max_side is not None or score_threshold is not None:
            scales = (Scale(int(max_side or 320), float(0.5 if score_threshold is None else score_threshold)),)
        self.scales = tuple(DEFAULT_SCALES if scales is None else scales)
        if not self.scales:
            raise ValueError("LearnedDetector needs at least one scale")
        self.nms_iou = float(nms_iou)

    @classmethod
    def fast(cls, threads: int | None = None, **kw) -> LearnedDetector:
        """Portraits and webcams: one pass at 256 px on the long side, threshold 0.5 (faces from about
        35 px in a 640 px photo)."""
        return cls(**{"max_side": 256, "score_threshold": 0.5, "threads": threads, **kw})

    def raw(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scores (N,), boxes (N, 4) and points (N, 5, 2) in image pixels, after NMS, best first."""
        gray = _gray8(image)
        if gray.size == 0:
            return np.zeros(0, np.float32), np.zeros((0, 4)), np.zeros((0, 5, 2))
        factors = [_scale_factor(gray.shape, sc.side, sc.max_upscale) for sc in self.scales]
        inputs = pyramid(gray, factors)
        outs: dict[float, np.ndarray] = {}
        got = []
        for sc, f in zip(self.scales, factors):
            if f not in outs:  # a small picture is enlarged at most 2x: two passes may see the same input
                outs[f] = self.session.run(None, {self.input_name: inputs[f]})[0][0]
            scores, boxes, pts = decode(outs[f], sc.threshold)
            side = boxes[:, 2] - boxes[:, 0]
            m = (side >= sc.min_face) & (side < sc.max_face)
            got.append((scores[m], boxes[m] / f, pts[m] / f))
        rank = np.concatenate([np.full(len(g[0]), i) for i, g in enumerate(got)])
        scores = np.concatenate([g[0] for g in got])
        boxes = np.concatenate([g[1] for g in got]).reshape(-1, 4)
        pts = np.concatenate([g[2] for g in got]).reshape(-1, 5, 2)
        if len(scores) == 0:
            return scores, boxes, pts
        # where two passes' size bands overlap, the first (coarser) pass's box is kept: it sees the face
        # whole, while the finer one can box part of a big face confidently (300-W 1204062305_1.jpg: 0.91
        # on a box half the face's size, against 0.77 on the right one)
        keep = nms_indices(boxes, scores, self.nms_iou, rank)
        kept = sorted(keep, key=lambda i: -scores[i])
        return scores[kept], boxes[kept], pts[kept]

    def __call__(self, gray: np.ndarray) -> list[Detection]:
        scores, boxes, pts = self.raw(gray)
        return [Detection(tuple(float(v) for v in b), float(s), 0.0, tuple((float(x), float(y)) for x, y in p))
                for s, b, p in zip(scores, boxes, pts)]
