"""Face tracking for video: detect rarely, follow faces by their own keypoints, smooth.

Running the face detector on every frame is slow (a Haar pass over 640x480 costs
more than ten keypoint predictions; the learned detector's two passes about one) and
jittery (its boxes jump). The tracker
instead:

1. runs the detector on the first frame, then every ``detect_every`` frames (to
   pick up new faces), every ``search_every`` frames while it follows nobody,
   and at once on any frame where a track is lost;
2. in between, crops each face upright around its previous keypoints
   (``frame_from_keypoints(kp, rotate=True)``) and predicts once: the crop the
   model was trained to refine, so one pass per frame is enough;
3. checks each new prediction cheaply (finite, upright, plausible size and
   position change, inside the picture), asks the face verifier CNN whether the
   crop still holds a face (about 0.06 ms a face: a hard scene cut, or a track that
   slid onto background, loses the track in that very frame) and, every
   ``verify_every`` frames, runs the Haar cascade on a small upright patch around
   the face (about 1 ms) to re-seed a track that drifted;
4. gates detections as ``KeypointDetector.detect`` does (the verifier, keypoints that
   span the face the box implies, the mirror gate for the learned detector's), matches them to tracks by overlap (IoU or centre
   distance), keeps ids, gives new faces new ids and drops tracks that are lost and
   not re-detected;
5. smooths each track's keypoints over time (:mod:`facekeypoints.video.smoothing`),
   with the filter reset whenever a track is re-seeded from a detection.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..detection import DEFAULT_DETECTOR, Detection, HaarDetector, box_iou, haar_confidence, load_cascade, make_detector
from ..geometry import BOX_SIDE, Frame, box_from_frame, crop, frame_from_box, frame_from_keypoints
from ..imageio import to_gray
from ..pipeline import MAX_FRAME_OVERLAP, Face, KeypointDetector, detection_frame, frame_overlap
from ..schema import INDEX, to_points15
from .smoothing import SMOOTHERS, Smoother, make_smoother

_LE, _RE = INDEX["left_eye_center"], INDEX["right_eye_center"]
_MOUTH = [INDEX["mouth_left_corner"], INDEX["mouth_right_corner"]]

#: Verification patch: this many face sides around the face, resampled to VERIFY_SIZE pixels
#: (the face comes out ~50 px wide: at 40 px Haar missed 1 check in 5 on our test clips, at 50 none;
#: with scale step 1.2 and 2 neighbours it found every face there and nothing in background patches,
#: for ~1.5 ms a check).
VERIFY_CONTEXT = 2.0
VERIFY_SIZE = 96
#: How far around a crop frame's centre (in sides) geometry.crop reads pixels: 0.75 for its
#: area-shrink region, which also covers the rotated square (half diagonal 0.71).
CROP_REACH = 0.76
#: Weight of the newest frame-to-frame motion in the velocity estimate. Centring the crop on where the
#: face is heading (rather than where it was) made tracking as accurate as per-frame detection (bench).
VELOCITY_GAIN = 0.5
#: Never extrapolate motion over more than this many seconds (a stalled camera).
MAX_PREDICT_S = 0.1


@dataclass
class Track:
    """One followed face. ``keypoints`` are the raw latest prediction (they place the next crop);
    ``smoothed`` is what the caller sees."""

    id: int
    keypoints: np.ndarray
    score: float | None
    smoother: Smoother
    smoothed: np.ndarray | None = None
    since_verify: int = 0
    lost: bool = False
    age: int = 0
    t: float | None = None
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    frame: Frame = field(init=False)

    def __post_init__(self) -> None:
        self.frame = frame_from_keypoints(self.keypoints, rotate=True)

    def set_keypoints(self, kp: np.ndarray, t: float | None = None, reseed: bool = False,
                      new: Frame | None = None) -> None:
        """New raw keypoints (``new``: their frame, if already computed); updates the face's velocity
        (px/s, an EMA of frame-to-frame motion)."""
        new = new if new is not None else frame_from_keypoints(kp, rotate=True)
        if reseed:
            self.velocity = np.zeros(2)
            self.smoother.reset()
        elif t is not None and self.t is not None and t > self.t:
            step = np.array([new.cx - self.frame.cx, new.cy - self.frame.cy]) / (t - self.t)
            self.velocity += VELOCITY_GAIN * (step - self.velocity)
        self.keypoints, self.frame = kp, new
        if t is not None:
            self.t = t

    def predicted_frame(self, t: float) -> Frame:
        """Crop frame for time t: the last frame moved by the face's velocity (constant-velocity guess)."""
        if self.t is None or t <= self.t:
            return self.frame
        shift = self.velocity * min(t - self.t, MAX_PREDICT_S)
        n = float(np.hypot(*shift))
        if n > 0.3 * self.frame.side:
            shift *= 0.3 * self.frame.side / n
        return Frame(self.frame.cx + float(shift[0]), self.frame.cy + float(shift[1]), self.frame.side, self.frame.angle)

    def box(self) -> tuple[float, float, float, float]:
        return box_from_frame(frame_from_keypoints(self.keypoints))


