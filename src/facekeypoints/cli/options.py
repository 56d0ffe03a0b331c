"""Options shared by several sub-commands."""

from __future__ import annotations


def filter_option(spec: str | None) -> list[str]:
    """``--filter "a,b"`` -> the checked filter names (an unknown one is a one-line error); none -> []."""
    names = [f.strip() for f in spec.split(",") if f.strip()] if spec else []
    if names:
        from ..filters import check_filter_names

        check_filter_names(names)
    return names
