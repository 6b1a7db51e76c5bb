"""Errors the ``lightning-ex2`` command shows as one line, without a traceback
(``--debug`` or ``LIGHTNING_EX2_DEBUG=1`` shows it too; see :func:`lightning_ex2.lightning.cli.main`).

* :class:`UserError` (exit status 2): something in the command line, the config, a
  file or the machine's size the user has to change; the message names it.
* :class:`Interrupted`: the run stopped on a signal (SIGTERM, SIGINT) after
  saving what it could; its exit status is ``128 + signal number`` (143, 130).
* :class:`RankLost` (exit status 1): another process of a multi-process run died
  (SIGKILL, the OOM killer, a node gone); the message names the state to resume from.
"""

from __future__ import annotations

import signal


class UserError(Exception):
    """A mistake the user fixes: the message names the field, file or option to change."""

    exit_code = 2


class Interrupted(Exception):
    """The run stopped early on ``reason`` (a signal name such as ``"SIGTERM"``).

    Attributes:
        reason: the signal's name.
        exit_code: ``128 + signal number`` (the shell's convention), else 1.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        number = getattr(signal, reason, None)
        self.exit_code = 128 + int(number) if number is not None else 1


class RankLost(Exception):
    """Another process of a multi-process run ended unexpectedly (its collective
    failed here); the message names the newest checkpoint to resume from."""

    exit_code = 1
