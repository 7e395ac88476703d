"""Ctrl-C and SIGTERM that are never lost.

Python runs a signal handler between two bytecodes of the main thread, wherever that is. When it
is inside a finaliser (``__del__``, a weakref callback, which database drivers and connection
pools use), the KeyboardInterrupt the handler raises is printed as "Exception ignored" and
dropped, and the sweep trains on as if nothing came. So the handler here first *remembers* the
signal, then raises; the long-running loops call :func:`checkpoint` (every training batch, every
trial, the end of a sweep), which raises again while a remembered signal has not been acted on.

SIGTERM stops a sweep the way Ctrl-C does (KeyboardInterrupt). A SIGINT that this process
inherited as ignored (``nohup``, a background job of a shell without job control) stays ignored.

:func:`handling` installs the handlers for a block (the command line for the whole command,
:meth:`bench.run.sweep.Sweep.run` for a sweep started from Python) and puts back what was there;
:func:`acted_on` marks the remembered signal as handled (the sweep recorded that it stopped);
:func:`deferred` holds signals back over a block that must not be cut in half (creating and
telling an Optuna trial, closing a trial's or the study's MLflow run) and raises at its end;
:func:`released` lets them through again inside it (the trial's own work).
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Optional


class _State:
    received: Optional[int] = None  # the signal not yet acted on
    depth: int = 0  # nesting of handling()
    deferring: int = 0  # nesting of deferred()


_state = _State()


def received() -> Optional[int]:
    """The signal (``signal.SIGINT`` or ``signal.SIGTERM``) that came and was not yet acted on."""
    return _state.received


def checkpoint() -> None:
    """Raise KeyboardInterrupt if a signal came and was not acted on (its first KeyboardInterrupt
    may have been swallowed by a finaliser). Cheap: call it in every loop that takes time."""
    if _state.received is not None and not _state.deferring:
        raise KeyboardInterrupt


def acted_on() -> None:
    """The remembered signal has been handled (the interrupt recorded): later checkpoints pass."""
    _state.received = None


def _on_signal(signum: int, frame: Any) -> None:
    _state.received = signum  # first, so that a KeyboardInterrupt lost below is raised again
    if not _state.deferring:
        raise KeyboardInterrupt


def _take_signals() -> dict[int, Any]:
    """Our handler for SIGTERM, and for SIGINT unless it is ignored; the handlers it replaced."""
    caught = [signal.SIGTERM] + ([signal.SIGINT] if signal.getsignal(signal.SIGINT) != signal.SIG_IGN else [])
    return {signum: signal.signal(signum, _on_signal) for signum in caught}


def install() -> None:
    """:func:`handling` for the rest of the process (a command-line program), with a signal that
    comes after the work held for the exit status (:func:`hold`)."""
    if threading.current_thread() is threading.main_thread() and not _state.depth:
        _take_signals()
    _state.depth += 1


def hold() -> None:
    """From now on signals are only remembered (:func:`received`): the work is over, and the
    program ends with the exit status they call for."""
    _state.deferring += 1


@contextmanager
def handling() -> Iterator[None]:
    """SIGINT (unless inherited as ignored) and SIGTERM raise KeyboardInterrupt inside the block,
    and are remembered for :func:`checkpoint`. Nested blocks share the outer one's handlers. Off
    the main thread nothing changes (Python delivers signals to the main thread only)."""
    if threading.current_thread() is not threading.main_thread() or _state.depth:
        _state.depth += 1
        try:
            yield
        finally:
            _state.depth -= 1
        return
    previous = _take_signals()
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        for signum, handler in previous.items():
            if handler is not None:  # None: a handler set outside Python, which cannot be put back
                signal.signal(signum, handler)
        _state.received = None


@contextmanager
def deferred() -> Iterator[None]:
    """Signals inside the block are remembered, not raised; at its end KeyboardInterrupt is raised
    if one came (so a store's update is never left half done)."""
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1
    checkpoint()


@contextmanager
def released() -> Iterator[None]:
    """Inside a :func:`deferred` block: signals raise again for this block; one held before stays
    remembered, for the block's first checkpoint or deferred block to raise where the block can
    record it. The holding resumes after it."""
    held, _state.deferring = _state.deferring, 0
    try:
        yield
    finally:
        _state.deferring = held
