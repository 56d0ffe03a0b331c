"""The CPU side of the web app: shared model, per-thread detectors, a bounded thread pool.

onnxruntime's ``InferenceSession.run`` is thread-safe, so one model serves every
request; OpenCV's ``CascadeClassifier`` is not guaranteed to be, so each pool
thread builds its own :class:`KeypointDetector` (sharing the model) on first
use. Work runs in a pool of ``workers`` threads, off the event loop, so the
server keeps answering (health checks, other sockets) while it computes.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import cv2
import numpy as np

from ..errors import FkpError, InputError
from ..imageio import decode_image
from ..photos import record
from ..pipeline import Face, KeypointDetector
from ..runtime import POINT_COUNTS, OnnxKeypointModel
from .upload import UploadError, apply_orientation, check_image_bytes

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class WebSettings:
    """Server limits and model options (``fkp serve`` flags map onto these)."""

    model: str | None = None
    #: the 68-landmark model for ``points=68`` requests (None: the shipped ``points68.onnx``)
    model68: str | None = None
    refine: int = 1
    #: face detector by name (None = ``facekeypoints.detection.DEFAULT_DETECTOR``)
    detector: str | None = None
    max_upload_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000
    workers: int = field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))
    #: onnxruntime intra-op threads per run; 1 because requests already run in parallel.
    threads: int | None = 1
    jpeg_quality: int = 90


def filters_available() -> bool:
    try:
        from .. import filters  # noqa: F401
    except ImportError:
        return False
    return True


def filter_list() -> list[dict]:
    """Name and description of every filter, [] when the filters module is absent."""
    try:
        from ..filters import FILTERS
    except ImportError:
        return []
    return [{"name": name, "description": getattr(f, "description", "")} for name, f in FILTERS.items()]


def parse_filters(spec: str | Sequence[str] | None) -> list[str]:
    """``"a,b"`` -> ["a", "b"], refusing unknown names with a 400 that lists the known ones."""
    if not spec:
        return []
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec) if n and n.strip()]
    if not names:
        return []
    try:
        from ..filters import FILTERS
    except ImportError:
        raise UploadError(400, "filters are not available in this installation") from None
    unknown = [n for n in names if n not in FILTERS]
    if unknown:
        raise UploadError(400, f"unknown filter {unknown[0]!r} (available: {', '.join(sorted(FILTERS)) or 'none'})")
    return names


def tracker_available() -> bool:
    try:
        from ..video.tracker import VideoTracker  # noqa: F401
    except ImportError:
        return False
    return True


def data_url(image: np.ndarray, quality: int = 90) -> str:
    """A BGR image as a JPEG ``data:`` URL, ready for an <img> or a canvas."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - JPEG encoding of a BGR uint8 array does not fail
        raise RuntimeError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def render(image: np.ndarray, faces: Sequence[Face], filters: Sequence[str]) -> np.ndarray:
    """What ``fkp detect -o`` writes: the filtered image when filters are named, else the drawn keypoints."""
    if filters:
        from ..filters import apply_filter

        return apply_filter(image, list(faces), list(filters))
    from ..drawing import draw

    return draw(image, faces)


def parse_points(value: object) -> int:
    """``points`` query value -> 15 or 68, refusing anything else with a 400."""
    try:
        points = int(str(value)) if value is not None and str(value).strip() else 15
    except ValueError:
        points = -1
    if points not in POINT_COUNTS:
        raise UploadError(400, f"points must be 15 or 68, not {value!r}")
    return points


def decode_upload(data: bytes, source: str, max_pixels: int) -> np.ndarray:
    """Checked bytes -> upright BGR image; header dimensions are checked before any pixel is decoded."""
    orientation = check_image_bytes(data, max_pixels)
    try:
        image = decode_image(data, source, max_pixels)
    except InputError as e:
        raise UploadError(413 if "too large" in e.problem else 400, e.problem) from None
    return apply_orientation(image, orientation)


