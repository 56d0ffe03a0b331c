"""Options shared by several sub-commands."""

from __future__ import annotations


def filter_option(spec: str | None) -> list[str]:
    """``--filter "a,b"`` -> the checked filter names (an unknown one is a one-line error); none -> []."""
    names = [f.strip() for f in spec.split(",") if f.strip()] if spec else []
    if names:
        from ..filters import check_filter_names

        check_filter_names(names)
    return names


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
    """``--points`` as 15 or 68; anything else is a one-line FkpError."""
    from ..errors import FkpError

    if isinstance(value, bool) or value not in (15, 68):
        raise FkpError(f"--points must be 15 or 68, not {value}")
    return int(value)  # type: ignore[call-overload]
