"""Reading torch files a user hands us, without running code they may hold.

Every checkpoint, weights file, classifier file or initial-points file the project
reads goes through :func:`load_torch`: ``torch.load(weights_only=True)`` (tensors,
plain containers and numbers only; no object's ``__reduce__`` runs). A file that needs
full unpickling is refused with one :class:`UntrustedFile` line naming the explicit
opt-in: ``--trust_checkpoint true`` on the command line, ``trust_checkpoint=True`` in
Python. Only with that opt-in is the file unpickled in full. Every file the project
writes loads without it.

The zip archive's checksums are verified before loading, so damaged tensor bytes
are refused in one line instead of loading as other numbers.

Example:
    >>> import tempfile, torch
    >>> path = tempfile.mkdtemp() + "/w.pt"
    >>> torch.save({"w": torch.ones(2)}, path)
    >>> load_torch(path)["w"].tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from lightning_ex2.errors import UserError

__all__ = ["TRUST_OPT_IN", "DamagedFile", "UntrustedFile", "load_torch", "verify_archive"]

#: how a user opts in to full unpickling, as messages name it
TRUST_OPT_IN = "--trust_checkpoint true (Python: trust_checkpoint=True)"

#: the start of torch's message when ``weights_only=True`` meets a non-allowlisted object
_WEIGHTS_ONLY_REFUSAL = "Weights only load failed"


class UntrustedFile(UserError):
    """A file that can only be read by full unpickling (which runs any code it holds),
    read without the explicit opt-in."""


class DamagedFile(UserError):
    """A torch file that is truncated, corrupted, or not a torch file at all."""


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _unsafe_global(err: BaseException) -> str:
    """The global torch's weights-only unpickler refused, from its message."""
    found = re.search(r"GLOBAL ([\w.]+)", str(err))
    if found is not None:
        return f"an object of {found.group(1)}"
    return "an object other than tensors and plain values"


def verify_archive(path: str | os.PathLike) -> None:
    """Raise :class:`DamagedFile` when ``path`` is a zip archive (torch's format since
    1.6) whose entries fail their CRC check, or a truncated one (no central directory).
    Files of torch's old, non-zip format are left to ``torch.load``."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as err:
        raise DamagedFile(f"{path} cannot be read ({err.strerror or err})") from err
    if head != b"PK\x03\x04":
        return  # not a zip: torch's legacy format, or not a torch file (torch.load says)
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise DamagedFile(f"{path} is truncated or damaged ({_first_line(err)})") from err
    if bad is not None:
        raise DamagedFile(f"{path} is damaged: the bytes of {bad} fail their checksum")


def load_torch(
    path: str | os.PathLike,
    *,
    trust: bool = False,
    map_location: Any = "cpu",
    mmap: bool = False,
    what: str = "",
) -> Any:
    """``torch.load(path, weights_only=True)``; full unpickling only with ``trust``.

    Args:
        path: the file.
        trust: the user's explicit opt-in (``--trust_checkpoint true`` /
            ``trust_checkpoint=True``) to unpickle a file that needs more than tensors
            and plain values. Never set it for a file you did not make.
        map_location: as for ``torch.load``.
        mmap: memory-map the tensors (cheap for large files; falls back to reading).
        what: how messages name the file (e.g. ``"--ckpt_path x.ckpt"``; default the path).

    Raises:
        UntrustedFile: the file needs full unpickling and ``trust`` is not set; one
            line naming the opt-in.
        DamagedFile: truncated, corrupted (checksum) or not a torch file.
    """
    path = Path(path)
    name = what or str(path)
    try:
        verify_archive(path)
    except DamagedFile as err:
        raise DamagedFile(f"{name}: {str(err).replace(str(path), 'file', 1)}") from err

    def load(weights_only: bool) -> Any:
        if mmap:
            try:
                return torch.load(
                    path, map_location=map_location, weights_only=weights_only, mmap=True
                )
            except (RuntimeError, OSError, ValueError):
                pass  # not mappable (old format): read it
        return torch.load(path, map_location=map_location, weights_only=weights_only)

    try:
        try:
            return load(weights_only=True)
        except pickle.UnpicklingError as err:
            if _WEIGHTS_ONLY_REFUSAL not in str(err):
                raise
            if not trust:
                raise UntrustedFile(
                    f"{name} holds {_unsafe_global(err)}, which only full unpickling can "
                    "read, and full unpickling runs any code the file holds: refused; "
                    f"pass {TRUST_OPT_IN} only for a file you made or trust"
                ) from None
            return load(weights_only=False)
    except UserError:
        raise
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
        raise DamagedFile(
            f"{name} cannot be read (truncated or not a torch file: {_first_line(err)})"
        ) from err
