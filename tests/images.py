"""Image bytes made at test time for the bad-input and orientation tests (nothing committed)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int, idat: bytes = b"") -> bytes:
    """A PNG whose header claims width x height (8-bit grey) but whose data is ``idat`` (default: 64 zero bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat or zlib.compress(b"\0" * 64))
            + png_chunk(b"IEND", b""))


def exif_jpeg(bgr: np.ndarray, orientation: int, quality: int = 95) -> bytes:
    """A JPEG of the BGR pixels as stored, with EXIF Orientation set to ``orientation``."""
    import PIL.Image

    im = PIL.Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]))
    exif = im.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality, exif=exif)
    return buf.getvalue()
