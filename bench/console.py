"""The ``bench`` command's entry point. Ctrl-C and SIGTERM are handled from the first moment
(:mod:`bench.interrupts`): during the imports (torch, MLflow, Optuna), which take seconds and
which a KeyboardInterrupt can abort the whole process in (torch's), a signal is held and ends the
command once they are done; after the command, it is held for the exit status. Whenever it comes,
the command ends with status 130 and no traceback."""
from __future__ import annotations

import atexit
import os
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
        _exit_interrupted()
    try:
        cli(prog_name="bench")
        code: object = 0
    except SystemExit as end:
        code = end.code
    interrupts.hold()
    if code == INTERRUPTED or interrupts.received() is not None:
        _exit_interrupted()
    sys.exit(code)


def _exit_interrupted() -> None:
    """Exit with status 130 itself. CPython would instead kill the process with SIGINT at the
    end of its shutdown whenever a KeyboardInterrupt once passed through code that a C extension
    ran with ``PyRun_String``, even one caught since: a SIGTERM would then read as a SIGINT death.
    The exit handlers run first, as a normal exit runs them."""
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()
    os._exit(INTERRUPTED)
