"""Draws as ArviZ data: the ``samples.nc`` of an output set, ``Run.to_arviz()``, the loader.

``samples.nc`` is a netCDF-4 (HDF5) file with ArviZ's group layout, which ArviZ 0.x
(``InferenceData``) and 1.x (``xarray.DataTree``) both read with ``arviz.from_netcdf``:

* ``posterior``: ``x`` ``(chain, draw, dim)``, the draws in the run's dtype, with
  coordinates ``chain`` (the chain index), ``draw`` and ``dim`` (``0..D-1``, or the
  target's ``dim_names`` when it declares them). For a target with named constrained
  values (a ``constrain(x) -> {name: [..., *shape]}`` method: the posteriordb ports,
  :class:`~lightning_ex2.targets.PyroModel`), ``posterior`` holds those instead, one
  variable per name with dims ``(chain, draw, <name>_dim_0, ...)`` as ArviZ names them,
  and ``x`` moves to ArviZ's ``unconstrained_posterior`` group;
* ``sample_stats``: per draw ``(chain, draw)``: ``lp`` (``log pi`` of the draw) and the
  kernel's info of the step that made it: ``accept_global``, ``accept_local``,
  ``particle_ess``, ``step_size`` where the kernel has them, ``nonfinite`` (integer
  count of NaN/+inf log-densities met since the previous draw) and ``diverging`` where
  the kernel has that notion;
* attributes of both groups: ``kernel``, ``target``, ``seed``, ``module``,
  ``created_by`` (``lightning-ex2 <version>``), ``inference_library``.

The file is written by xarray's ``h5netcdf`` engine (the ``h5netcdf`` package; no
netCDF4 C library needed), to a temporary file renamed into place.

Example:
    >>> import torch, lightning_ex2 as lx
    >>> run = lx.sample(lx.targets.Gaussian(torch.zeros(2)), lx.MALA(step_size=0.5), n_chains=4,
    ...                 n_steps=50, seed=0, progress=False, check_convergence=False)
    >>> groups = build_groups(run.samples, run.log_prob, run.draw_info, run.meta)
    >>> groups["posterior"]["x"].dims, sorted(groups["sample_stats"].data_vars)[:2]
    (('chain', 'draw', 'dim'), ['accept_local', 'lp'])
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lightning_ex2.metrics.summary import import_arviz

#: the posterior variable of the draws
VARIABLE = "x"
#: sample_stats fields stored as integers (counts) and booleans
INTEGER_STATS = ("nonfinite",)
BOOLEAN_STATS = ("diverging",)
#: the netCDF engine (the ``h5netcdf`` package, a core dependency)
ENGINE = "h5netcdf"


def _numpy(x: Any) -> np.ndarray:
    """A tensor (any device) or array as a NumPy array, dtype kept."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _attr(value: Any) -> Any:
    """netCDF attributes hold strings and numbers: anything else as JSON text."""
    if isinstance(value, str | int | float | np.number) and not isinstance(value, bool):
        return value
    return json.dumps(value)


#: the group of the unconstrained draws when ``posterior`` holds named constrained values
UNCONSTRAINED = "unconstrained_posterior"
#: the draws per ``constrain`` call in :func:`constrained_draws`
CONSTRAIN_CHUNK = 65536


def constrained_draws(target: Any, samples: Any) -> dict[str, np.ndarray] | None:
    """The named constrained values of ``samples [C, T, D]`` (``{name: (C, T, *shape)}``,
    NumPy, the draws' dtype) when ``target`` has a ``constrain`` method, else ``None``.

    ``constrain`` runs without gradients on the target's device, a chunk of
    :data:`CONSTRAIN_CHUNK` draws at a time.
    """
    constrain = getattr(target, "constrain", None)
    if not callable(constrain):
        return None
    import torch

    x = torch.as_tensor(_numpy(samples))
    c, t, d = x.shape
    buffer = next(iter(getattr(target, "buffers", lambda: iter(()))()), None)
    device = buffer.device if buffer is not None else torch.device("cpu")
    flat = x.reshape(c * t, d)
    parts: dict[str, list[np.ndarray]] = {}
    with torch.no_grad():
        for start in range(0, max(c * t, 1), CONSTRAIN_CHUNK):
            values = constrain(flat[start : start + CONSTRAIN_CHUNK].to(device))
            for name, v in values.items():
                parts.setdefault(name, []).append(_numpy(v.to(x.dtype)))
    return {
        name: np.concatenate(chunks).reshape(c, t, *chunks[0].shape[1:])
        for name, chunks in parts.items()
    }


