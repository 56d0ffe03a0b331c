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

from ..errors import InputError
from ..imageio import decode_image
from ..photos import record
from ..pipeline import Face, KeypointDetector
from ..runtime import OnnxKeypointModel
from .upload import UploadError, apply_orientation, check_image_bytes

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class WebSettings:
    """Server limits and model options (``fkp serve`` flags map onto these)."""

    model: str | None = None
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
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="fkp-web")

    def detector(self) -> KeypointDetector:
        """This thread's detector: own Haar cascades, shared ONNX model."""
        det = getattr(self._local, "detector", None)
        if det is None:
            det = self._local.detector = KeypointDetector(self.model, detector=self.settings.detector,
                                                          refine=self.settings.refine, threads=self.settings.threads)
        return det

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the pool without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args))

    def decode(self, data: bytes, source: str) -> np.ndarray:
        return decode_upload(data, source, self.settings.max_pixels)

    def detect_photo(self, data: bytes, source: str, filters: Sequence[str] = (), annotated: bool = False) -> dict:
        """One ``fkp detect --json`` record, plus ``"annotated"`` (a JPEG data URL) when asked or filtered."""
        image = self.decode(data, source)
        faces = self.detector().detect(image)
        rec = record(source, image, faces, None)
        if annotated or filters:
            rec["annotated"] = data_url(render(image, faces, filters), self.settings.jpeg_quality)
        return rec

    def new_stream(self) -> Stream:
        return Stream(self)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _make_tracker(engine: Engine) -> Any | None:
    """A fresh ``VideoTracker`` for one webcam connection (sharing the ONNX model), or None without the video module."""
    try:
        from ..video.tracker import VideoTracker
    except ImportError:
        return None
    if "detector" not in inspect.signature(VideoTracker).parameters:
        return VideoTracker()
    from ..detection import DEFAULT_DETECTOR, HaarDetector, make_detector

    # The tracker's own default (Haar: small detection copy, no rotated retries), but on the shared model.
    name = engine.settings.detector or DEFAULT_DETECTOR
    face_det = (HaarDetector(max_side=480, retry_angles=(), profile=False) if name.startswith("haar")
                else make_detector(name, threads=engine.settings.threads))
    det = KeypointDetector(engine.model, detector=face_det, refine=engine.settings.refine, flip=False)
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
        self.frames = 0

    def process(self, data: bytes) -> dict:
        t0 = time.perf_counter()
        image = self.engine.decode(data, "frame")
        if self.tracker is not None:
            faces = self.tracker.update(image)
        else:
            faces = self.engine.detector().detect(image)
        self.frames += 1
        out: dict[str, Any] = {"type": "frame", "frame": self.frames, "width": image.shape[1],
                               "height": image.shape[0], "faces": [f.to_dict() for f in faces], "error": None}
        if self.filters:
            out["image"] = data_url(render(image, faces, self.filters), self.engine.settings.jpeg_quality)
        out["ms"] = round((time.perf_counter() - t0) * 1000, 1)
        return out
