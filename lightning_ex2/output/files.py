"""Output files and folders that a reader never sees half-written.

* Single files: written to a temporary file in the same folder, then renamed
  (:func:`save_npz`, :func:`save_text`, :func:`save_json`, :func:`save_netcdf`).
* A set of files (``sample``'s outputs): built in a hidden staging folder inside the
  destination, then moved into place file by file, its manifest ``manifest.json``
  (every file's name, size and sha256) first and its marker ``summary.json`` last
  (:class:`OutputSet`); a reader that finds ``summary.json`` finds the complete set
  it describes, never a mix; ``--overwrite`` removes only files the manifest lists.
  The destination folder itself is never renamed (symbolic links and mount points
  work), and one run at a time holds it (:mod:`lightning_ex2.output.lock`).

Files and folders get the permissions the process's umask allows (``0666``/``0777``
masked), as ``open()``/``mkdir`` would give, not the ``0600``/``0700`` of ``tempfile``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from lightning_ex2.errors import UserError
from lightning_ex2.output.netcdf import ENGINE as NETCDF_ENGINE
from lightning_ex2.output.netcdf import read_netcdf, to_arviz


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

#: the set's manifest: the name, size and sha256 of every file the writer put in the
#: folder; written (atomically) before the first of them, so that every file of the
#: product in the folder is listed at every moment. ``--overwrite`` removes only the
#: files it lists, unchanged (same size and sha256); nothing else is ever deleted.
MANIFEST = "manifest.json"
#: the manifest's ``format`` value (a ``manifest.json`` without it is the user's)
MANIFEST_FORMAT = "lightning-ex2 output set"

#: THE files the writer may put into a set, by name (a registry for writers, not how
#: a set is recognised: that is the manifest). A new output file joins the set by
#: adding its name here (e.g. ``"samples.nc"``); :meth:`OutputSet.publish` refuses a
#: staged file that is not listed.
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

#: further files the writer may put into a set, by ``fnmatch`` pattern: its
#: TensorBoard events (file names with host and pid), a family of figures
SET_PATTERNS: tuple[str, ...] = ("events.out.tfevents.*",)

#: files every complete set of a version without a manifest holds (see
#: :func:`legacy_set`)
LEGACY_CORE: tuple[str, ...] = ("samples.npz", "samples.nc", SET_MARKER)

#: the longest name a set's file can take inside its staging folder: an events file
#: (``events.out.tfevents.<time>.<host>.<pid>.<n>``, a host name up to 64 bytes) as the
#: temporary file of an atomic write (``.<name>.<random>.tmp``)
MAX_FILE_NAME = 160

#: prefix of the hidden staging folder a run builds its set in (inside ``--output_dir``)
STAGING_PREFIX = ".lightning-ex2-staging-"


def is_set_file(name: str) -> bool:
    """Whether the writer may write a file called ``name`` into a set (:data:`SET_FILES`,
    :data:`SET_PATTERNS`).

    Example:
        >>> is_set_file("samples.npz"), is_set_file("notes.txt")
        (True, False)
    """
    return name in SET_FILES or any(fnmatch.fnmatchcase(name, pat) for pat in SET_PATTERNS)


def _internal(name: str) -> bool:
    """The product's bookkeeping in an output folder: staging folders, the lock file,
    an atomic write's temporary manifest (never the user's, never shown as content)."""
    from lightning_ex2.output.lock import LOCK_NAME

    return (
        name.startswith(STAGING_PREFIX)
        or name == LOCK_NAME
        or (name.startswith(f".{MANIFEST}.") and name.endswith(".tmp"))
    )


def _contents(folder: Path) -> list[Path]:
    """Entries of ``folder`` other than the product's bookkeeping (:func:`_internal`)."""
    return [p for p in folder.iterdir() if not _internal(p.name)]


