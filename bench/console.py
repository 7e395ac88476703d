"""The ``bench`` command's entry point. Ctrl-C and SIGTERM are handled from the first moment
(:mod:`bench.core.interrupts`): during the imports (torch, MLflow, Optuna), which take seconds and
which a KeyboardInterrupt can abort the whole process in (torch's), a signal is held and ends the
command once they are done; after the command, it is held for the exit status. Whenever it comes,
the command ends with status 130 and no traceback."""
from __future__ import annotations

import atexit
import os
import signal
import sys

from .core import interrupts

INTERRUPTED = 130  # the shell's convention for a command stopped by SIGINT


def main() -> None:
    interrupts.install()
    try:
        with interrupts.deferred():
            from .cli import cli
    except KeyboardInterrupt:
        print("interrupted before the command started; nothing was run.", file=sys.stderr)
        _exit(INTERRUPTED)
    try:
        cli(prog_name="bench")
        code: object = 0
    except SystemExit as end:
        code = end.code
    _exit(code)


def _exit(code: object) -> None:
    """End the process with ``code`` (as ``sys.exit`` reads it), or 130 if a signal came, after
    the exit handlers, with the handlers of Ctrl-C and SIGTERM in place to the last instruction.

    Python's own shutdown would restore the default dispositions first, so a signal in its last
    milliseconds killed the process (-2, -15); and it kills the process with SIGINT whenever a
    KeyboardInterrupt once passed through code a C extension ran with ``PyRun_String``, even one
    caught since, so a SIGTERM read as a SIGINT death."""
    interrupts.hold()
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    stopping = {signal.SIGTERM} | ({signal.SIGINT} if signal.getsignal(signal.SIGINT) != signal.SIG_IGN else set())
    signal.pthread_sigmask(signal.SIG_BLOCK, stopping)  # from here one waits in the kernel, to be read below
    came = interrupts.received() is not None or bool(signal.sigpending() & stopping)
    os._exit(INTERRUPTED if code == INTERRUPTED or came else code)
