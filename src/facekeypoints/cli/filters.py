"""fkp filters: list the face filters that --filter accepts, one line each."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("filters", help="list the face filters for --filter", description=__doc__)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..filters import FILTERS

    width = max(len(n) for n in FILTERS)
    for name, flt in FILTERS.items():
        print(f"{name:<{width}}  {flt.description}")
    print("\ncombine with commas, e.g.: fkp detect PHOTO --filter sunglasses,moustache -o OUTDIR")
    return 0