def file_entry(path: Path) -> dict[str, Any]:
    """``{"size": bytes, "sha256": hex}`` of a file (a manifest's entry)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"size": path.stat().st_size, "sha256": h.hexdigest()}


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest in ``folder`` (``None``: none, or a ``manifest.json`` not ours)."""
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        return None
    if not isinstance(data.get("files"), dict):
        return None
    return data


def _listed(entry: Any, path: Path) -> bool:
    """Whether the file at ``path`` is the one a manifest entry (or list of entries) lists."""
    entries = entry if isinstance(entry, list) else [entry]
    size = path.stat().st_size
    candidates = [e for e in entries if isinstance(e, dict) and e.get("size") == size]
    if not candidates:
        return False
    digest = file_entry(path)["sha256"]
    return any(e.get("sha256") == digest for e in candidates)


def legacy_set(folder: Path) -> bool:
    """A complete set of a version that wrote no manifest: ``summary.json``,
    ``samples.npz`` and ``samples.nc`` present, and nothing but the writer's file names
    (:func:`is_set_file`). Anything less (e.g. a lone ``config.yaml`` or events file)
    is not recognised as a set."""
    contents = _contents(folder)
    names = {p.name for p in contents}
    return all(n in names for n in LEGACY_CORE) and all(
        p.is_file() and not p.is_symlink() and is_set_file(p.name) for p in contents
    )


def owned_files(folder: Path) -> tuple[list[Path], list[str]]:
    """The files of ``folder`` that an output set owns (the only files ``--overwrite``
    may remove), and the names of everything else (folders end with ``/``; names the
    writer never uses first, then sorted).

    With a manifest: the manifest and the files it lists with their size and sha256
    (a listed name whose content changed is the user's now). Without one: every file of
    a complete set of an older version (:func:`legacy_set`), else nothing.
    """
    if not folder.is_dir():
        return [], []
    contents = _contents(folder)
    manifest = read_manifest(folder)
    owned: list[Path] = []
    if manifest is not None:
        listed = {**manifest.get("replacing", {}), **manifest["files"]}
        for p in contents:
            if p.name == MANIFEST:
                owned.append(p)
                continue
            if p.is_file() and not p.is_symlink() and p.name in listed:
                entries = [manifest["files"].get(p.name), manifest.get("replacing", {}).get(p.name)]
                if _listed([e for e in entries if e is not None], p):
                    owned.append(p)
    elif legacy_set(folder):
        owned = list(contents)
    own = {p.name for p in owned}
    foreign = [p.name + ("/" if p.is_dir() else "") for p in contents if p.name not in own]
    # names the writer never writes first (the clearest sign of someone else's folder)
    return owned, sorted(foreign, key=lambda n: (is_set_file(n.rstrip("/")), n))


def foreign_files(folder: Path) -> list[str]:
    """Names in ``folder`` that no output set owns (see :func:`owned_files`)."""
    return owned_files(folder)[1]


