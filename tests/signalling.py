"""Signals in tests as a terminal delivers them, whatever the test process inherited: a shell
without job control starts background jobs with SIGINT ignored (``nohup``, ``cmd &`` in a
script), and the product rightly keeps an inherited SIG_IGN, so a test that sends Ctrl-C must set
the disposition it means."""
from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Iterator


def default_dispositions() -> None:
    """For ``subprocess.Popen(preexec_fn=...)``: the child starts with SIGINT and SIGTERM default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def ignored_sigint() -> None:
    """For ``preexec_fn``: the child inherits SIGINT ignored, as under ``nohup``; SIGTERM default."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def python_default_handlers() -> Iterator[None]:
    """In this process: Ctrl-C raises KeyboardInterrupt and SIGTERM terminates, as in a fresh
    interpreter started from a terminal; what was there before is put back."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
