"""``fkp`` / ``facekeypoints`` command line.

Exit status: 0 done; 1 an input could not be used (a batch still writes what
succeeded); 2 a usage problem found before any work starts: a bad option value
(argparse) or an output destination that cannot be written; 130 interrupted.

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
from ..errors import FkpError, UsageError

COMMANDS = ("detect", "align", "demo", "video", "filters", "serve", "train", "train_detector", "evaluate", "visualize", "export", "kaggle_submit")


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to every option's help line, except where the help already
    says its default or there is none to show (unset, or an off switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text.lower() or default is None or default is False or default == []
                or default is argparse.SUPPRESS or not (action.option_strings or action.nargs in ("?", "*"))):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


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
    for p in sub.choices.values():  # every command's --help shows its defaults
        p.formatter_class = DefaultsHelpFormatter
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UsageError as e:  # a bad option value or output destination, found before any work: as argparse
        print(f"fkp {args.command}: {e}", file=sys.stderr)
        return 2
    except FkpError as e:
        print(f"fkp: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fkp: interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as e:
        if e.name in ("torch", "onnx"):
            print(f"fkp {args.command}: needs {e.name}; install the training extra: pip install \".[train]\" in a source checkout, "
                  "or pip install \"facekeypoints[train]\"",
                  file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
