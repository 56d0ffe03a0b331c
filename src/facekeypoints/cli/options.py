"""Options shared by several sub-commands."""

from __future__ import annotations


def filter_option(spec: str | None) -> list[str]:
    """``--filter "a,b"`` -> the checked filter names (an unknown one is a one-line error); none -> []."""
    names = [f.strip() for f in spec.split(",") if f.strip()] if spec else []
    if names:
        from ..filters import check_filter_names

        check_filter_names(names)
    return names



# -- argparse ``type=`` checks: a bad value is refused by argparse itself, in one line
#    (``fkp train: error: argument --epochs: -1 is negative``), before any data is read.
#    (Imports stay local: this module is imported by every sub-command.)

def _checked(text: str, kind: type, ok, why: str) -> int | float:
    import argparse
    import math

    try:
        v = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'}") from None
    if not math.isfinite(v) or not ok(v):
        raise argparse.ArgumentTypeError(f"{text} {why}")
    return v


def positive_int(text: str) -> int:
    """A whole number >= 1 (batch sizes, thread or worker counts)."""
    return _checked(text, int, lambda v: v >= 1, "is not at least 1")


def non_negative_int(text: str) -> int:
    """A whole number >= 0 (epochs, refinement passes; 0 often means none)."""
    return _checked(text, int, lambda v: v >= 0, "is negative")


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates, sizes)."""
    return _checked(text, float, lambda v: v > 0, "is not above 0")


def fraction(text: str) -> float:
    """A number strictly between 0 and 1 (a share of the data)."""
    return _checked(text, float, lambda v: 0 < v < 1, "is not between 0 and 1 (both excluded)")


def decay(text: str) -> float:
    """A number in [0, 1) (a moving-average decay; 0 = off)."""
    return _checked(text, float, lambda v: 0 <= v < 1, "is not in [0, 1)")
