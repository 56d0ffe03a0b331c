"""Atomic text and JSON writes: a temporary name beside the target, then ``os.replace``,
so a crash or Ctrl-C never leaves a half-written file under the real name."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, p)


def write_json_atomic(path: str | os.PathLike, obj: object) -> None:
    """Indented JSON; numpy scalars are written as floats."""
    write_text_atomic(path, json.dumps(obj, indent=2, default=float) + "\n")
