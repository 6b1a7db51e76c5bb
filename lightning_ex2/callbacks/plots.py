"""Headless matplotlib figures of MCMC output: 2-D scatter / 1-D histogram and trace plots.

Figures are built with :class:`matplotlib.figure.Figure` and an Agg canvas directly, never
through ``pyplot``: no global figure registry, no GUI backend, safe in worker threads and
whatever backend the user selected.  Every function accepts numpy arrays or torch tensors
(any device / dtype; copied to CPU ``float64``).

Example:
    >>> import numpy as np
    >>> fig = scatter_figure(np.random.default_rng(0).normal(size=(100, 3)), dims=(0, 2))
    >>> len(fig.axes)
    1
"""

from __future__ import annotations

import operator
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["figure_to_array", "save_figure", "scatter_figure", "trace_figure"]

_DPI = 100


def _to_numpy(x: Any, name: str) -> np.ndarray:
    """numpy array / torch tensor / array-like -> CPU float64 numpy array."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor without importing torch
        x = x.detach().cpu().double().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`{name}` must be convertible to a float array, got {type(x)!r}") from exc


def _points(x: Any, name: str) -> np.ndarray:
    """A point cloud as ``[n, D]`` (a 1-D array is ``n`` points in one dimension)."""
    arr = _to_numpy(x, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"`{name}` must be shaped [n, D] (or [n]), got shape {tuple(arr.shape)}")
    return arr


def _subsample(x: np.ndarray, max_points: int, seed: int) -> np.ndarray:
    """At most ``max_points`` rows of ``x``, chosen without replacement, in their original order."""
    if x.shape[0] <= max_points:
        return x
    idx = np.sort(np.random.default_rng(seed).choice(x.shape[0], size=max_points, replace=False))
    return x[idx]


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    return fig


def _index(value: Any, name: str) -> int:
    try:
        out = operator.index(value)
    except TypeError:
        out = None
    if out is None or isinstance(value, bool) or out < 0:
        raise ValueError(f"`{name}` must contain non-negative ints, got {value!r}")
    return out


def scatter_figure(
    samples: Any,
    reference: Any | None = None,
    dims: Sequence[int] = (0, 1),
    title: str | None = None,
    reference_label: str = "exact",
    max_points: int = 5000,
    seed: int = 0,
) -> Figure:
    """Chain samples (small dark dots) over reference samples (faint, larger dots).

    For ``D >= 2`` the 2-D projection on coordinates ``dims = (i, j)`` is drawn; for ``D == 1``
    (where ``dims`` is ignored) density histograms of the samples and of the reference are
    overlaid instead.  Each cloud is subsampled to at most ``max_points`` points with
    ``numpy.random.default_rng(seed)`` (deterministic).  Non-finite rows are dropped.

    Args:
        samples: ``[n, D]`` (or ``[n]``) chain positions.
        reference: optional ``[m, D]`` samples of the target or of a proposal / flow.
        dims: the two coordinates to project on (``D >= 2`` only).
        title: axes title.
        reference_label: legend label of ``reference`` (``"exact"``, ``"flow"``, ...).
        max_points: subsampling cap per cloud (``>= 1``).
        seed: seed of the subsampling.

    Returns:
        A :class:`~matplotlib.figure.Figure` with one axes (Agg canvas attached).

    Raises:
        ValueError: naming ``samples`` / ``reference`` / ``dims`` / ``max_points`` on bad input.
    """
    x = _points(samples, "samples")
    ref = None if reference is None else _points(reference, "reference")
    dim = x.shape[1]
    if ref is not None and ref.shape[1] != dim:
        raise ValueError(
            f"`reference` must have the same dimension as `samples` ({dim}), got {ref.shape[1]}"
        )
    if isinstance(max_points, bool) or int(max_points) != max_points or max_points < 1:
        raise ValueError(f"`max_points` must be a positive int, got {max_points!r}")
    max_points = int(max_points)

    x = _subsample(x[np.isfinite(x).all(axis=1)], max_points, seed)
    if ref is not None:
        ref = _subsample(ref[np.isfinite(ref).all(axis=1)], max_points, seed + 1)

    fig = _new_figure(5.0, 4.5)
    ax = fig.subplots()
    if dim == 1:
        pooled = x[:, 0] if ref is None else np.concatenate([x[:, 0], ref[:, 0]])
        if pooled.size:
            lo, hi = float(pooled.min()), float(pooled.max())
            if hi <= lo:
                lo, hi = lo - 0.5, hi + 0.5
            edges = np.linspace(lo, hi, 51)
            if ref is not None and ref.size:
                ax.hist(
                    ref[:, 0],
                    bins=edges,
                    density=True,
                    alpha=0.35,
                    color="tab:orange",
                    label=f"{reference_label} ({ref.shape[0]})",
                )
            if x.size:
                ax.hist(
                    x[:, 0],
                    bins=edges,
                    density=True,
                    histtype="step",
                    color="tab:blue",
                    linewidth=1.5,
                    label=f"chains ({x.shape[0]})",
                )
        ax.set_xlabel("x[0]")
        ax.set_ylabel("density")
    else:
        if len(dims) != 2:
            raise ValueError(f"`dims` must be a pair of coordinates, got {tuple(dims)!r}")
        i, j = (_index(d, "dims") for d in dims)
        if i >= dim or j >= dim:
            raise ValueError(f"`dims` {tuple(dims)} out of range for dimension {dim}")
        if ref is not None and ref.size:
            ax.scatter(
                ref[:, i],
                ref[:, j],
                s=6,
                alpha=0.25,
                color="tab:orange",
                linewidths=0,
                label=f"{reference_label} ({ref.shape[0]})",
            )
        ax.scatter(
            x[:, i],
            x[:, j],
            s=3,
            alpha=0.8,
            color="tab:blue",
            linewidths=0,
            label=f"chains ({x.shape[0]})",
        )
        ax.set_xlabel(f"x[{i}]")
        ax.set_ylabel(f"x[{j}]")
    ax.legend(loc="upper right", fontsize="small", markerscale=2.0)
    if title is not None:
        ax.set_title(title)
    return fig


def trace_figure(
    trace: Any,
    chains: Sequence[int] = (0, 1, 2, 3),
    dims: Sequence[int] = (0,),
    title: str | None = None,
    start: int = 0,
    xlabel: str = "draw",
) -> Figure:
    """Trace plot: one subplot per coordinate in ``dims``, one line per chain in ``chains``.

    Args:
        trace: draws in ArviZ order ``(chain, draw, dim)``; a 2-D ``(chain, draw)`` array is
            read as ``dim == 1``.
        chains: chain indices to draw; indices ``>= n_chain`` are skipped (so the default
            works with fewer than 4 chains), but at least one must remain.
        dims: coordinates to draw, each ``< dim`` (one subplot each, in this order).
        title: figure title.
        start: x-coordinate of the first draw (e.g. its sweep number).
        xlabel: label of the shared x-axis.

    Returns:
        A :class:`~matplotlib.figure.Figure` with ``len(dims)`` axes sharing the draw axis.

    Raises:
        ValueError: naming ``trace`` / ``chains`` / ``dims`` on bad input.
    """
    arr = _to_numpy(trace, "trace")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or 0 in arr.shape:
        raise ValueError(
            f"`trace` must be shaped (chain, draw, dim) or (chain, draw), got {tuple(arr.shape)}"
        )
    n_chain, n_draw, dim = arr.shape
    chain_ids = [c for c in (_index(c, "chains") for c in chains) if c < n_chain]
    if not chain_ids:
        raise ValueError(f"`chains` {tuple(chains)!r} selects none of the {n_chain} chains")
    dim_ids = [_index(d, "dims") for d in dims]
    if not dim_ids:
        raise ValueError("`dims` must name at least one coordinate")
    if max(dim_ids) >= dim:
        raise ValueError(f"`dims` {tuple(dims)!r} out of range for dimension {dim}")

    fig = _new_figure(8.0, 1.2 + 1.6 * len(dim_ids))
    axes = fig.subplots(len(dim_ids), 1, sharex=True, squeeze=False)[:, 0]
    steps = int(start) + np.arange(n_draw)
    for ax, d in zip(axes, dim_ids):
        for c in chain_ids:
            ax.plot(steps, arr[c, :, d], linewidth=0.8, label=f"chain {c}")
        ax.set_ylabel(f"x[{d}]")
    axes[0].legend(loc="upper right", fontsize="x-small", ncol=min(len(chain_ids), 4))
    axes[-1].set_xlabel(xlabel)
    if title is not None:
        fig.suptitle(title)
    return fig


def figure_to_array(fig: Figure) -> np.ndarray:
    """Render ``fig`` with Agg and return its pixels as ``uint8 [H, W, 3]`` (RGB)."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Write ``fig`` as a PNG to ``path`` atomically.

    The image is written to ``path + ".tmp"`` in the same folder (created if missing) and moved
    into place with :func:`os.replace`, so readers never see a partial file; the temporary file
    is removed if rendering fails.
    """
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            fig.savefig(f, format="png")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
