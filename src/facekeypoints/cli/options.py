"""Options shared by several sub-commands: value types that argparse checks, filters, destinations."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..errors import FkpError, UsageError


def int_at_least(low: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number >= ``low`` (``--refine -2`` is refused with exit status 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is below the smallest allowed value, {low}")
        return value

    parse.__name__ = f"int >= {low}"
    return parse


def positive_float(text: str) -> float:
    """An argparse ``type``: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


def filter_option(spec: str | None) -> list[str]:
    """``--filter "a,b"`` -> the checked filter names (an unknown one is a one-line error); none -> []."""
    names = [f.strip() for f in spec.split(",") if f.strip()] if spec else []
    if names:
        from ..filters import check_filter_names

        try:
            check_filter_names(names)
        except FkpError as e:
            raise UsageError(f"--filter: {e}") from None
    return names


def one_stdout(**outputs: str | None) -> None:
    """At most one output may be ``-`` (standard output), or their contents would interleave."""
    dashes = [f"--{k}" for k, v in outputs.items() if v is not None and str(v) == "-"]
    if len(dashes) > 1:
        raise UsageError(f"only one output can go to standard output ('-'), not {' and '.join(dashes)}")


# -- more argparse ``type=`` checks: a bad value is refused by argparse itself, in one line
#    (``fkp train: error: argument --epochs: -1 is below the smallest allowed value, 0``).

#: A whole number >= 1 (batch sizes, thread or worker counts).
positive_int = int_at_least(1)
#: A whole number >= 0 (epochs, refinement passes; 0 often means none).
non_negative_int = int_at_least(0)


def _bounded_float(text: str, ok: Callable[[float], bool], why: str) -> float:
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v) or not ok(v):
        raise argparse.ArgumentTypeError(f"{text} {why}")
    return v


def fraction(text: str) -> float:
    """A number strictly between 0 and 1 (a share of the data)."""
    return _bounded_float(text, lambda v: 0 < v < 1, "is not between 0 and 1 (both excluded)")


def decay(text: str) -> float:
    """A number in [0, 1) (a moving-average decay; 0 = off)."""
    return _bounded_float(text, lambda v: 0 <= v < 1, "is not in [0, 1)")


def add_points_option(p) -> None:
    """``--points 15|68``: the 15 named keypoints (default) or the 68 iBUG landmarks as well.

    Values are checked by :func:`points_option` when the command runs, so ``--points 20`` is
    refused in one line (``fkp: --points must be 15 or 68, not 20``) rather than with argparse's usage."""
    p.add_argument("--points", type=_points_arg, default=15, metavar="{15,68}",
                   help="15 named keypoints, or 68 iBUG landmarks (JSON \"landmarks\", CSV p0_x..p67_y, contours)"
                        " (default: %(default)s)")


def _points_arg(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value


def points_option(value: object) -> int:
    """``--points`` as 15 or 68; anything else is a one-line usage error (exit status 2)."""
    if isinstance(value, bool) or value not in (15, 68):
        raise UsageError(f"--points must be 15 or 68, not {value}")
    return int(value)  # type: ignore[call-overload]
