"""Argument checks whose errors name the argument (a leaf module)."""

from __future__ import annotations

import math
import operator
from typing import Any


def check_int(value: Any, name: str, cls: str, minimum: int) -> int:
    """``value`` as an ``int >= minimum``; ValueError naming ``name`` otherwise."""
    try:
        out = operator.index(value)
    except TypeError:
        out = None
    if out is None or isinstance(value, bool) or out < minimum:
        raise ValueError(f"{cls}: `{name}` must be an int >= {minimum}, got {value!r}")
    return out


def _float_or_nan(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def check_positive(value: Any, name: str, cls: str) -> float:
    """``value`` as a finite ``float > 0``; ValueError naming ``name`` otherwise."""
    out = _float_or_nan(value)
    if not (math.isfinite(out) and out > 0):
        raise ValueError(f"{cls}: `{name}` must be a finite positive number, got {value!r}")
    return out


def check_finite(value: Any, name: str, cls: str) -> float:
    """``value`` as a finite ``float``; ValueError naming ``name`` otherwise."""
    out = _float_or_nan(value)
    if not math.isfinite(out):
        raise ValueError(f"{cls}: `{name}` must be a finite number, got {value!r}")
    return out


def run_bytes(
    n_chains: int, dim: int, n_particles: int | None = None, n_draws: int = 0, itemsize: int = 4
) -> int:
    """A lower estimate of a run's memory: the chain state (points, gradients,
    log-densities, a proposed copy), i-SIR's particle buffers (``N`` particles per chain
    and their noise and weights) and the kept draws with their per-draw stats."""
    state = n_chains * (dim + 1) * 4
    particles = n_chains * (n_particles or 0) * (dim + 1) * 2
    draws = n_chains * n_draws * (dim + 4)
    return (state + particles + draws) * itemsize


def check_memory(
    n_chains: int,
    dim: int,
    cls: str,
    n_particles: int | None = None,
    n_draws: int = 0,
    itemsize: int = 4,
    names: str = "`n_chains`",
    device: Any = None,
) -> None:
    """ValueError naming the sizes and the estimate when :func:`run_bytes` exceeds the
    memory the device can still give (CPU: ``MemAvailable`` and the cgroup limit; CUDA:
    the free memory); nothing when that is unknown."""
    needed = run_bytes(n_chains, dim, n_particles, n_draws, itemsize)
    free = _free_memory(device)
    if free is None or needed <= free:
        return
    sizes = f"{n_chains} chains x dim {dim}"
    if n_particles:
        sizes += f" x {n_particles} particles"
    if n_draws:
        sizes += f", keeping {n_draws} draws per chain"
    parts = ["the chains' state"]
    if n_particles:
        parts.append("particle buffers")
    if n_draws:
        parts.append("kept draws")
    raise ValueError(
        f"{cls}: {sizes} need at least {needed / 2**30:.3g} GiB of memory "
        f"({', '.join(parts)}), more than the {free / 2**30:.3g} GiB available; lower {names}"
    )


def _free_memory(device: Any) -> int | None:
    kind = getattr(device, "type", str(device) if device is not None else "cpu")
    if kind == "cuda":
        import torch

        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    if kind != "cpu":
        return None
    from lightning_ex2.environment import available_memory

    return available_memory()
