"""A Pyro model named in a config: its function by import path, its data from a file.

:class:`PyroModel` takes a Python function and its arguments; a YAML config names
classes and plain values. :class:`PyroProgram` bridges the two for the command line::

    model:
      class_path: lightning_ex2.lightning.MCMCSampler
      init_args:
        target:
          class_path: lightning_ex2.targets.PyroProgram
          init_args:
            model: examples/pyro/eight_schools.py:model   # or my_package.models:eight_schools
            data: examples/pyro/eight_schools.json        # or .npz
        kernel: {class_path: lightning_ex2.kernels.HMC, init_args: {n_leapfrog: 10}}

The data file's entries are the model's keyword arguments: a single integer becomes a
Python ``int`` (a size, for ``pyro.plate`` and ``range``), a single boolean a ``bool``,
and every array a tensor of ``dtype`` (JSON does not say whether ``[28, 8, -3]`` is
Stan's ``int`` or ``real``; observations are usually real), except the entries named in
``integers``, which become ``int64`` tensors (indices, group labels, counts a model
indexes with). JSON files (posteriordb's and CmdStan's data format) and NumPy ``.npz``
files (read with ``allow_pickle=False``) are read; nothing is unpickled.

A checkpoint records the model's path, a digest of its source and a digest of the data
file, so a resume with another model or other data is refused like any other change of
settings.

Example:
    >>> t = PyroProgram("configs/pyro/eight_schools.py:model", "configs/pyro/eight_schools.json",
    ...                 verbose=False)
    >>> t.dim, sorted(t.kwargs), type(t.kwargs["J"]).__name__, t.kwargs["y"].dtype
    (10, ['J', 'sigma', 'y'], 'int', torch.float64)
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from .pyro_model import PyroModel, PyroModelError

__all__ = ["PyroProgram", "load_model_function", "read_data"]

#: PyroModel's own options, which a data key may not shadow
_OPTIONS = ("check_points", "rtol", "path", "verbose")


def load_model_function(spec: str) -> Callable[..., Any]:
    """The function ``spec`` names: ``package.module:function``, ``package.module.function``
    or ``path/to/file.py:function`` (relative to the working folder; the file is run
    afresh on every call, so an edited model is read again).

    Raises:
        PyroModelError: one line naming ``model`` and what is wrong.
    """
    module_part, sep, attr = spec.rpartition(":")
    if not sep:
        module_part, _, attr = spec.rpartition(".")
    if not module_part or not attr:
        raise PyroModelError(
            f"model: {spec!r} is not 'package.module:function' or 'file.py:function'"
        )
    if module_part.endswith(".py"):
        file = Path(module_part).expanduser().resolve()
        if not file.is_file():
            raise PyroModelError(f"model: no file {module_part} (from {spec!r})")
        name = (
            f"_lightning_ex2_pyro_{file.stem}_{hashlib.sha256(str(file).encode()).hexdigest()[:8]}"
        )
        loader_spec = importlib.util.spec_from_file_location(name, file)
        if loader_spec is None or loader_spec.loader is None:
            raise PyroModelError(f"model: {module_part} cannot be imported")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module  # read afresh each time: an edited file counts
        try:
            loader_spec.loader.exec_module(module)
        except Exception as err:
            del sys.modules[name]
            first = (str(err).splitlines() or [""])[0]
            raise PyroModelError(
                f"model: importing {module_part} failed: {type(err).__name__}: {first}"
            ) from err
    else:
        try:
            module = importlib.import_module(module_part)
        except ImportError as err:
            raise PyroModelError(f"model: cannot import {module_part!r} ({err})") from err
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise PyroModelError(f"model: {module_part} has no function {attr!r}")
    return fn


def _entry(key: str, value: Any, dtype: torch.dtype, integer: bool) -> Any:
    try:
        array = np.asarray(value)
    except ValueError as err:  # ragged lists
        raise PyroModelError(f"data: entry {key!r} is not a rectangular array") from err
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise PyroModelError(f"data: entry {key!r} is not numeric ({array.dtype})")
    if array.ndim == 0 and array.dtype.kind in "biu":
        return bool(array) if array.dtype.kind == "b" else int(array)
    if integer:
        if array.dtype.kind == "f" and not np.array_equal(array, np.round(array)):
            raise PyroModelError(f"data: entry {key!r} is listed in integers but holds fractions")
        return torch.as_tensor(array.astype(np.int64))
    return torch.as_tensor(array, dtype=dtype)


def read_data(
    path: str | Path, dtype: torch.dtype = torch.float64, integers: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The entries of a JSON or ``.npz`` data file as the model's keyword arguments
    (see the module docstring for the conversions; ``integers``: the entries kept as
    ``int64`` tensors).

    Raises:
        PyroModelError: one line naming ``data``: missing, unreadable, not a mapping,
            an entry that is not numeric, or a name of ``integers`` not in the file.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise PyroModelError(f"data: no file {path}")
    try:
        if file.suffix == ".npz":
            with np.load(file, allow_pickle=False) as npz:
                raw: Any = {k: npz[k] for k in npz.files}
        elif file.suffix == ".json":
            raw = json.loads(file.read_text())
        else:
            raise PyroModelError(f"data: {path} is not a .json or .npz file")
    except PyroModelError:
        raise
    except (OSError, ValueError) as err:  # ValueError: bad JSON, pickled arrays
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise PyroModelError(f"data: {path} cannot be read ({first})") from err
    if not isinstance(raw, dict):
        raise PyroModelError(f"data: {path} holds a {type(raw).__name__}, not a mapping of names")
    absent = sorted(set(integers) - set(map(str, raw)))
    if absent:
        raise PyroModelError(f"integers: {', '.join(map(repr, absent))} not in {path}")
    return {str(k): _entry(str(k), v, dtype, str(k) in integers) for k, v in raw.items()}


def _check_signature(fn: Callable[..., Any], data: dict[str, Any], spec: str) -> None:
    """Data keys the function does not take, and arguments it needs that the data lacks."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    params = sig.parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(data) - set(params))
    if unknown:
        raise PyroModelError(
            f"data: {', '.join(map(repr, unknown))} not an argument of {spec} "
            f"(it takes {', '.join(params) or 'nothing'})"
        )
    missing = [
        n for n, p in params.items()
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and n not in data
    ]  # fmt: skip
    if missing:
        raise PyroModelError(f"data: {spec} needs {', '.join(map(repr, missing))}, not in the file")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


