"""The ``fkp`` command line: :mod:`.main` builds the parser, one module per sub-command.

Detection commands import only the runtime; the training commands (``train``,
``evaluate``, ``export``, ``visualize``, ``kaggle-submit``) import
:mod:`facekeypoints.training`, and torch with it, inside the command.
"""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
