"""Robust image reading: any photo a user has becomes an 8-bit BGR array or a clear error.

Photos read from a path are turned upright the way their EXIF orientation says (phone
portraits are often stored sideways with Orientation=6), so sizes, coordinates and
outputs are in displayed pixels, as every image viewer shows them. Arrays passed in are
taken as they are.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError, OutputError

#: Images above this many pixels are refused (a 12000x12000 photo is 144 MP).
MAX_PIXELS = 200_000_000
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".pgm", ".ppm"})


def header_info(data: np.ndarray | bytes) -> tuple[int, int, int] | None:
    """(width, height, EXIF orientation 1-8) from the header, without decoding pixels (guards
    decompression bombs); None when Pillow does not recognise it."""
    try:
        from io import BytesIO

        import PIL.Image  # optional; matplotlib already depends on Pillow

        PIL.Image.MAX_IMAGE_PIXELS = None
        raw = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
        with PIL.Image.open(BytesIO(raw)) as im:
            w, h = im.size
            try:
                orientation = int(im.getexif().get(0x0112, 1))
            except Exception:  # noqa: BLE001 - a broken EXIF block must not refuse a good image
                orientation = 1
            return w, h, orientation if 1 <= orientation <= 8 else 1
    except Exception:  # noqa: BLE001 - Pillow raises many types for unknown or broken headers
        return None


def exif_orientation(data: bytes | np.ndarray) -> int:
    """The EXIF orientation (1-8; 1 = as stored) of encoded image bytes; 1 when absent or unreadable."""
    info = header_info(data)
    return 1 if info is None else info[2]


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn a decoded array the way its EXIF orientation says, so it matches what viewers display.

    OpenCV's unchanged-mode decoding ignores the tag; Pillow's ``exif_transpose`` and browsers apply it.
    """
    ops = {2: lambda m: cv2.flip(m, 1), 3: lambda m: cv2.rotate(m, cv2.ROTATE_180), 4: lambda m: cv2.flip(m, 0),
           5: cv2.transpose, 6: lambda m: cv2.rotate(m, cv2.ROTATE_90_CLOCKWISE),
           7: lambda m: cv2.rotate(cv2.transpose(m), cv2.ROTATE_180),
           8: lambda m: cv2.rotate(m, cv2.ROTATE_90_COUNTERCLOCKWISE)}
    op = ops.get(orientation)
    return image if op is None else np.ascontiguousarray(op(image))


def to_bgr8(img: np.ndarray, source: object = "image") -> np.ndarray:
    """Normalise any decoded array (grey, BGRA, 16-bit, float) to HxWx3 uint8 BGR."""
    if img is None or not isinstance(img, np.ndarray) or img.size == 0:
        raise InputError(source, "empty image")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype in (np.float32, np.float64):
        finite = img[np.isfinite(img)]  # an all-NaN image must not warn (np.nanmax does)
        scale = 255.0 if (float(finite.max()) if finite.size else 0.0) <= 1.0 else 1.0
        img = np.clip(np.nan_to_num(img) * scale, 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.ndim == 3 and img.shape[2] == 1:
        return cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2BGR)
    if img.ndim == 3 and img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if img.ndim == 3 and img.shape[2] == 3:
        return np.ascontiguousarray(img)
    raise InputError(source, f"unsupported image shape {img.shape}")


_quiet = {"depth": 0, "level": None}
_quiet_lock = threading.Lock()


def _silence_opencv() -> None:
    """Silence OpenCV's log while decoding; nested and thread-safe (the first in saves the level,
    the last out restores it), as the web app decodes on several threads."""
    with _quiet_lock:
        if _quiet["depth"] == 0:
            try:
                _quiet["level"] = cv2.utils.logging.getLogLevel()
                cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
            except AttributeError:  # very old builds
                _quiet["level"] = None
        _quiet["depth"] += 1


def _restore_opencv() -> None:
    with _quiet_lock:
        _quiet["depth"] -= 1
        if _quiet["depth"] == 0 and _quiet["level"] is not None:
            cv2.utils.logging.setLogLevel(_quiet["level"])


def decode_image(data: bytes | np.ndarray, source: object = "image", max_pixels: int = MAX_PIXELS,
                 orient: bool = False) -> np.ndarray:
    """Decode encoded image bytes to BGR uint8, refusing empty, corrupt or oversized images.
    ``orient``: turn it upright by its EXIF orientation (:func:`read_image` does)."""
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if buf.size == 0:
        raise InputError(source, "empty file (0 bytes)")
    info = header_info(buf)
    size = None if info is None else info[:2]
    if size is not None and size[0] * size[1] > max_pixels:
        raise InputError(source, f"image too large ({size[0]}x{size[1]} pixels, limit {max_pixels:,})")
    _silence_opencv()  # its own "can't read header" log would bury the one-line error
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        img = None
    finally:
        _restore_opencv()
    if img is None:
        raise InputError(source, "not a readable image (unknown format or corrupt data)")
    if size is None and img.shape[0] * img.shape[1] > max_pixels:
        raise InputError(source, f"image too large ({img.shape[1]}x{img.shape[0]} pixels)")
    img = to_bgr8(img, source)
    return apply_orientation(img, info[2]) if orient and info is not None else img


def read_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a photo from disk as HxWx3 BGR uint8 (grey, RGBA and 16-bit are converted), upright
    by its EXIF orientation (displayed pixels)."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file")
    if p.is_dir():
        raise InputError(p, "is a directory, not an image")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputError(p, f"cannot read ({e.strerror or e})") from None
    return decode_image(data, p, max_pixels, orient=True)


def as_image(image: str | os.PathLike | np.ndarray) -> np.ndarray:
    """Accept a path (read upright, see :func:`read_image`) or an array (taken as it is); return BGR uint8."""
    if isinstance(image, np.ndarray):
        return to_bgr8(image)
    return read_image(image)


def to_gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def write_image_atomic(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an image via a unique temporary file and rename, so no half-written file is left.
    An extension OpenCV cannot encode is a one-line :class:`~facekeypoints.errors.OutputError`."""
    from .fileio import check_image_extension, write_bytes_atomic

    p = Path(path)
    check_image_extension(p)
    try:
        ok, buf = cv2.imencode(p.suffix.lower(), image)
    except cv2.error:
        ok = False
    if not ok:
        raise OutputError(p, f"cannot encode image as {p.suffix.lower()}")
    write_bytes_atomic(p, buf.tobytes())
