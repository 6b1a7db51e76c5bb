"""Draws as ArviZ data: the groups of ``samples.nc``, ``Run.to_arviz()``, the netCDF reader.

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
netCDF4 C library needed), to a temporary file renamed into place
(:func:`lightning_ex2.output.files.save_netcdf`); :func:`lightning_ex2.output.files.load_output_set` reads a
whole set back. This module imports nothing of :mod:`lightning_ex2.output.files`.

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
from typing import Any

import numpy as np

from lightning_ex2.diagnostics.summary import import_arviz
from lightning_ex2.protocols import target_hook
from lightning_ex2.version import __version__

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
    constrain = target_hook(target, "constrain")
    if constrain is None:
        return None
    import torch

    x = torch.as_tensor(_numpy(samples))
    c, t, d = x.shape
    buffers = target.buffers() if isinstance(target, torch.nn.Module) else iter(())
    device = next((b.device for b in buffers), torch.device("cpu"))
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