def gray_region(image: np.ndarray, frames: list[Frame], reach: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Grey copy of just the part of ``image`` that frames (centre +- reach * side) sample, and its offset.

    Converting only this region, rather than the whole picture, is a tenth of the work for a face in a
    640x480 frame; crops taken from it equal those from the full grey image (edges are replicated
    the same way, because the region is only clipped where the image ends)."""
    h, w = image.shape[:2]
    x0 = max(int(min(f.cx - reach * f.side for f in frames)) - 3, 0)
    y0 = max(int(min(f.cy - reach * f.side for f in frames)) - 3, 0)
    x1 = min(int(max(f.cx + reach * f.side for f in frames)) + 4, w)
    y1 = min(int(max(f.cy + reach * f.side for f in frames)) + 4, h)
    if x1 <= x0 or y1 <= y0:  # frames entirely off the picture: the crop repeats the nearest edge
        x0, y0, x1, y1 = min(max(x0, 0), w - 1), min(max(y0, 0), h - 1), 0, 0
        x1, y1 = x0 + 1, y0 + 1
    return to_gray(image[y0:y1, x0:x1]), (x0, y0)


def _grow(box: tuple[float, ...], f: float) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * f, (y1 - y0) * f
    return (x0 - dx, y0 - dy, x1 + dx, y1 + dy)


def _same_face(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Match strength of two boxes (0 = different faces): IoU, or failing that close centres."""
    iou = box_iou(a, b)
    if iou > 0.3:
        return iou
    wa, wb = a[2] - a[0], b[2] - b[0]
    d = math.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2)
    if d < 0.4 * min(wa, wb) and 0.6 < wa / max(wb, 1e-6) < 1.67:
        return 0.3 * (1 - d / (0.4 * min(wa, wb))) + 1e-3
    return 0.0


