"""A process-wide "stop requested" flag: the one contract between signal handling
(the CLI, :mod:`lightning_ex2.lightning.cli`) and the step loops (:func:`lightning_ex2.sampling.run_chains`).

A signal handler calls :func:`request`; loops poll :func:`requested` between steps
(a Python read, no device sync) and end early, keeping the draws made so far.
Writers use :func:`requested` to mark an output set as partial.
:func:`install` sets such handlers for SIGTERM and SIGINT.

Example:
    >>> from lightning_ex2 import interrupt
    >>> interrupt.clear(); interrupt.requested() is None
    True
    >>> interrupt.request("SIGTERM"); interrupt.requested()
    'SIGTERM'
    >>> interrupt.clear()
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

_reason: str | None = None

#: signals that ask a run to stop cleanly (``docker stop``, schedulers, Ctrl-C)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def request(reason: str) -> None:
    """Ask every running loop to stop at its next step boundary (first reason kept)."""
    global _reason
    if _reason is None:
        _reason = reason


def requested() -> str | None:
    """The reason a stop was requested (e.g. ``"SIGTERM"``), or ``None``."""
    return _reason


def clear() -> None:
    """Forget a request (start of a new run, tests)."""
    global _reason
    _reason = None


_forward: Callable[[int], None] | None = None


def _handler(signum: int, frame: Any) -> None:
    name = signal.Signals(signum).name
    if _reason is not None:
        # a second signal (SIGTERM then Ctrl-C, Ctrl-C twice, or one passed back by
        # another rank): the stop under way stays the one stop, and keeps its outputs
        os.write(
            2,
            f"lightning-ex2: {name} received while stopping on {_reason}; finishing the "
            "current step and saving (SIGKILL stops at once, saving nothing)\n".encode(),
        )
        return
    request(name)
    if _forward is not None:
        _forward(signum)


def install(forward: Callable[[int], None] | None = None) -> Callable[[], None]:
    """Make SIGTERM and SIGINT call :func:`request` (main thread only); returns a
    function that restores the previous handlers.

    Args:
        forward: also called with the signal number on the first signal (e.g. to pass
            it on to the processes a DDP launcher started, or to their launcher).

    A second signal changes nothing: the stop under way finishes and saves (one line
    on stderr says so); only SIGKILL stops at once.
    """
    global _forward
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    previous_forward = _forward
    _forward = forward
    for s in STOP_SIGNALS:
        signal.signal(s, _handler)

    def restore() -> None:
        global _forward
        _forward = previous_forward
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)

    return restore
