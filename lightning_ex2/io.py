"""Output files and folders that a reader never sees half-written.

* Single files: written to a temporary file in the same folder, then renamed
  (:func:`save_npz`, :func:`save_text`, :func:`save_json`).
* A set of files (``sample``'s outputs): built in a hidden staging folder next to
  the destination, then renamed into place as a whole (:class:`OutputSet`); a
  reader sees the previous set, nothing, or the new set, never a mix.

Files and folders get the permissions the process's umask allows (``0666``/``0777``
masked), as ``open()``/``mkdir`` would give, not the ``0600``/``0700`` of ``tempfile``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from lightning_ex2.errors import UserError


def _read_umask() -> int:
    try:  # Linux: read without changing it (os.umask would, racing other threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """``0o666`` masked by the current umask (what ``open(path, "w")`` gives)."""
    return 0o666 & ~_read_umask()


def dir_mode() -> int:
    """``0o777`` masked by the current umask (what ``os.mkdir`` gives)."""
    return 0o777 & ~_read_umask()


def _atomic(path: str | os.PathLike, write) -> Path:  # type: ignore[no-untyped-def]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, file_mode())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """``np.savez`` to ``path`` atomically."""
    return _atomic(path, lambda f: np.savez(f, **arrays))


def save_text(path: str | os.PathLike, text: str) -> Path:
    """UTF-8 text to ``path`` atomically."""
    return _atomic(path, lambda f: f.write(text.encode()))


def save_json(path: str | os.PathLike, data: dict[str, Any]) -> Path:
    """Pretty JSON to ``path`` atomically (NaN written as ``null``)."""

    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not np.isfinite(v):
            return None
        return v

    text = json.dumps(clean(data), indent=2, sort_keys=True) + "\n"
    return _atomic(path, lambda f: f.write(text.encode()))


# --------------------------------------------------------------------- output sets
#: the file that marks a folder as a complete output set of ``lightning-ex2 sample``
#: (written last into the staging folder)
SET_MARKER = "summary.json"


def is_output_set(folder: Path) -> bool:
    """Whether ``folder`` holds a set written by :class:`OutputSet` (and nothing else)."""
    return (
        (folder / SET_MARKER).is_file()
        and (folder / "samples.npz").is_file()
        and not any(p.is_dir() for p in folder.iterdir())
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputSet:
    """A folder of outputs that appears whole or not at all.

    ``check`` before any work refuses a destination that cannot be written or
    holds something else; ``begin`` creates the hidden staging folder
    ``.<name>.tmp-<pid>-*`` next to it; the caller writes into :attr:`staging`;
    ``publish`` renames it into place (a previous set, allowed by ``overwrite``,
    is first moved aside, then deleted); ``abort`` deletes the staging folder.
    Staging folders of killed runs (their process gone) are deleted by the next
    ``begin`` for the same destination.

    Args:
        dest: the destination folder (``--output_dir``).
        overwrite: replace a previous output set at ``dest``.
        option: the option to name in errors.
    """

    def __init__(
        self, dest: str | os.PathLike, overwrite: bool = False, option: str = "--output_dir"
    ) -> None:
        self.dest = Path(dest)
        self.overwrite = overwrite
        self.option = option
        self.staging: Path | None = None

    def check(self) -> None:
        """Raise :class:`~lightning_ex2.errors.UserError` unless ``dest`` can take the set."""
        dest, opt = self.dest, self.option
        if dest.exists() and not dest.is_dir():
            raise UserError(f"{opt} {dest} exists and is not a folder; choose a folder path")
        if dest.is_dir() and any(dest.iterdir()):
            if not is_output_set(dest):
                raise UserError(
                    f"{opt} {dest} already holds files that are not a sample output set "
                    "(e.g. a fit run's log folder); choose an empty or new folder"
                )
            if not self.overwrite:
                raise UserError(
                    f"{opt} {dest} holds the outputs of a previous run; pass --overwrite true "
                    "to replace them as a whole, or choose another folder"
                )
        parent = dest.parent
        existing = parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise UserError(f"{opt} {dest}: {existing} is not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UserError(f"{opt} {dest}: {existing} is not writable; choose another folder")

    def _stale(self) -> list[Path]:
        out: list[Path] = []
        if not self.dest.parent.is_dir():
            return out
        for p in self.dest.parent.iterdir():
            for prefix in (f".{self.dest.name}.tmp-", f".{self.dest.name}.old-"):
                if p.name.startswith(prefix) and p.is_dir():
                    pid = p.name[len(prefix) :].split("-", 1)[0]
                    if pid.isdigit() and not _alive(int(pid)):
                        out.append(p)
        return out

    def begin(self) -> Path:
        """Check, clear stale staging folders, create the staging folder; returns it."""
        self.check()
        try:
            self.dest.parent.mkdir(parents=True, exist_ok=True, mode=dir_mode())
            for stale in self._stale():
                shutil.rmtree(stale, ignore_errors=True)
            self.staging = Path(
                tempfile.mkdtemp(
                    prefix=f".{self.dest.name}.tmp-{os.getpid()}-", dir=self.dest.parent
                )
            )
            os.chmod(self.staging, dir_mode())
        except OSError as err:
            raise UserError(f"{self.option} {self.dest}: cannot write there ({err})") from err
        return self.staging

    def publish(self) -> Path:
        """Rename the staging folder to ``dest`` (replacing a previous set)."""
        assert self.staging is not None, "begin() first"
        old = None
        if self.dest.exists():
            if not self.overwrite and any(self.dest.iterdir()):
                raise UserError(f"{self.option} {self.dest} was filled during the run")
            old = Path(
                tempfile.mkdtemp(
                    prefix=f".{self.dest.name}.old-{os.getpid()}-", dir=self.dest.parent
                )
            )
            os.replace(self.dest, old)  # onto the empty folder just made
        os.replace(self.staging, self.dest)
        self.staging = None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.dest

    def abort(self) -> None:
        """Delete the staging folder (nothing new appears at ``dest``)."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None


def load_output_set(path: str | os.PathLike):  # type: ignore[no-untyped-def]
    """Read an output set back: :func:`lightning_ex2.inference_data.load_output_set`."""
    from lightning_ex2.inference_data import load_output_set as load

    return load(path)
