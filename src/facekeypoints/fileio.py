"""Output files: destination checks before any work starts, and atomic writes.

Every write goes to a temporary file unique to that write (``tempfile.mkstemp``)
in the target's folder, then ``os.replace`` puts it under the real name: a crash,
a Ctrl-C or a second process writing the same output never leaves a half-written
file under the real name, and a failed write never leaves its temporary file behind.
``-`` as a text destination means standard output where a command allows it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .errors import OutputError

#: The destination name that means standard output (``--json -``).
STDOUT = "-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _nearest_existing(p: Path) -> Path:
    q = p
    while not q.exists() and q != q.parent:
        q = q.parent
    return q


def _probe(folder: Path, target: Path) -> None:
    """Create and delete a file in ``folder``: the only reliable test (root ignores modes, /sys refuses files)."""
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".fkp-probe-")
    except OSError as e:
        where = "" if folder == target else f" (in {folder})"
        raise OutputError(target, f"cannot write here{where}: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(name)


def check_output_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Raise a one-line :class:`OutputError` unless ``path`` is, or can be created as, a writable folder.
    Creates nothing: missing folders are made when the first file is written."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputError(p, f"{what} is an existing file, not a folder")
    base = _nearest_existing(p.absolute())
    if not base.is_dir():
        raise OutputError(p, f"cannot create the {what}: {base} is a file, not a folder")
    _probe(base, p)
    return p


def check_output_file(path: str | os.PathLike, what: str = "output file", suffixes: tuple[str, ...] | None = None,
                      image: bool = False, stdout: bool = False) -> Path | None:
    """Raise a one-line :class:`OutputError` unless a file can be written at ``path``.

    ``suffixes``: the allowed extensions; ``image``: the extension must have an OpenCV encoder;
    ``stdout``: ``-`` is allowed and returns None.
    """
    if stdout and str(path) == STDOUT:
        return None
    p = Path(path)
    if str(path) == "" or p.name in ("", ".", ".."):
        raise OutputError(path, f"{what} needs a file name")
    if p.is_dir():
        raise OutputError(p, f"{what} is an existing folder; give a file name")
    if suffixes is not None and p.suffix.lower() not in suffixes:
        raise OutputError(p, f"{what} must end in {' or '.join(suffixes)}")
    if image:
        check_image_extension(p)
    base = _nearest_existing(p.absolute().parent)
    if not base.is_dir():
        raise OutputError(p, f"cannot create its folder: {base} is a file, not a folder")
    _probe(base, p)
    return p


def check_image_extension(path: str | os.PathLike) -> None:
    """An image name OpenCV can encode (``.jpg``, ``.png``, ...), else a one-line :class:`OutputError`."""
    import cv2

    p = Path(path)
    ext = p.suffix.lower()
    if not ext:
        raise OutputError(p, "image file name needs an extension such as .jpg or .png")
    try:
        ok = cv2.haveImageWriter(f"x{ext}")
    except cv2.error:
        ok = False
    if not ok:
        raise OutputError(p, f"unknown image type {ext!r}; use .jpg, .png, .bmp, .tif or .webp")


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """``write(file)`` into a unique temporary file beside ``path``, then rename it into place."""
    p = Path(path)
    if p.is_dir():
        raise OutputError(p, "is an existing folder; give a file name")
    tmp = None
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, p)
        tmp = None
    except OSError as e:
        raise OutputError(p, f"cannot write ({e.strerror or e})") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    write_atomic(path, lambda f: f.write(data))


def write_npz_atomic(path: str | os.PathLike, **arrays) -> None:
    """``np.savez`` (uncompressed) by :func:`write_atomic`: for caches that other processes may read or write."""
    import numpy as np

    write_atomic(path, lambda f: np.savez(f, **arrays))


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomic write, or standard output for ``-``."""
    if str(path) == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_text_atomic(path, text)


def write_json_atomic(path: str | os.PathLike, obj: object) -> None:
    """Indented JSON (``-``: standard output); numpy scalars are written as floats."""
    write_text(path, json.dumps(obj, indent=2, default=float) + "\n")
