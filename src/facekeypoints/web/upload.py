"""Upload checks that run before any pixel is decoded: size, content type, header dimensions.

Everything stays in memory: the multipart body is parsed from a bounded buffer
(Starlette's own form parser spools large files to a temporary file on disk).
Each refusal is an :class:`UploadError` carrying the HTTP status to answer with.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import FkpError

# The EXIF rule lives in imageio (every path-reading entry point applies it); decode_upload uses these.
from ..imageio import apply_orientation as apply_orientation
from ..imageio import header_info as header_info

#: Room for multipart boundaries and part headers on top of the file size limit.
MULTIPART_SLACK = 64 * 1024
#: Part types accepted for the image besides image/*: what browsers and curl send for unknown files.
NEUTRAL_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})


class UploadError(FkpError):
    """A refused upload: ``status`` is the HTTP status (400, 413, 415), ``message`` one line."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


@dataclass
class Part:
    """One multipart part held in memory."""

    name: str
    filename: str | None
    content_type: str
    data: bytes


def media_type(header: str | None) -> str:
    """``"image/JPEG; q=1"`` -> ``"image/jpeg"``."""
    return (header or "").split(";", 1)[0].strip().lower()


def check_image_type(content_type: str, what: str = "upload") -> None:
    """Refuse a declared type that is not an image (415); unknown/neutral types are sniffed later."""
    mt = media_type(content_type)
    if mt not in NEUTRAL_TYPES and not mt.startswith("image/"):
        raise UploadError(415, f"{what} has content type {mt!r}; send an image (image/jpeg, image/png, ...)")


def parse_multipart(body: bytes, content_type: str, max_parts: int = 16) -> dict[str, Part]:
    """Parse a multipart/form-data body held in memory into its parts (first part of each name wins)."""
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise UploadError(400, "multipart body without a boundary in its Content-Type")
    parts: list[dict] = []
    header: dict = {"field": b"", "value": b""}

    def on_part_begin() -> None:
        if len(parts) >= max_parts:
            raise UploadError(400, f"too many form fields (limit {max_parts})")
        parts.append({"headers": {}, "data": []})

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        parts[-1]["headers"][header["field"].decode("latin-1").lower()] = header["value"]
        header["field"], header["value"] = b"", b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1]["data"].append(data[start:end])

    parser = MultipartParser(boundary, {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                                        "on_header_value": on_header_value, "on_header_end": on_header_end,
                                        "on_part_data": on_part_data})
    try:
        parser.write(body)
        parser.finalize()
    except FormParserError as e:
        raise UploadError(400, f"malformed multipart body ({e})") from None
    out: dict[str, Part] = {}
    for p in parts:
        disposition, opts = parse_options_header(p["headers"].get("content-disposition", b""))
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        if disposition != b"form-data" or not name or name in out:
            continue
        filename = opts.get(b"filename")
        out[name] = Part(name, None if filename is None else filename.decode("utf-8", "replace"),
                         p["headers"].get("content-type", b"").decode("latin-1"), b"".join(p["data"]))
    return out


def safe_name(filename: str | None, default: str = "upload") -> str:
    """The base name of a client-supplied file name, for echoing in results (never used as a path)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = "".join(c for c in name if c.isprintable())[:200]
    return name or default


def looks_truncated(data: bytes) -> bool:
    """A JPEG whose last scan is not followed by an end-of-image marker was cut short.

    Some decoders fill the missing part with grey instead of failing; byte
    stuffing keeps FFD9 out of scan data, so the EOI must come after the last SOS.
    """
    if data[:3] != b"\xff\xd8\xff":
        return False
    return data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda")


def check_image_bytes(data: bytes, max_pixels: int) -> int:
    """Refuse empty (400), unrecognised (400), truncated (400) or oversized (413) images before decoding.
    Returns the EXIF orientation (1 = as stored)."""
    if not data:
        raise UploadError(400, "empty upload (0 bytes)")
    info = header_info(data)
    if info is None:
        raise UploadError(400, "not a readable image (unknown format or corrupt header)")
    w, h, orientation = info
    if w * h > max_pixels:
        raise UploadError(413, f"image too large ({w}x{h} = {w * h / 1e6:.1f} MP; limit {max_pixels / 1e6:g} MP)")
    if looks_truncated(data):
        raise UploadError(400, "truncated JPEG (no end-of-image marker)")
    return orientation
