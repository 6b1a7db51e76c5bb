"""One live process per run folder and per output set: an ``flock``ed lock file.

:class:`RunLock` takes ``<folder>/.lightning-ex2.lock`` with ``fcntl.flock``
(exclusive, non-blocking) and records in it who holds it: host, PID, start time
(UTC) and command. The kernel releases an ``flock`` when its holder dies (SIGKILL,
OOM killer, a node's container gone), so whether a holder is alive is decided by
trying the lock, never by a PID: a run in another PID namespace (another container
on the same volume) whose PID means nothing here still holds its lock, and a dead
run's lock is simply taken over.

* A live holder: :class:`LockHeld` (a :class:`~lightning_ex2.errors.UserError`, one
  line naming the folder and the holder's host, PID and start time; exit status 2)
  before any work.
* A dead holder: its lock file is taken over (:attr:`RunLock.previous` is what it
  recorded).
* On release the file is removed while still locked; a process that opened the old
  file meanwhile finds its lock on a file no longer at the path and tries again
  (the inode check in :meth:`RunLock.acquire`), so two processes never both hold
  "the" lock.

Only the standard library is imported here (a lock holder can load this file alone).

Example:
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> with RunLock(d) as lock:
    ...     sorted(lock.record())
    ['command', 'host', 'pid', 'since']
    >>> import os; os.listdir(d)
    []
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

#: the lock file's name, in the folder it guards
LOCK_NAME = ".lightning-ex2.lock"


def _error_class() -> type[Exception]:
    try:
        from lightning_ex2.errors import UserError
    except ImportError:  # this file loaded alone (a test's lock holder)
        return RuntimeError
    return UserError


def describe(record: dict[str, Any] | None) -> str:
    """``host H, pid P, since T`` of a lock record (``an unknown process`` without one)."""
    if not record:
        return "an unknown process (its lock file records no holder yet)"
    return (
        f"host {record.get('host', '?')}, pid {record.get('pid', '?')}, "
        f"since {record.get('since', '?')}"
    )


def read_record(path: str | os.PathLike) -> dict[str, Any] | None:
    """The holder a lock file records (``None``: none, or unreadable)."""
    try:
        data = json.loads(Path(path).read_text() or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class RunLock:
    """The lock of one folder (see the module docstring).

    Args:
        folder: the run folder (``fit``'s log folder) or output folder (``sample``);
            created if missing.
        what: what the folder is, for the refusal (e.g. ``"the log folder"``).
        remedy: what to do about a live holder, named in the refusal.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        what: str = "the folder",
        remedy: str = "wait for it to end, or choose another folder",
    ) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.what = what
        self.remedy = remedy
        self._fd: int | None = None
        #: what a dead holder had recorded when its lock was taken over (else ``None``)
        self.previous: dict[str, Any] | None = None
        #: the folders :meth:`acquire` created (:attr:`folder` and missing parents)
        self.created: list[Path] = []

    @property
    def held(self) -> bool:
        return self._fd is not None

    def record(self) -> dict[str, Any]:
        """What this process writes into the lock file."""
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
        }

    def acquire(self) -> RunLock:
        """Take the lock, or raise :class:`LockHeld` naming its live holder."""
        if self._fd is not None:
            return self
        if not self.folder.is_dir():
            missing = [self.folder, *(p for p in self.folder.parents if not p.exists())]
            self.folder.mkdir(parents=True, exist_ok=True)
            self.created = missing
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                holder = read_record(self.path)
                raise LockHeld(
                    f"{self.what} {self.folder} is in use by a live run ({describe(holder)}); "
                    f"{self.remedy}"
                ) from None
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # its holder removed it on release: try the new file
        self.previous = read_record(self.path)
        text = json.dumps(self.record(), sort_keys=True).encode() + b"\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, text, 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file (while locked) and release the lock."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                os.unlink(self.path)
        except OSError:
            pass
        finally:
            os.close(fd)  # releases the flock

    def remove_created(self) -> None:
        """Remove the folders :meth:`acquire` created that are still empty (a run that
        stopped before writing anything leaves no trace)."""
        for folder in self.created:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break
        self.created = []

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


class LockHeld(_error_class()):  # type: ignore[misc]
    """A live process holds the lock (a :class:`~lightning_ex2.errors.UserError`)."""


__all__ = ["LOCK_NAME", "LockHeld", "RunLock", "describe", "read_record"]