class PyroProgram(PyroModel):
    """:class:`PyroModel` of the function ``model`` names, called with the entries of the
    ``data`` file as keyword arguments (for configs: see the module docstring).

    Args:
        model: ``package.module:function`` or ``path/to/file.py:function``.
        data: a JSON or ``.npz`` file of the model's keyword arguments (``None``: the
            model takes none).
        dtype: the floating dtype of the data, and so of the chains.
        integers: data entries passed as ``int64`` tensors (indices, labels), not floats.
        check_points, rtol, path, verbose: as :class:`PyroModel`.

    Attributes:
        model_source: a digest of the model function's source (a checkpoint records it).
        data_digest: a digest of the data file's bytes (``""`` without one).

    Raises:
        PyroModelError: one line naming ``model``, ``data`` or the model's problem.
    """

    def __init__(
        self,
        model: str,
        data: str | None = None,
        dtype: Literal["float32", "float64"] = "float64",
        integers: list[str] | None = None,
        check_points: int = 4,
        rtol: float = 1e-6,
        path: Literal["plate", "vmap", "loop"] | None = None,
        verbose: bool = True,
    ) -> None:
        if dtype not in ("float32", "float64"):
            raise PyroModelError(f"dtype: must be float32 or float64, got {dtype!r}")
        fn = load_model_function(model)
        if integers and data is None:
            raise PyroModelError("integers: given without a data file")
        dt = getattr(torch, dtype)
        kwargs = read_data(data, dt, tuple(integers or ())) if data is not None else {}
        clash = sorted(set(kwargs) & set(_OPTIONS))
        if clash:
            raise PyroModelError(
                f"data: {', '.join(map(repr, clash))} is an option of PyroModel; rename it "
                "in the file and the model"
            )
        _check_signature(fn, kwargs, model)
        super().__init__(
            fn, check_points=check_points, rtol=rtol, path=path, verbose=verbose, **kwargs
        )
        self.model_path = model
        self.data_path = data
        try:
            source = inspect.getsource(fn).encode()
        except (OSError, TypeError):
            source = model.encode()
        self.model_source = _digest(source)
        self.data_digest = _digest(Path(data).expanduser().read_bytes()) if data else ""
