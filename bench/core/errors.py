"""Errors a user can act on.

Every error raised for bad input derives from :class:`BenchError`. The CLI prints its message as
one paragraph and exits with status 2; anything else escaping is a bug in `bench`.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterable, Optional


class BenchError(Exception):
    """Bad input: the message says what is wrong, where, and how to fix it."""

    exit_code = 2


class ConfigError(BenchError):
    """A problem at a config path (``encoder.block.N``) of a file, optionally at a line.

    Args:
        path: dotted config path, or "" for the whole file.
        message: what is wrong, without the location.
        file: the file the value came from, if any.
        line: 1-based line of the value in ``file``, if known.
        hint: how to fix it.
    """

    def __init__(
        self,
        path: str,
        message: str,
        file: Optional[Path | str] = None,
        line: Optional[int] = None,
        hint: Optional[str] = None,
    ) -> None:
        self.path, self.message, self.file, self.line, self.hint = path, message, file, line, hint
        super().__init__(self._render())

    def __reduce__(self):  # raised in a worker process, it must reach the parent whole
        return (ConfigError, (self.path, self.message, self.file, self.line, self.hint))

    def located(self, file: Optional[Path | str], line: Optional[int]) -> "ConfigError":
        """The same error, with a location added where it had none."""
        return ConfigError(
            self.path, self.message, self.file or file, self.line or line, self.hint
        )

    def _render(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        what = f"{self.path}: {self.message}" if self.path else self.message
        return f"{where}{what}" + (f" {self.hint}" if self.hint else "")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A "did you mean ...?" phrase for the closest ``choices``, or "" when none is close."""
    close = difflib.get_close_matches(str(word), list(choices), n=3, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = [lowered[str(word).lower()]] if str(word).lower() in lowered else []
    return f"Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
