"""The ``bench`` command's entry point. Ctrl-C and SIGTERM are handled from the first moment
(:mod:`bench.interrupts`): during the imports (torch, MLflow, Optuna), which take seconds and
which a KeyboardInterrupt can abort the whole process in (torch's), a signal is held and ends the
command once they are done; after the command, it is held for the exit status. Whenever it comes,
the command ends with status 130 and no traceback."""
from __future__ import annotations

import sys

from . import interrupts

INTERRUPTED = 130  # the shell's convention for a command stopped by SIGINT


def main() -> None:
    interrupts.install()
    try:
        with interrupts.deferred():
            from .cli import cli
    except KeyboardInterrupt:
        print("interrupted before the command started; nothing was run.", file=sys.stderr)
        sys.exit(INTERRUPTED)
    try:
        cli(prog_name="bench")
        code: object = 0
    except SystemExit as end:
        code = end.code
    interrupts.hold()
    sys.exit(INTERRUPTED if interrupts.received() is not None else code)