def is_output_set(folder: Path) -> bool:
    """Whether ``folder`` holds a complete output set (its marker) and nothing else."""
    owned, foreign = owned_files(folder)
    return not foreign and any(p.name == SET_MARKER for p in owned)


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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputSet:
    """A folder of outputs whose marker (``summary.json``) is there only when the
    files beside it are one complete, consistent set, and whose manifest
    (``manifest.json``) lists every file the writer put there.

    ``check`` refuses a destination that cannot be written or holds anything no
    output set owns (naming it); ``lock`` takes the folder's lock
    (:class:`~lightning_ex2.output.lock.RunLock`: a live run there is refused, naming it)
    and checks again; ``begin`` creates the folder and a hidden staging folder inside
    it; the caller writes into :attr:`staging`; ``publish`` writes the manifest
    (the new files and the old ones they replace) first, then moves the files into
    the folder one by one (each an atomic rename within one file system): the old
    marker is removed first, the set's files replace their namesakes, files of the
    old set that the new one lacks are removed, the final manifest is written and the
    new marker comes last; ``abort`` deletes the staging folder; ``unlock`` releases
    the lock. The folder itself is never renamed, so a symbolic link, a mount point or
    a folder whose parent is read-only works as well as a new folder. Staging folders
    left by killed runs are deleted by the next ``begin``, under the lock (so never a
    live run's, whatever its PID namespace); only files the manifest lists are ever
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
        self._lock: Any = None
        self._lock_by_begin = False

    def check(self) -> None:
        """Raise :class:`~lightning_ex2.errors.UserError` unless ``dest`` can take the set."""
        dest, opt = self.dest, self.option
        self._check_length()
        if dest.is_symlink() and not dest.exists():
            raise UserError(
                f"{opt} {dest} is a symbolic link to {os.readlink(dest)}, which does not "
                "exist; create that folder or choose another path"
            )
        if dest.exists() and not dest.is_dir():
            raise UserError(f"{opt} {dest} exists and is not a folder; choose a folder path")
        if dest.is_dir():
            owned, foreign = owned_files(dest)
            if foreign:
                more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
                raise UserError(
                    f"{opt} {dest} holds files that are not part of a sample output set "
                    f"({', '.join(foreign[:3])}{more}; no {MANIFEST} of lightning-ex2 lists "
                    "them) and are never deleted: move them away, or choose an empty or "
                    "new folder"
                )
            if owned and not self.overwrite:
                what = (
                    "the outputs of a previous run"
                    if (dest / SET_MARKER).is_file()
                    else f"an incomplete output set (its {MANIFEST}, no {SET_MARKER}: a run "
                    "stopped while publishing it)"
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

    def _check_length(self) -> None:
        """Refuse a path the set's files cannot have: a name longer than the file
        system's ``NAME_MAX``, or a path that leaves no room within ``PATH_MAX`` for the
        staging folder and the longest file name inside it (checked before any work;
        otherwise only the publish, after sampling, would find out)."""
        existing = Path(os.path.abspath(self.dest))
        while not os.path.exists(existing) and existing != existing.parent:
            existing = existing.parent  # os.path.exists: False (no error) for too long names
        try:
            name_max = os.pathconf(existing, "PC_NAME_MAX")
            path_max = os.pathconf(existing, "PC_PATH_MAX")
        except (OSError, ValueError):
            name_max, path_max = 255, 4096
        full = os.fsencode(os.path.abspath(self.dest))
        longest = max(full.split(b"/"), key=len)
        if len(longest) > name_max:
            raise UserError(
                f"{self.option} {self.dest}: a folder name of {len(longest)} bytes, longer "
                f"than the file system allows ({name_max}); choose a shorter path"
            )
        inner = len(STAGING_PREFIX) + 40 + MAX_FILE_NAME  # staging folder / longest file
        if len(full) + inner >= path_max:
            raise UserError(
                f"{self.option} {self.dest}: the path is too long ({len(full)} bytes; the "
                f"set's files need {inner} more within the limit of {path_max}); choose a "
                "shorter path"
            )

    def lock(self) -> None:
        """:meth:`check`, take the folder's lock (creating the folder), check again under
        it. Raises :class:`~lightning_ex2.output.lock.LockHeld` while a live run holds it."""
        from lightning_ex2.output.lock import RunLock

        if self._lock is not None:
            return
        self.check()
        lock = RunLock(
            self.dest,
            what=self.option,
            remedy="wait for it to end, or choose another folder",
        )
        try:
            lock.acquire()
        except OSError as err:
            raise UserError(
                f"{self.option} {self.dest}: cannot write there ({err.strerror or err}); "
                "choose another folder"
            ) from err
        self._lock = lock
        try:
            self.check()
        except BaseException:
            self.unlock()
            raise

    def unlock(self) -> None:
        """Release the lock (the folder it created goes too when it stayed empty)."""
        lock, self._lock = self._lock, None
        if lock is None:
            return
        lock.release()
        lock.remove_created()  # only folders left empty

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
        """Bookkeeping left by killed runs. Under the lock every staging folder and
        temporary manifest in ``dest`` but this run's is stale, whatever its PID says."""
        out: list[Path] = []
        if self.dest.is_dir() and self._lock is not None:
            out += [
                p for p in self.dest.iterdir() if _internal(p.name) and p.name.startswith(".")
                and p != self._lock.path and p != self.staging
            ]  # fmt: skip
        if self.dest.parent.is_dir():  # left by versions that staged next to the folder
            for p in self.dest.parent.iterdir():
                for prefix in (f".{self.dest.name}.tmp-", f".{self.dest.name}.old-"):
                    if p.name.startswith(prefix) and p.is_dir():
                        pid = p.name[len(prefix) :].split("-", 1)[0]
                        if pid.isdigit() and not _alive(int(pid)):
                            out.append(p)
        return out

    def begin(self) -> Path:
        """Lock (unless :meth:`lock` was called: then its caller unlocks; else
        :meth:`publish`/:meth:`abort` do), check, create ``dest``, clear stale staging
        folders (under the lock), create the staging folder."""
        if self._lock is None:
            self.lock()
            self._lock_by_begin = True
        else:
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
            self._end()
            raise UserError(f"{self.option} {self.dest}: cannot write there ({err})") from err
        return self.staging

    def _write_manifest(self, files: dict[str, Any], replacing: dict[str, Any]) -> None:
        data = {"format": MANIFEST_FORMAT, "version": 1, "files": files}
        if replacing:
            data["replacing"] = replacing
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        write_atomic(self.dest / MANIFEST, lambda f: f.write(text.encode()))

    def publish(self) -> Path:
        """Move the staged files into ``dest`` (replacing a previous set, manifest
        first, marker last)."""
        assert self.staging is not None, "begin() first"
        staged = sorted(p.name for p in self.staging.iterdir())
        unlisted = [n for n in staged if not is_set_file(n)]
        if unlisted or SET_MARKER not in staged:
            raise RuntimeError(
                f"output set: staged {unlisted or 'no ' + SET_MARKER}; every file of a set "
                "is listed in lightning_ex2.output.files.SET_FILES (or SET_PATTERNS), the marker last"
            )
        owned, foreign = owned_files(self.dest)
        if foreign or (owned and not self.overwrite):
            raise UserError(f"{self.option} {self.dest} was filled during the run")
        old = [p for p in owned if p.name != MANIFEST]
        files = {name: file_entry(self.staging / name) for name in staged}
        replacing = {p.name: file_entry(p) for p in old}
        # the manifest first: from here every file of ours in the folder is listed
        self._write_manifest(files, replacing)
        _fsync_dir(self.dest)
        marker = self.dest / SET_MARKER
        self.replaced_complete = marker.is_file()
        marker.unlink(missing_ok=True)  # from here on the folder is not a complete set
        for name in staged:
            if name != SET_MARKER:
                os.replace(self.staging / name, self.dest / name)
        for p in old:
            if p.name not in staged:
                p.unlink(missing_ok=True)
        self._write_manifest(files, {})
        _fsync_dir(self.dest)
        os.replace(self.staging / SET_MARKER, marker)
        os.rmdir(self.staging)
        self.staging = None
        _fsync_dir(self.dest)
        self._end()
        return self.dest

    def _end(self) -> None:
        if self._lock_by_begin:
            self._lock_by_begin = False
            self.unlock()

    def abort(self) -> None:
        """Delete the staging folder (nothing new appears at ``dest``)."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
        self._end()


# ------------------------------------------------------- netCDF and reading a set back
def save_netcdf(path: str | os.PathLike, groups: Mapping[str, Any]) -> Path:
    """``groups`` (name -> ``xarray.Dataset``) as one netCDF file, atomically.

    Written group by group to a temporary file in the same folder, synced, then
    renamed to ``path`` (the permissions of the umask, as every file here); the
    groups' layout is :mod:`lightning_ex2.output.netcdf`'s.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        for i, (name, ds) in enumerate(groups.items()):
            ds.to_netcdf(tmp, mode="w" if i == 0 else "a", group=name, engine=NETCDF_ENGINE)
    return path


