"""``python -m facekeypoints.cli`` (torchrun uses this form)."""

import sys

from .main import main

sys.exit(main())
