"""A process-wide "stop requested" flag: the one contract between signal handling
(the CLI, :mod:`lightning_ex2.cli`) and the step loops (:func:`lightning_ex2.sampling.run_chains`).

A signal handler calls :func:`request`; loops poll :func:`requested` between steps
(a Python read, no device sync) and end early, keeping the draws made so far.
Writers use :func:`requested` to mark an output set as partial.

Example:
    >>> from lightning_ex2 import interrupt
    >>> interrupt.clear(); interrupt.requested() is None
    True
    >>> interrupt.request("SIGTERM"); interrupt.requested()
    'SIGTERM'
    >>> interrupt.clear()
"""

from __future__ import annotations

_reason: str | None = None


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