def match_boxes(tracks: list[tuple[float, ...]], dets: list[tuple[float, ...]]) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of track boxes to detection boxes, strongest pairs first."""
    pairs = sorted(((s, i, j) for i, a in enumerate(tracks) for j, b in enumerate(dets)
                    if (s := _same_face(a, b)) > 0), reverse=True)
    used_t: set[int] = set()
    used_d: set[int] = set()
    out = []
    for _, i, j in pairs:
        if i not in used_t and j not in used_d:
            used_t.add(i)
            used_d.add(j)
            out.append((i, j))
    return out


def _disagree(a: Frame, b: Frame, centre: float = 0.25, scale: float = 1.3) -> bool:
    """True when two frames of the same face differ by more than a fraction of a side or a scale factor."""
    r = a.side / max(b.side, 1e-6)
    return math.hypot(a.cx - b.cx, a.cy - b.cy) > centre * max(a.side, b.side) or not 1 / scale < r < scale


def video_detector(model: str | None = None, detect_side: int = 400, threads: int | None = 1,
                   points: int = 15, detector: str | None = None) -> KeypointDetector:
    """The tracker's default :class:`KeypointDetector`. ``detector`` (default: ``DEFAULT_DETECTOR``):
    "learned" runs the learned detector as in photos; "haar" runs Haar on a copy at most ``detect_side``
    px wide, without the rotated retries (a rolled face is found upright in a later frame, then
    followed). One onnxruntime thread (a frame holds one or a few 96x96 crops: extra threads only spin,
    and on a busy 2-core machine one thread ran the whole loop faster). No mirror averaging: it would
    double the model's share of every frame, and the temporal filter already averages. ``points``: 15
    or 68 (the shipped 68-landmark model when ``model`` is None)."""
    name = detector or DEFAULT_DETECTOR
    if name.startswith("haar"):
        det = HaarDetector(max_side=detect_side, retry_angles=(), profile=False)
    else:
        det = make_detector(name, threads=threads)
    return KeypointDetector(model, detector=det, threads=threads, flip=False, points=points)


class VideoTracker:
    """Keypoints for a stream of frames, with stable face ids and temporal smoothing.

    ``detector``: a :class:`KeypointDetector` (default: :func:`video_detector`: the shipped model with
    ``DEFAULT_DETECTOR``, the learned CNN; ``detect_side`` only matters for Haar, which then works on a
    copy at most that many pixels wide and skips rotated retries).
    ``detect_every``: full-frame detection period in frames while faces are tracked (new faces).
    ``search_every``: detection period while no face is tracked.
    ``verify_every``: frames between local Haar checks of each track.
    ``smooth``: ``"oneeuro"``, ``"ema"`` or ``"none"``; ``min_cutoff``/``beta``/``d_cutoff``
    (One Euro) and ``cutoff`` (EMA) tune it.
    ``max_faces``: follow at most this many faces (largest first).
    ``min_face``: tracks whose crop side falls below this many pixels are dropped.
    ``points``: 15 or 68 landmarks per face (default: the detector's; 15 for the default detector).
    Crops are placed, checked and smoothed the same way for both (frames from the 15 keypoints;
    every point smoothed).

    ``update(frame, timestamp)`` takes BGR (or grey) frames in order; ``timestamp`` in
    seconds (video time for files, None = wall clock for cameras).
    """

    def __init__(
        self,
        detector: KeypointDetector | None = None,
        detect_every: int = 30,
        smooth: str = "oneeuro",
        max_faces: int | None = None,
        search_every: int = 3,
        verify_every: int = 8,
        min_face: float = 24.0,
        detect_side: int = 400,
        min_cutoff: float = 0.5,
        beta: float = 40.0,
        d_cutoff: float = 1.0,
        cutoff: float = 3.0,
        points: int | None = None,
    ) -> None:
        if smooth not in SMOOTHERS:
            raise ValueError(f"unknown smoothing {smooth!r}; choose one of {', '.join(SMOOTHERS)}")
        if detect_every < 1 or search_every < 1 or verify_every < 1:
            raise ValueError("detect_every, search_every and verify_every must be >= 1")
        if max_faces is not None and max_faces < 1:
            raise ValueError("max_faces must be >= 1 (or None for no limit)")
        self.detector = detector if detector is not None else video_detector(detect_side=detect_side,
                                                                             points=points or 15)
        if points is not None and getattr(self.detector, "points", 15) != points:
            raise ValueError(f"points={points} but the detector gives {self.detector.points} points")
        #: points per face (15 or 68)
        self.points = getattr(self.detector, "points", 15)
        self.detect_every = detect_every
        self.search_every = search_every
        self.verify_every = verify_every
        self.max_faces = max_faces
        self.min_face = min_face
        self.smooth = smooth
        self._smooth_params = ({"min_cutoff": min_cutoff, "beta": beta, "d_cutoff": d_cutoff} if smooth == "oneeuro"
                               else {"cutoff": cutoff} if smooth == "ema" else {})
        self._verifier = load_cascade("haarcascade_frontalface_default.xml")
        self.reset()

    def reset(self) -> None:
        """Forget all tracks (e.g. on a scene cut or a new video)."""
        self.tracks: list[Track] = []
        self.frame_index = -1
        self._since_detect = 0
        self._next_id = 1
        #: counters for tests and benchmarks
        self.stats = {"detections": 0, "verifications": 0, "lost": 0, "reseeded": 0}

    # -- one frame -------------------------------------------------------------------------------------
    def update(self, frame: np.ndarray, timestamp: float | None = None) -> list[Face]:
        """Track faces into this frame; returns them (ids stable across frames), ordered by id."""
        t = time.monotonic() if timestamp is None else float(timestamp)
        if not isinstance(frame, np.ndarray) or frame.ndim not in (2, 3) or frame.dtype != np.uint8:
            raise ValueError("frames must be HxWx3 BGR (or HxW grey) uint8 arrays")
        self.frame_index += 1
        self._since_detect += 1
        if self.tracks:
            self._follow(frame, t)
        period = self.detect_every if self.tracks else self.search_every
        if self.frame_index == 0 or self._since_detect >= period or any(tr.lost for tr in self.tracks):
            self._detect(frame, t)
        self.tracks = [tr for tr in self.tracks if not tr.lost]
        self._dedupe()
        faces = []
        for tr in self.tracks:
            tr.age += 1
            tr.smoothed = tr.smoother(tr.keypoints, t, tr.frame.side)
            box = box_from_frame(frame_from_keypoints(tr.smoothed))
            # Pose and openness are read off the smoothed keypoints, so they are smoothed too.
            faces.append(Face(tuple(float(v) for v in box), tr.score, tr.smoothed, tr.id,
                              image_size=(int(frame.shape[1]), int(frame.shape[0]))))
        return faces

    def _follow(self, image: np.ndarray, t: float) -> None:
        frames = [tr.predicted_frame(t) for tr in self.tracks]
        gray, (ox, oy) = gray_region(image, frames, CROP_REACH)
        local = [Frame(f.cx - ox, f.cy - oy, f.side, f.angle) for f in frames]
        crops = np.stack([crop(gray, f) for f in local])
        kps = self.detector.keypoints_from_frames(gray, local, refine=0, crops=crops) + np.float32([ox, oy])
        verifier = self.detector.verifier
        # the crop must still look like a face: after a scene cut it holds whatever the new scene has there
        face = (verifier.predict(crops) >= self.detector.min_face_prob if verifier is not None
                else np.ones(len(crops), bool))
        for tr, fr, kp, ok in zip(self.tracks, frames, kps, face):
            new = self._plausible(kp, fr, image.shape) if ok else None
            if new is not None:
                tr.set_keypoints(kp, t, new=new)
                tr.since_verify += 1
                if tr.since_verify >= self.verify_every:
                    self._verify(tr, image, t)
            else:
                tr.lost = True
            if tr.lost:
                self.stats["lost"] += 1

    def _plausible(self, kp: np.ndarray, fr: Frame, shape: tuple[int, ...], scale: float = 1.35) -> Frame | None:
        """Cheap sanity checks of a prediction made in the crop ``fr``; the keypoints' frame, or None.
        ``scale``: how much the keypoints' frame may differ in size from ``fr``."""
        if not np.isfinite(kp).all():
            return None
        c = fr.to_crop(to_points15(kp))  # 96 px upright crop: eyes ~36 px apart, mouth ~35 px below them
        if c[_LE, 0] - c[_RE, 0] < 12 or c[_MOUTH, 1].mean() - (c[_LE, 1] + c[_RE, 1]) / 2 < 10:
            return None
        new = frame_from_keypoints(kp, rotate=True)
        if new.side < self.min_face or _disagree(new, fr, centre=0.35, scale=scale):
            return None
        if abs(math.remainder(new.angle - fr.angle, 2 * math.pi)) > math.radians(30):
            return None
        h, w = shape[:2]
        return new if 0 <= new.cx < w and 0 <= new.cy < h else None

    def _verify(self, tr: Track, image: np.ndarray, t: float) -> None:
        """Haar on a small upright patch around the face; re-seed a drifted track, mark a faceless one lost."""
        self.stats["verifications"] += 1
        tr.since_verify = 0
        fr = tr.frame
        gray, (ox, oy) = gray_region(image, [fr], VERIFY_CONTEXT * 0.71)
        roi = Frame(fr.cx - ox, fr.cy - oy, fr.side * VERIFY_CONTEXT, fr.angle)
        patch = cv2.equalizeHist(crop(gray, roi, VERIFY_SIZE))
        expect = VERIFY_SIZE / VERIFY_CONTEXT / BOX_SIDE  # Haar box width of the tracked face in the patch
        lo, hi = int(0.65 * expect), int(1.55 * expect) + 1
        rects, _, weights = self._verifier.detectMultiScale3(patch, 1.2, 2, minSize=(lo, lo), maxSize=(hi, hi),
                                                             outputRejectLevels=True)
        best, best_d, score = None, 0.3 * expect, None
        for (x, y, w, h), s in zip(np.asarray(rects).reshape(-1, 4), np.asarray(weights).reshape(-1)):
            dist = math.hypot(x + w / 2 - VERIFY_SIZE / 2, y + h / 2 - VERIFY_SIZE / 2)
            if dist < best_d:
                best, best_d, score = (float(x), float(y), float(x + w), float(y + h)), dist, float(s)
        if best is None:
            tr.lost = True
            return
        tr.score = haar_confidence(score)
        fp = frame_from_box(best)
        centre = roi.to_image(np.array([[fp.cx, fp.cy]]), VERIFY_SIZE)[0] + (ox, oy)
        found = Frame(float(centre[0]), float(centre[1]), fp.side * roi.side / VERIFY_SIZE, fr.angle)
        if _disagree(found, fr):
            kp = self.detector.keypoints_from_frames(to_gray(image), [found], refine=1)[0]
            tr.set_keypoints(kp, t, reseed=True)
            self.stats["reseeded"] += 1

    def _detect(self, image: np.ndarray, t: float) -> None:
        """Full-frame detection: confirm tracks, re-seed lost ones that are found, start new ones.

        Only the face detector runs here; keypoints are computed just for new and re-seeded faces
        (a confirmed track keeps its own, better centred, keypoints; drift is the verifier's job)."""
        self.stats["detections"] += 1
        self._since_detect = 0
        gray = to_gray(image)
        search = gray
        healthy = [tr for tr in self.tracks if not tr.lost]
        if healthy:
            # Look for new faces only: blank out the faces already followed (their windows are where
            # the cascade spends most of its time), so the periodic check costs about a third less.
            search = gray.copy()
            fill = int(cv2.mean(gray)[0])
            h, w = gray.shape[:2]
            for tr in healthy:
                x0, y0, x1, y1 = _grow(tr.box(), 0.1)
                search[max(int(y0), 0):min(int(y1) + 1, h), max(int(x0), 0):min(int(x1) + 1, w)] = fill
        # the same gate as KeypointDetector.detect: what the verifier takes for a face (crops from the real picture)
        dets = self.detector.verified(gray, self.detector.detector(search))[0]
        dets = sorted(dets, key=lambda d: d.box[0] - d.box[2])  # largest first

        def seed(d: Detection) -> tuple[np.ndarray, Frame] | None:
            """Keypoints for a detection, or None when they do not make a plausible face in its box."""
            fr = detection_frame(d)
            kps, ok = self.detector.gated_keypoints(gray, [d], [fr])  # the photo pipeline's keypoint gates
            kp = kps[0]
            # a five-point frame's side errs more than Haar's box (log-side spread 0.11 against the
            # keypoints' frame, a 300-W face 1.42x off): allow 1.6x (the mirror gate has vetted it)
            new = self._plausible(kp, fr, gray.shape, scale=1.6 if d.points is not None else 1.35) if ok[0] else None
            return None if new is None else (kp, new)

        kept = list(self.tracks)
        pairs = match_boxes([tr.box() for tr in kept], [d.box for d in dets])
        matched = set()
        for i, j in pairs:
            tr, d = kept[i], dets[j]
            matched.add(j)
            tr.score = d.score
            tr.since_verify = 0
            if tr.lost and (s := seed(d)) is not None:
                tr.set_keypoints(s[0], t, reseed=True, new=s[1])
                tr.lost = False
                self.stats["reseeded"] += 1
        limit = self.max_faces if self.max_faces is not None else len(dets) + len(kept)
        alive = sum(not tr.lost for tr in kept)
        for j, d in enumerate(dets):
            if j in matched or alive >= limit or (s := seed(d)) is None:
                continue
            self.tracks.append(Track(self._next_id, s[0], d.score, make_smoother(self.smooth, **self._smooth_params),
                                     since_verify=self._next_id % self.verify_every, t=t))
            self._next_id += 1
            alive += 1

    def _dedupe(self) -> None:
        """Two tracks on one face (converged, or a second box on it): keep the older. Same test as the
        photo pipeline's :func:`~facekeypoints.pipeline.one_per_face`: keypoint frames overlapping by
        more than ``MAX_FRAME_OVERLAP`` of the smaller."""
        if len(self.tracks) < 2:
            return
        keep: list[Track] = []
        for tr in sorted(self.tracks, key=lambda t: t.id):
            f = frame_from_keypoints(tr.keypoints)
            if all(box_iou(tr.box(), k.box()) < 0.5 and frame_overlap(f, frame_from_keypoints(k.keypoints)) <= MAX_FRAME_OVERLAP
                   for k in keep):
                keep.append(tr)
        self.tracks = keep
