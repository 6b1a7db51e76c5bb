"""Output files and folders that a reader never sees half-written.

* Single files: written to a temporary file in the same folder, then renamed
  (:func:`save_npz`, :func:`save_text`, :func:`save_json`).
* A set of files (``sample``'s outputs, the names in :data:`SET_FILES`): built in
  a hidden staging folder inside the destination, then moved into place file by
  file with its marker ``summary.json`` last (:class:`OutputSet`); a reader that
  finds ``summary.json`` finds the complete set it describes, never a mix. The
  destination folder itself is never renamed (symbolic links and mount points work).

Files and folders get the permissions the process's umask allows (``0666``/``0777``
masked), as ``open()``/``mkdir`` would give, not the ``0600``/``0700`` of ``tempfile``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary file beside ``path`` that replaces ``path`` when the block ends.

    For writers that want a file name (netCDF, ``torch.save`` by name): write to the
    yielded path; on success it is synced and renamed onto ``path`` with the
    umask's permissions, on an exception it is removed and ``path`` is untouched.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> with atomic_path(d / "a.txt") as tmp:
        ...     _ = tmp.write_text("hi")
        >>> (d / "a.txt").read_text(), sorted(p.name for p in d.iterdir())
        ('hi', ['a.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, file_mode())
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """``write(f)`` into a binary file object, atomically to ``path`` (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)
        f.flush()
    return Path(path)


def save_torch(path: str | os.PathLike, obj: Any) -> Path:
    """``torch.save(obj)`` to ``path`` atomically (checkpoints, weights)."""
    import torch

    return write_atomic(path, lambda f: torch.save(obj, f))


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """``np.savez`` to ``path`` atomically."""
    return write_atomic(path, lambda f: np.savez(f, **arrays))


def save_text(path: str | os.PathLike, text: str) -> Path:
    """UTF-8 text to ``path`` atomically."""
    return write_atomic(path, lambda f: f.write(text.encode()))


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
    return write_atomic(path, lambda f: f.write(text.encode()))


# --------------------------------------------------------------------- output sets
#: the file that marks a folder as a complete output set of ``lightning-ex2 sample``
#: (published last, removed first when a set is replaced)
SET_MARKER = "summary.json"

#: THE files of an output set, by name: the writer writes only these into a set,
#: ``--overwrite true`` removes only these, and a folder holding anything else is
#: refused. A new output file joins the set by adding its name here (e.g.
#: ``"samples.nc"``); :meth:`OutputSet.publish` refuses a staged file that is not listed.
SET_FILES: tuple[str, ...] = (
    "samples.npz",
    "samples.nc",
    "config.yaml",
    "scatter.png",
    "trace.png",
    "rank.png",
    "pair.png",
    SET_MARKER,
)

#: further files of a set by ``fnmatch`` pattern: its TensorBoard events (file names
#: with host and pid), a family of figures (e.g. ``"rank_*.png"``); keep them narrow:
#: a matching file of the user's is replaced
SET_PATTERNS: tuple[str, ...] = ("events.out.tfevents.*",)

#: prefix of the hidden staging folder a run builds its set in (inside ``--output_dir``)
STAGING_PREFIX = ".lightning-ex2-staging-"


def is_set_file(name: str) -> bool:
    """Whether a file called ``name`` belongs to an output set (:data:`SET_FILES`,
    :data:`SET_PATTERNS`).

    Example:
        >>> is_set_file("samples.npz"), is_set_file("notes.txt")
        (True, False)
    """
    return name in SET_FILES or any(fnmatch.fnmatchcase(name, pat) for pat in SET_PATTERNS)


def _staging_pid(name: str) -> int | None:
    if not name.startswith(STAGING_PREFIX):
        return None
    pid = name[len(STAGING_PREFIX) :].split("-", 1)[0]
    return int(pid) if pid.isdigit() else None


def _contents(folder: Path) -> list[Path]:
    """Entries of ``folder`` other than staging folders of output sets."""
    return [p for p in folder.iterdir() if _staging_pid(p.name) is None]


def foreign_files(folder: Path) -> list[str]:
    """Names in ``folder`` that are not files of an output set (sorted)."""
    return sorted(
        p.name + ("/" if p.is_dir() else "")
        for p in _contents(folder)
        if p.is_dir() or not is_set_file(p.name)
    )


