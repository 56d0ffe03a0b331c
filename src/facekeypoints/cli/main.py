"""``fkp`` / ``facekeypoints`` command line.

Each sub-command lives in ``facekeypoints/cli/<name>.py`` with a
``register(subparsers)`` function; heavy imports (torch, onnxruntime) happen
inside the handlers, so ``fkp detect`` never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from .. import __version__
from ..errors import FkpError

COMMANDS = ("detect", "demo", "video", "filters", "serve", "train", "train_detector", "evaluate", "visualize", "export", "kaggle_submit")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fkp", description="Facial keypoints on photos, videos and webcams.")
    parser.add_argument("--version", action="version", version=f"facekeypoints {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        mod_name = f"facekeypoints.cli.{name}"
        if importlib.util.find_spec(mod_name) is None:
            continue
        importlib.import_module(mod_name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FkpError as e:
        print(f"fkp: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fkp: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as e:
        if e.name in ("torch", "onnx"):
            print(f"fkp {args.command}: needs {e.name}; install the training extra: pip install 'facekeypoints[train]'",
                  file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
