"""facekeypoints: 15 facial keypoints on photos, videos and webcams.

    import facekeypoints as fk
    det = fk.KeypointDetector()
    faces = det.detect("photo.jpg")          # list[fk.Face], largest first
    cv2.imwrite("out.jpg", fk.draw(cv2.imread("photo.jpg"), faces))

The inference path runs an ONNX model with onnxruntime and never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .schema import FLIP_PAIRS, KAGGLE_COLUMNS, KEYPOINT_NAMES

__version__ = "0.1.0"

_LAZY = {
    "KeypointDetector": "pipeline",
    "Face": "pipeline",
    "draw": "drawing",
    "HaarDetector": "detection",
    "Detection": "detection",
    "OnnxKeypointModel": "runtime",
    "read_image": "imageio",
    "FkpError": "errors",
    "apply_filter": "filters",
    "FILTERS": "filters",
    "VideoTracker": "video.tracker",
    "align": "alignment",
}

__all__ = ["FLIP_PAIRS", "KAGGLE_COLUMNS", "KEYPOINT_NAMES", "__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from .alignment import align  # noqa: F401
    from .detection import Detection, HaarDetector  # noqa: F401
    from .drawing import draw  # noqa: F401
    from .errors import FkpError  # noqa: F401
    from .imageio import read_image  # noqa: F401
    from .pipeline import Face, KeypointDetector  # noqa: F401
    from .runtime import OnnxKeypointModel  # noqa: F401


def __getattr__(name: str) -> Any:
    """Import submodules on first use, so ``import facekeypoints`` stays light."""
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'facekeypoints' has no attribute {name!r}")