class Engine:
    """Decoding and detection for the web app; safe to call from many threads at once."""

    def __init__(self, settings: WebSettings | None = None) -> None:
        self.settings = settings or WebSettings()
        self.model = OnnxKeypointModel(self.settings.model, threads=self.settings.threads)
        self._model68: OnnxKeypointModel | None = None
        self._model68_lock = threading.Lock()
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="fkp-web")

    def detector(self, points: int = 15) -> KeypointDetector:
        """This thread's detector (its own face detector session or cascades), shared ONNX models (``points`` 68:
        the landmark model, framed by the 15-point one)."""
        if points != 15:
            dets = self._local.__dict__.setdefault("by_points", {})
            if points not in dets:
                # the server's 15-point model frames the faces and gives their 15 (KeypointDetector's keypoints_model)
                dets[points] = KeypointDetector(self.model_for(points), detector=self.settings.detector,
                                                refine=self.settings.refine, threads=self.settings.threads,
                                                points=points, keypoints_model=self.model)
            return dets[points]
        det = getattr(self._local, "detector", None)
        if det is None:
            det = self._local.detector = KeypointDetector(self.model, detector=self.settings.detector,
                                                          refine=self.settings.refine, threads=self.settings.threads)
        return det

    def model_for(self, points: int) -> OnnxKeypointModel:
        """The shared model for 15 or 68 points; the 68-point one is loaded on first use (503 if absent)."""
        if points == 15:
            return self.model
        with self._model68_lock:
            if self._model68 is None:
                try:
                    model = OnnxKeypointModel(self.settings.model68, threads=self.settings.threads, points=68)
                    model.expect_points(68)
                except FkpError as e:
                    raise UploadError(503, f"68-point landmarks are not available here ({e})") from None
                self._model68 = model
            return self._model68

    def points_available(self) -> list[int]:
        """Point counts this server can answer: 15, and 68 when its model file is present."""
        from pathlib import Path

        from ..runtime import default_model_path

        path = Path(self.settings.model68) if self.settings.model68 else default_model_path(68)
        return [15, 68] if self._model68 is not None or path.is_file() else [15]

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the pool without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))

    def decode(self, data: bytes, source: str) -> np.ndarray:
        return decode_upload(data, source, self.settings.max_pixels)

    def detect_photo(self, data: bytes, source: str, filters: Sequence[str] = (), annotated: bool = False,
                     points: int = 15) -> dict:
        """One ``fkp detect --json`` record, plus ``"annotated"`` (a JPEG data URL) when asked or filtered;
        ``points`` 68 adds each face's ``"landmarks"`` (as ``fkp detect --points 68``)."""
        image = self.decode(data, source)
        faces = self.detector(points).detect(image)
        rec = record(source, image, faces, None)
        if annotated or filters:
            rec["annotated"] = data_url(render(image, faces, filters), self.settings.jpeg_quality)
        return rec

    def new_stream(self) -> Stream:
        return Stream(self)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _make_tracker(engine: Engine, points: int = 15) -> Any | None:
    """A fresh ``VideoTracker`` for one webcam connection (sharing the ONNX model), or None without the video module."""
    try:
        from ..video.tracker import VideoTracker
    except ImportError:
        return None
    if "detector" not in inspect.signature(VideoTracker).parameters:
        return VideoTracker()
    from ..detection import DEFAULT_DETECTOR, HaarDetector, make_detector

    # The tracker's own detectors (learned: as in photos; Haar: small detection copy, no rotated retries),
    # but on the shared model.
    name = engine.settings.detector or DEFAULT_DETECTOR
    face_det = (HaarDetector(max_side=480, retry_angles=(), profile=False) if name.startswith("haar")
                else make_detector(name, threads=engine.settings.threads))
    det = KeypointDetector(engine.model_for(points), detector=face_det, refine=engine.settings.refine, flip=False,
                           points=points, keypoints_model=engine.model)
    return VideoTracker(detector=det)


class Stream:
    """One webcam connection: its own tracker (identities and smoothing follow the face) and filter choice.

    Frames of one connection are processed one after another (the client keeps
    one frame in flight), so the tracker is never used by two threads at once.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.tracker = _make_tracker(engine)
        self.filters: list[str] = []
        self.points = 15
        self.frames = 0

    def set_points(self, points: int) -> None:
        """Switch between 15 keypoints and 68 landmarks: a new tracker (ids restart) on the other model."""
        if points != self.points:
            tracker = _make_tracker(self.engine, points)
            self.tracker, self.points = tracker, points

    def process(self, data: bytes) -> dict:
        t0 = time.perf_counter()
        image = self.engine.decode(data, "frame")
        if self.tracker is not None:
            faces = self.tracker.update(image)
        else:
            faces = self.engine.detector(self.points).detect(image)
        self.frames += 1
        out: dict[str, Any] = {"type": "frame", "frame": self.frames, "width": image.shape[1],
                               "height": image.shape[0], "faces": [f.to_dict() for f in faces], "error": None}
        if self.filters:
            out["image"] = data_url(render(image, faces, self.filters), self.engine.settings.jpeg_quality)
        out["ms"] = round((time.perf_counter() - t0) * 1000, 1)
        return out
