"""User-facing errors: one line naming the file and the problem, never a traceback."""

from __future__ import annotations


class FkpError(Exception):
    """An error the CLI prints as a single line (``fkp: <message>``) before exiting 1."""


class InputError(FkpError):
    """A bad input file: unreadable, malformed, or not what it claims to be."""

    def __init__(self, source: object, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


class UsageError(FkpError):
    """A bad option value or output destination, found before any work starts: the CLI exits 2 (as argparse does)."""


class OutputError(UsageError):
    """An output destination that cannot be written: a folder where a file is wanted, no permission, ..."""

    def __init__(self, target: object, problem: str):
        self.target = str(target)
        self.problem = problem
        super().__init__(f"{self.target}: {problem}")