def build_groups(
    samples: Any,
    log_prob: Any,
    draw_info: Mapping[str, Any],
    attrs: Mapping[str, Any] | None = None,
    chain_index: Any = None,
    dim_names: list[str] | None = None,
    constrained: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``posterior`` and ``sample_stats`` groups as ``xarray.Dataset`` s.

    Args:
        samples: draws ``[C, T, D]`` (tensor or array; its dtype is kept).
        log_prob: ``log pi`` of the draws ``[C, T]``, stored as ``lp``.
        draw_info: per-draw ``[C, T]`` stats (``Run.draw_info``); all-NaN ones are
            left out, counts (:data:`INTEGER_STATS`) stored as ``int64``.
        attrs: ``kernel``, ``target``, ``seed``, ... (``None`` values left out).
        chain_index: the ``chain`` coordinate (default ``0..C-1``).
        dim_names: the ``dim`` coordinate (default ``0..D-1``).
        constrained: named constrained values ``{name: (C, T, *shape)}``
            (:func:`constrained_draws`): then ``posterior`` holds them and ``x`` goes
            to :data:`UNCONSTRAINED`.
    """
    import xarray as xr

    from lightning_ex2 import __version__

    x = _numpy(samples)
    n_chains, n_draws, dim = x.shape
    coords = {
        "chain": np.arange(n_chains) if chain_index is None else _numpy(chain_index),
        "draw": np.arange(n_draws),
    }
    meta = {
        "created_by": f"lightning-ex2 {__version__}",
        "inference_library": "lightning_ex2",
        **{k: _attr(v) for k, v in (attrs or {}).items() if v is not None},
    }
    draws = xr.Dataset(
        {VARIABLE: (("chain", "draw", "dim"), x)},
        coords={**coords, "dim": list(dim_names) if dim_names else np.arange(dim)},
        attrs=meta,
    )
    groups: dict[str, Any] = {"posterior": draws}
    if constrained:
        named = {}
        for name, value in constrained.items():
            v = _numpy(value)
            if v.shape[:2] != (n_chains, n_draws):
                raise ValueError(
                    f"constrained[{name!r}]: shape {v.shape}, expected ({n_chains}, {n_draws}, ...)"
                )
            named[name] = (("chain", "draw", *(f"{name}_dim_{i}" for i in range(v.ndim - 2))), v)
        groups = {"posterior": xr.Dataset(named, coords=coords, attrs=meta), UNCONSTRAINED: draws}
    stats = {"lp": (("chain", "draw"), _numpy(log_prob).astype(x.dtype))}
    for name, value in draw_info.items():
        v = _numpy(value)
        if v.shape != (n_chains, n_draws) or (v.dtype.kind == "f" and np.isnan(v).all()):
            continue
        if name in INTEGER_STATS:
            v = np.rint(v).astype(np.int64)
        elif name in BOOLEAN_STATS:
            v = v.astype(bool)
        stats[name] = (("chain", "draw"), v)
    groups["sample_stats"] = xr.Dataset(stats, coords=coords, attrs=meta)
    return groups


def arviz_major() -> int:
    """The installed ArviZ's major version (0: ``InferenceData``; 1: ``DataTree``)."""
    from importlib.metadata import version

    return int(version("arviz").split(".")[0])


def to_arviz(groups: Mapping[str, Any]):  # type: ignore[no-untyped-def]
    """``arviz.InferenceData`` (ArviZ 0.x) or ``xarray.DataTree`` (ArviZ 1.x) of ``groups``."""
    if arviz_major() >= 1:
        import xarray as xr

        return xr.DataTree.from_dict(dict(groups))
    az = import_arviz()
    return az.InferenceData(**groups)


def save_netcdf(path: str | os.PathLike, groups: Mapping[str, Any]) -> Path:
    """``groups`` (name -> ``xarray.Dataset``) as one netCDF file, atomically.

    Written group by group to a temporary file in the same folder, synced, then
    renamed to ``path`` (the permissions of the umask, as :mod:`lightning_ex2.io`).
    """
    from lightning_ex2.io import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        for i, (name, ds) in enumerate(groups.items()):
            ds.to_netcdf(tmp, mode="w" if i == 0 else "a", group=name, engine=ENGINE)
    return path


def read_netcdf(
    path: str | os.PathLike,
    groups: tuple[str, ...] = ("posterior", "sample_stats"),
    optional: tuple[str, ...] = (UNCONSTRAINED,),
):
    """The ``groups`` of a netCDF file as ``xarray.Dataset`` s (loaded, file closed),
    and those of ``optional`` the file has."""
    import h5py
    import xarray as xr

    with h5py.File(path, "r") as f:
        present = set(f.keys())
    out = {}
    for name in (*groups, *(g for g in optional if g in present and g not in groups)):
        with xr.open_dataset(path, group=name, engine=ENGINE) as ds:
            out[name] = ds.load()
    return out


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

    from lightning_ex2.io import read_manifest

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