def is_output_set(folder: Path) -> bool:
    """Whether ``folder`` holds a complete output set (its marker) and nothing else."""
    return (folder / SET_MARKER).is_file() and not foreign_files(folder)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class OutputSet:
    """A folder of outputs whose marker (``summary.json``) is there only when the
    files beside it are one complete, consistent set.

    ``check`` before any work refuses a destination that cannot be written or holds
    anything but an output set (naming the foreign files); ``begin`` creates the
    folder and a hidden staging folder inside it (``.lightning-ex2-staging-<pid>-*``);
    the caller writes into :attr:`staging`; ``publish`` moves the files into the
    folder one by one (each an atomic rename within one file system): the old
    marker is removed first, the set's files replace their namesakes, files of the
    old set that the new one lacks are removed, and the new marker comes last;
    ``abort`` deletes the staging folder. The folder itself is never renamed, so a
    symbolic link, a mount point (a Docker volume, a tmpfs, a cluster's scratch
    folder) or a folder whose parent is read-only works as well as a new folder.
    Staging folders of killed runs (their process gone) are deleted by the next
    ``begin``; only files listed in :data:`SET_FILES`/:data:`SET_PATTERNS` are ever
    replaced or removed.

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
        #: whether :meth:`publish` replaced a complete previous set
        self.replaced_complete = False

    def check(self) -> None:
        """Raise :class:`~lightning_ex2.errors.UserError` unless ``dest`` can take the set."""
        dest, opt = self.dest, self.option
        if dest.is_symlink() and not dest.exists():
            raise UserError(
                f"{opt} {dest} is a symbolic link to {os.readlink(dest)}, which does not "
                "exist; create that folder or choose another path"
            )
        if dest.exists() and not dest.is_dir():
            raise UserError(f"{opt} {dest} exists and is not a folder; choose a folder path")
        if dest.is_dir():
            foreign = foreign_files(dest)
            if foreign:
                more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
                raise UserError(
                    f"{opt} {dest} holds files that are not part of a sample output set "
                    f"({', '.join(foreign[:3])}{more}; e.g. a fit run's log folder); "
                    "--overwrite replaces only an output set's own files "
                    f"({', '.join(SET_FILES)}): move those away, or choose an empty or new folder"
                )
            if _contents(dest) and not self.overwrite:
                what = (
                    "the outputs of a previous run"
                    if (dest / SET_MARKER).is_file()
                    else f"an incomplete output set (no {SET_MARKER}: a run stopped while "
                    "publishing it)"
                )
                raise UserError(
                    f"{opt} {dest} holds {what}; pass --overwrite true to replace them as a "
                    "whole, or choose another folder"
                )
            self._probe(dest)
            return
        existing = dest.parent
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise UserError(f"{opt} {dest}: {existing} is not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UserError(f"{opt} {dest}: {existing} is not writable; choose another folder")

    def _probe(self, folder: Path) -> None:
        """Create and delete a file in ``folder`` (a read-only mount, a full disk...)."""
        try:
            fd, tmp = tempfile.mkstemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-probe", dir=folder)
            os.close(fd)
            os.unlink(tmp)
        except OSError as err:
            raise UserError(
                f"{self.option} {self.dest}: cannot write there ({err.strerror or err}); "
                "choose another folder"
            ) from err

    def _stale(self) -> list[Path]:
        out: list[Path] = []
        if self.dest.is_dir():
            for p in self.dest.iterdir():
                pid = _staging_pid(p.name)
                if pid is not None and pid != os.getpid() and not _alive(pid):
                    out.append(p)
        if self.dest.parent.is_dir():  # left by versions that staged next to the folder
            for p in self.dest.parent.iterdir():
                for prefix in (f".{self.dest.name}.tmp-", f".{self.dest.name}.old-"):
                    if p.name.startswith(prefix) and p.is_dir():
                        pid = p.name[len(prefix) :].split("-", 1)[0]
                        if pid.isdigit() and not _alive(int(pid)):
                            out.append(p)
        return out

    def begin(self) -> Path:
        """Check, create ``dest``, clear stale staging folders, create the staging folder."""
        self.check()
        try:
            self.dest.mkdir(parents=True, exist_ok=True, mode=dir_mode())
            for stale in self._stale():
                if stale.is_dir():
                    shutil.rmtree(stale, ignore_errors=True)
                else:
                    stale.unlink(missing_ok=True)
            self.staging = Path(
                tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=self.dest)
            )
            os.chmod(self.staging, dir_mode())
        except OSError as err:
            raise UserError(f"{self.option} {self.dest}: cannot write there ({err})") from err
        return self.staging

    def publish(self) -> Path:
        """Move the staged files into ``dest`` (replacing a previous set, marker last)."""
        assert self.staging is not None, "begin() first"
        staged = sorted(p.name for p in self.staging.iterdir())
        unlisted = [n for n in staged if not is_set_file(n)]
        if unlisted or SET_MARKER not in staged:
            raise RuntimeError(
                f"output set: staged {unlisted or 'no ' + SET_MARKER}; every file of a set "
                "is listed in lightning_ex2.io.SET_FILES (or SET_PATTERNS), the marker last"
            )
        old = [p for p in _contents(self.dest) if p.is_file() and is_set_file(p.name)]
        if old and not self.overwrite:
            raise UserError(f"{self.option} {self.dest} was filled during the run")
        marker = self.dest / SET_MARKER
        self.replaced_complete = marker.is_file()
        marker.unlink(missing_ok=True)  # from here on the folder is not a complete set
        for name in staged:
            if name != SET_MARKER:
                os.replace(self.staging / name, self.dest / name)
        for p in old:
            if p.name not in staged:
                p.unlink(missing_ok=True)
        _fsync_dir(self.dest)
        os.replace(self.staging / SET_MARKER, marker)
        os.rmdir(self.staging)
        self.staging = None
        _fsync_dir(self.dest)
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
