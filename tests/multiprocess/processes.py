"""Process-group helpers shared by the multi-process tests (DDP, signals, torchrun):
every run is started in its own session, and killed whole at the end."""

from __future__ import annotations

import os
import signal
import subprocess
import time


def kill_group(proc: subprocess.Popen) -> None:
    """Kill ``proc``'s whole process group, reap it, and wait until no member is left.

    Raises ``AssertionError`` when a member outlives 10 s (a leaked child process).
    """
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    proc.wait()  # reap it: a zombie still counts as a member of its group
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"processes of group {proc.pid} outlived the test")