@dataclass
class OutputSetData:
    """An output set of ``lightning-ex2 sample`` read back (:func:`load_output_set`).

    Attributes:
        path: the folder.
        samples: draws ``(chain, draw, dim)`` in the run's dtype.
        log_prob: ``log pi`` of the draws ``(chain, draw)``.
        chain_index: the chains' indices ``(chain,)``.
        sample_stats: per-draw ``(chain, draw)`` arrays (``samples.nc``'s ``sample_stats``
            without ``lp``); empty for a set written before ``samples.nc`` existed.
        chain_info: per-chain ``(chain,)`` arrays of ``samples.npz`` (means over draws).
        summary: ``summary.json``.
        config: ``config.yaml``'s text, ``None`` if absent.
    """

    path: Path
    samples: np.ndarray
    log_prob: np.ndarray
    chain_index: np.ndarray
    sample_stats: dict[str, np.ndarray]
    chain_info: dict[str, np.ndarray]
    summary: dict[str, Any]
    config: str | None

    def to_arviz(self):  # type: ignore[no-untyped-def]
        """``samples.nc`` as ArviZ data (see :func:`to_arviz`)."""
        return to_arviz(read_netcdf(self.path / "samples.nc"))


def load_output_set(path: str | os.PathLike) -> OutputSetData:
    """Read the output set in folder ``path`` (``samples.npz``, ``samples.nc``,
    ``summary.json``, ``config.yaml``).

    Raises:
        FileNotFoundError: ``path`` holds no ``summary.json`` and ``samples.npz``.
        ValueError: a file of the set is truncated or damaged (its size differs from
            the one its manifest lists, or it cannot be read), in one line naming it.
    """
    import zipfile

    path = Path(path)
    npz_path, summary_path = path / "samples.npz", path / "summary.json"
    if not (npz_path.is_file() and summary_path.is_file()):
        raise FileNotFoundError(f"{path} is not an output set (no samples.npz/summary.json)")
    listed = (read_manifest(path) or {}).get("files", {})
    for name, entry in listed.items():
        file = path / name
        size = entry.get("size") if isinstance(entry, dict) else None
        if file.is_file() and size is not None and file.stat().st_size != size:
            raise ValueError(
                f"{file} is damaged: {file.stat().st_size} bytes, its set's manifest lists "
                f"{size} (truncated by a copy or a full disk?); copy or write the set again"
            )

    def damaged(file: Path, err: BaseException) -> ValueError:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        return ValueError(
            f"{file} cannot be read (truncated or damaged: {first}); copy or write the set again"
        )

    try:
        with np.load(npz_path) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise damaged(npz_path, err) from err
    stats: dict[str, np.ndarray] = {}
    if (path / "samples.nc").is_file():
        try:
            ds = read_netcdf(path / "samples.nc", ("sample_stats",), ())["sample_stats"]
            stats = {k: ds[k].values for k in ds.data_vars if k != "lp"}
        except (OSError, ValueError, KeyError) as err:
            raise damaged(path / "samples.nc", err) from err
    try:
        summary = json.loads(summary_path.read_text())
    except ValueError as err:
        raise damaged(summary_path, err) from err
    config = path / "config.yaml"
    return OutputSetData(
        path=path,
        samples=arrays.pop("samples"),
        log_prob=arrays.pop("log_prob"),
        chain_index=arrays.pop("chain_index"),
        sample_stats=stats,
        chain_info=arrays,
        summary=summary,
        config=config.read_text() if config.is_file() else None,
    )
