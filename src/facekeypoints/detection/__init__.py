"""Face detectors behind one protocol: ``gray or BGR image -> list[Detection]``.

Pick one by name (``KeypointDetector(detector="haar")``, ``fkp detect --detector haar``)
or pass any callable with that signature (face-alignment style pluggable detectors).
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import FkpError
from .base import Detection, FaceDetector, box_iou, nms
from .haar import HaarDetector, haar_confidence, load_cascade

DETECTORS: dict[str, Callable[..., FaceDetector]] = {
    "haar": HaarDetector,
    "haar-fast": HaarDetector.fast,
}
DEFAULT_DETECTOR = "haar"


def make_detector(name: str | FaceDetector | None = None) -> FaceDetector:
    """A detector by name (``None`` -> the default), or ``name`` itself when it is already a callable."""
    if name is None:
        name = DEFAULT_DETECTOR
    if callable(name):
        return name
    if name not in DETECTORS:
        raise FkpError(f"unknown detector {name!r}: choose one of {', '.join(DETECTORS)}")
    return DETECTORS[name]()


__all__ = ["DETECTORS", "DEFAULT_DETECTOR", "Detection", "FaceDetector", "HaarDetector", "box_iou", "haar_confidence", "load_cascade",
           "make_detector", "nms"]
