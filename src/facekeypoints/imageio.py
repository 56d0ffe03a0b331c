"""Robust image reading: any photo a user has becomes an 8-bit BGR array or a clear error."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError

#: Images above this many pixels are refused (a 12000x12000 photo is 144 MP).
MAX_PIXELS = 200_000_000
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".pgm", ".ppm"})


def _image_size(data: np.ndarray) -> tuple[int, int] | None:
    """Width and height from the header, without decoding pixels (guards decompression bombs)."""
    try:
        from io import BytesIO

        import PIL.Image  # optional; matplotlib already depends on Pillow

        PIL.Image.MAX_IMAGE_PIXELS = None
        with PIL.Image.open(BytesIO(data.tobytes())) as im:
            return im.size
    except Exception:
        return None


def to_bgr8(img: np.ndarray, source: object = "image") -> np.ndarray:
    """Normalise any decoded array (grey, BGRA, 16-bit, float) to HxWx3 uint8 BGR."""
    if img is None or not isinstance(img, np.ndarray) or img.size == 0:
        raise InputError(source, "empty image")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype in (np.float32, np.float64):
        scale = 255.0 if float(np.nanmax(img)) <= 1.0 else 1.0
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


def decode_image(data: bytes | np.ndarray, source: object = "image", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes to BGR uint8, refusing empty, corrupt or oversized images."""
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if buf.size == 0:
        raise InputError(source, "empty file (0 bytes)")
    size = _image_size(buf)
    if size is not None and size[0] * size[1] > max_pixels:
        raise InputError(source, f"image too large ({size[0]}x{size[1]} pixels, limit {max_pixels:,})")
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(source, "not a readable image (unknown format or corrupt data)")
    if size is None and img.shape[0] * img.shape[1] > max_pixels:
        raise InputError(source, f"image too large ({img.shape[1]}x{img.shape[0]} pixels)")
    return to_bgr8(img, source)


def read_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a photo from disk as HxWx3 BGR uint8 (grey, RGBA and 16-bit are converted)."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file")
    if p.is_dir():
        raise InputError(p, "is a directory, not an image")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputError(p, f"cannot read ({e.strerror or e})") from None
    return decode_image(data, p, max_pixels)


def as_image(image: str | os.PathLike | np.ndarray) -> np.ndarray:
    """Accept a path or an array; return BGR uint8."""
    if isinstance(image, np.ndarray):
        return to_bgr8(image)
    return read_image(image)


def to_gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def write_image_atomic(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an image via a temporary file and rename, so no half-written file is left."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    ext = p.suffix.lower() or ".png"
    ok, buf = cv2.imencode(ext, image)
    if not ok:
        raise InputError(p, f"cannot encode image as {ext}")
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_bytes(buf.tobytes())
    os.replace(tmp, p)
