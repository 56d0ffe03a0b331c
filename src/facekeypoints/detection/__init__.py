"""Face detectors behind one protocol: ``gray or BGR image -> list[Detection]``.

Pick one by name (``KeypointDetector(detector="haar")``, ``fkp detect --detector haar``)
or pass any callable with that signature (face-alignment style pluggable detectors).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from ..errors import FkpError
from .base import Detection, FaceDetector, box_iou, nms
from .haar import HaarDetector, haar_confidence, load_cascade
from .learned import LearnedDetector, box_from_points

DETECTORS: dict[str, Callable[..., FaceDetector]] = {
    "learned": LearnedDetector,
    "learned-fast": LearnedDetector.fast,
    "haar": HaarDetector,
    "haar-fast": HaarDetector.fast,
}
#: The detector photos, video re-detection, the web page and the CLI use unless told otherwise:
#: the learned CNN (docs/detector.md: ahead of Haar on faces found, false alarms and speed).
DEFAULT_DETECTOR = "learned"


def make_detector(name: str | FaceDetector | None = None, threads: int | None = None) -> FaceDetector:
    """A detector by name (``None`` -> the default), or ``name`` itself when it is already a callable.
    ``threads`` goes to detectors that run onnxruntime (the learned one)."""
    if name is None:
        name = DEFAULT_DETECTOR
    if callable(name):
        return name
    if name not in DETECTORS:
        raise FkpError(f"unknown detector {name!r}: choose one of {', '.join(DETECTORS)}")
    factory = DETECTORS[name]
    if threads is not None and "threads" in inspect.signature(factory).parameters:
        return factory(threads=threads)
    return factory()


__all__ = ["DETECTORS", "DEFAULT_DETECTOR", "Detection", "FaceDetector", "HaarDetector", "LearnedDetector", "box_from_points",
           "box_iou", "haar_confidence", "load_cascade", "make_detector", "nms"]
