"""Figures of MCMC output and of the paper, built headless (no ``pyplot``).

* :func:`scatter_figure`, :func:`trace_figure`: 2-D scatter / 1-D histogram and trace plots;
* :func:`rank_figure`, :func:`pair_figure`: rank plots (Vehtari et al. 2021) and a pair plot,
  drawn like ArviZ's ``plot_rank`` / ``plot_pair`` (whose API differs between ArviZ 0.x
  and 1.x), headless;
* :func:`trajectory_grid`: images of chains (rows) over steps (columns) as one grid;
* :func:`energy_landscape_figure`: the paper's MNIST energy-landscape figure (Samsonov et
  al. 2022, arXiv 2111.02702): latent samples of several methods projected on a 2-D plane
  of the latent space, over the contours of the energy on that plane;
* :func:`figure_to_array`, :func:`save_figure` (atomic).

Figures are built with :class:`matplotlib.figure.Figure` and an Agg canvas directly, never
through ``pyplot``: no global figure registry, no GUI backend, safe in worker threads and
whatever backend the user selected. Every function accepts numpy arrays or torch tensors
(any device / dtype; copied to CPU ``float64``). Callbacks and scripts call them; they
call nothing above them.

Example:
    >>> import numpy as np, torch
    >>> from lightning_ex2.targets import Gaussian
    >>> fig = scatter_figure(np.random.default_rng(0).normal(size=(100, 3)), dims=(0, 2))
    >>> len(fig.axes)
    1
    >>> fig = energy_landscape_figure(Gaussian(torch.zeros(5), 1.0),
    ...                               {"MALA": torch.randn(100, 5), "i-SIR": torch.randn(50, 5)})
    >>> len([ax for ax in fig.axes if ax.get_label() != "<colorbar>"])
    2
"""

from __future__ import annotations

import operator
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor, nn

from lightning_ex2.protocols import Target

__all__ = [
    "curves_figure",
    "energy_landscape_figure",
    "figure_to_array",
    "pair_figure",
    "rank_figure",
    "save_figure",
    "scatter_figure",
    "trace_figure",
    "trajectory_grid",
]

_DPI = 100


def _to_numpy(x: Any, name: str) -> np.ndarray:
    """numpy array / torch tensor / array-like -> CPU float64 numpy array."""
    if isinstance(x, torch.Tensor):
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
        layers = [(x, "chains", 3, 0.8, "tab:blue")]
        if ref is not None and ref.size:  # drawn first, below the chains
            layers.insert(0, (ref, reference_label, 6, 0.25, "tab:orange"))
        for pts, label, size, alpha, color in layers:
            ax.scatter(
                pts[:, i], pts[:, j], s=size, alpha=alpha, color=color, linewidths=0,
                label=f"{label} ({pts.shape[0]})",
            )  # fmt: skip
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
    arr = _chains_draws_dims(trace)
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


def _chains_draws_dims(trace: Any) -> np.ndarray:
    arr = _to_numpy(trace, "trace")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or 0 in arr.shape:
        raise ValueError(
            f"`trace` must be shaped (chain, draw, dim) or (chain, draw), got {tuple(arr.shape)}"
        )
    return arr


def rank_figure(
    trace: Any, max_dims: int = 4, max_chains: int = 8, bins: int = 20, title: str | None = None
) -> Figure:
    """Rank plot: per coordinate, the histogram of each chain's ranks among all draws.

    The draws of all chains are ranked together (ties averaged); for chains that sample
    the same distribution every chain's histogram is flat (the dashed line). One chain
    stuck in a mode shows as a histogram piled at one end. One row per chain (the first
    ``max_chains``), one panel per coordinate (the first ``max_dims``), as ArviZ's
    ``plot_rank`` (Vehtari et al. 2021, Sec. 4.2).

    Args:
        trace: draws ``(chain, draw, dim)`` or ``(chain, draw)``.
        max_dims, max_chains: how many coordinates / chains to draw.
        bins: rank bins.
        title: figure title.
    """
    from scipy.stats import rankdata

    arr = _chains_draws_dims(trace)
    n_chain, n_draw, dim = arr.shape
    dims, chains = range(min(dim, max_dims)), range(min(n_chain, max_chains))
    fig = _new_figure(3.2 * len(dims) + 0.8, 1.0 + 0.45 * len(chains))
    axes = fig.subplots(1, len(dims), squeeze=False, sharey=True)[0]
    edges = np.linspace(0.0, n_chain * n_draw, bins + 1)
    expected = n_draw / bins
    for ax, d in zip(axes, dims):
        ranks = rankdata(arr[:, :, d], axis=None).reshape(n_chain, n_draw)
        for row, c in enumerate(chains):
            counts, _ = np.histogram(ranks[c], bins=edges)
            ax.bar(edges[:-1], 0.4 * counts / expected, width=np.diff(edges), align="edge",
                   bottom=row, color=f"C{row % 10}", edgecolor="white", linewidth=0.3)  # fmt: skip
            ax.axhline(row + 0.4, color="black", linestyle="--", linewidth=0.6)
        ax.set_xlabel(f"rank of x[{d}]")
        ax.set_xlim(0.0, n_chain * n_draw)
    axes[0].set_yticks([row + 0.2 for row in range(len(chains))])
    axes[0].set_yticklabels([f"chain {c}" for c in chains])
    fig.suptitle(title or "rank plot (flat = chains agree)")
    return fig


def pair_figure(trace: Any, max_points: int = 2000, title: str | None = None) -> Figure:
    """Pair plot of the pooled draws: histograms on the diagonal, scatter below it.

    Args:
        trace: draws ``(chain, draw, dim)`` with ``2 <= dim <= 8``.
        max_points: points drawn per panel (a fixed-seed subsample of the pooled draws).
        title: figure title.
    """
    arr = _chains_draws_dims(trace)
    dim = arr.shape[-1]
    if not 2 <= dim <= 8:
        raise ValueError(f"`trace` must have 2 to 8 coordinates for a pair plot, got {dim}")
    pooled = _subsample(arr.reshape(-1, dim), max_points, seed=0)
    fig = _new_figure(1.0 + 1.8 * dim, 0.6 + 1.8 * dim)
    axes = fig.subplots(dim, dim, squeeze=False)
    for i in range(dim):
        for j in range(dim):
            ax = axes[i, j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                ax.hist(pooled[:, i], bins=40, color="C0")
                ax.set_yticks([])
            else:
                ax.scatter(pooled[:, j], pooled[:, i], s=2, alpha=0.4, color="C0", linewidths=0)
            if i == dim - 1:
                ax.set_xlabel(f"x[{j}]")
            if j == 0 and i > 0:
                ax.set_ylabel(f"x[{i}]")
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


def _device_dtype(module: Any) -> tuple[torch.device, torch.dtype]:
    if isinstance(module, nn.Module):
        for t in (*module.parameters(), *module.buffers()):
            if t.is_floating_point():
                return t.device, t.dtype
    return torch.device("cpu"), torch.get_default_dtype()


def trajectory_grid(images: Tensor, padding: int = 1, pad_value: float = 1.0) -> Tensor:
    """Tile ``images [R, K, C, H, W]`` in ``[-1, 1]`` (R rows, K columns) into ``[C, H', W']``.

    The result lies in ``[0, 1]`` (TensorBoard's ``add_image`` convention, ``dataformats="CHW"``)
    with ``padding`` pixels of ``pad_value`` between and around the cells.
    """
    if images.ndim != 5:
        raise ValueError(
            f"trajectory_grid: expected images [R, K, C, H, W], got {tuple(images.shape)}"
        )
    r, k, c, h, w = images.shape
    x = ((images.detach().float() + 1.0) / 2.0).clamp(0.0, 1.0)
    x = torch.nn.functional.pad(x, (padding, 0, padding, 0), value=pad_value)  # left/top pads
    grid = x.permute(2, 0, 3, 1, 4).reshape(c, r * (h + padding), k * (w + padding))
    return torch.nn.functional.pad(grid, (0, padding, 0, padding), value=pad_value)


def curves_figure(
    steps: np.ndarray, energy: np.ndarray, dgz: np.ndarray | None, title: str
) -> Figure:
    """Mean energy (and ``D(G(z))``) of chains against the step, stacked panels."""
    n = 1 if dgz is None else 2
    fig = _new_figure(6.0, 1.2 + 1.8 * n)
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    axes[0].plot(steps, energy, color="tab:blue")
    axes[0].set_ylabel("energy −log π(z)")
    if dgz is not None:
        axes[1].plot(steps, dgz, color="tab:red")
        axes[1].set_ylabel("D(G(z))")
    axes[-1].set_xlabel("step")
    fig.suptitle(title)
    return fig


def _plane(pooled: np.ndarray, plane: Sequence[Any] | None) -> tuple[np.ndarray, np.ndarray, str]:
    """``(origin [D], basis [2, D] orthonormal, description)`` of the projection plane."""
    dim = pooled.shape[1]
    if plane is None:
        if dim == 2:
            return np.zeros(2), np.eye(2), "coordinates"
        origin = pooled.mean(0)
        # top-2 principal directions of the pooled samples
        _, _, vt = np.linalg.svd(pooled - origin, full_matrices=False)
        basis = vt[:2]
        if basis.shape[0] < 2:  # fewer than 2 samples: complete with a coordinate axis
            basis = np.vstack([basis, np.eye(dim)[: 2 - basis.shape[0]]])
        desc = "PCA"
    else:
        parts = [_to_numpy(p, "plane").reshape(-1) for p in plane]
        if len(parts) == 2:
            origin, dirs = pooled.mean(0), parts
        elif len(parts) == 3:
            origin, dirs = parts[0], parts[1:]
        else:
            raise ValueError("`plane` must be (u, v) or (origin, u, v) latent vectors")
        if any(p.shape != (dim,) for p in parts):
            raise ValueError(f"`plane` vectors must have the latent dimension {dim}")
        basis = np.stack(dirs)
        desc = "given plane"
    # Gram-Schmidt (QR) so the axes are orthonormal and distances are latent distances
    q, r = np.linalg.qr(basis.T)
    if abs(r[1, 1]) < 1e-12 * max(abs(r[0, 0]), 1e-300):
        raise ValueError("`plane`: the two directions are parallel")
    basis = (q * np.sign(np.diag(r))).T
    return origin, basis, desc


def energy_landscape_figure(
    target: Any,
    samples_by_method: Mapping[str, Any],
    plane: Sequence[Any] | None = None,
    grid_size: int = 60,
    extent: Sequence[float] | None = None,
    n_levels: int = 20,
    max_points: int = 2000,
    batch_size: int = 4096,
    title: str | None = None,
) -> Figure:
    """Latent samples of several methods on a 2-D plane over the energy contours on that plane.

    The paper's MNIST energy-landscape figure (Samsonov et al. 2022, arXiv 2111.02702): one
    panel per method, each showing the filled contours of ``E(s, t) = −log π(o + s·u + t·v)``
    on a ``grid_size × grid_size`` grid of the plane and the method's samples projected on it,
    ``((x − o)·u, (x − o)·v)``.

    The plane ``(o, u, v)`` (``u, v`` orthonormalized): ``plane=None`` gives the coordinate
    plane through 0 for ``D == 2`` and, for ``D > 2``, the top-2 principal directions of all
    methods' samples pooled, through their mean; ``plane=(u, v)`` two directions through that
    mean; ``plane=(o, u, v)`` an explicit origin. The plane through three latent points
    ``p0, p1, p2`` is ``(p0, p1 − p0, p2 − p0)``. Note that the energy is a *slice* of π on
    the plane, while the points are *projections*: for ``D > 2`` a point need not lie in a
    low-energy region of the slice.

    Args:
        target: ``log_prob(x [..., D]) -> [...]`` (an ``nn.Module`` target or any object).
        samples_by_method: ``{name: samples [n, D]}`` (numpy arrays or tensors).
        plane: see above.
        grid_size: grid points per axis.
        extent: ``(s_min, s_max, t_min, t_max)``; default the projected samples' range
            padded by 15 %.
        n_levels: contour levels (at quantiles of the finite energies, so the structure
            of deep wells stays visible).
        max_points: per-method cap on plotted points (evenly thinned).
        batch_size: grid points per ``log_prob`` call.
        title: figure title.

    Returns:
        A :class:`~matplotlib.figure.Figure` with one axes per method (Agg canvas attached);
        each has a filled contour set; a shared colorbar shows the energy.

    Raises:
        ValueError: on empty input, dimension mismatches or a degenerate plane.
    """
    if not samples_by_method:
        raise ValueError("`samples_by_method` must hold at least one method")
    clouds = {str(k): _points(v, f"samples_by_method[{k!r}]") for k, v in samples_by_method.items()}
    dims = {c.shape[1] for c in clouds.values()}
    if len(dims) != 1:
        raise ValueError(f"`samples_by_method`: all samples must share one dimension, got {dims}")
    dim = dims.pop()
    target_d = target.dim if isinstance(target, Target) else dim
    if isinstance(target_d, int) and target_d != dim:
        raise ValueError(f"samples have dimension {dim}, the target has dimension {target_d}")
    if dim < 2:
        raise ValueError("energy_landscape_figure needs a latent dimension >= 2")
    grid_size = int(grid_size)
    if grid_size < 2:
        raise ValueError(f"`grid_size` must be >= 2, got {grid_size}")
    finite = {k: c[np.isfinite(c).all(axis=1)] for k, c in clouds.items()}
    pooled = np.concatenate(list(finite.values()))
    if pooled.shape[0] == 0 and plane is None and dim > 2:
        raise ValueError("no finite samples to fit the projection plane on")
    origin, basis, plane_desc = _plane(pooled if pooled.size else np.zeros((1, dim)), plane)
    projected = {k: (c - origin) @ basis.T for k, c in finite.items()}

    if extent is None:
        allp = np.concatenate(list(projected.values())) if pooled.size else np.zeros((1, 2))
        lo, hi = allp.min(0), allp.max(0)
        span = np.maximum(hi - lo, 1e-6)
        pad = 0.15 * span + 0.5 * (span < 1e-3)
        extent = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
    if len(extent) != 4:
        raise ValueError(f"`extent` must be (s_min, s_max, t_min, t_max), got {extent!r}")
    s = np.linspace(extent[0], extent[1], grid_size)
    t = np.linspace(extent[2], extent[3], grid_size)
    ss, tt = np.meshgrid(s, t)  # [G, G], rows = t
    points = origin + ss.reshape(-1, 1) * basis[0] + tt.reshape(-1, 1) * basis[1]  # [G², D]

    device, dtype = _device_dtype(target)
    with torch.no_grad():
        z = torch.as_tensor(points, dtype=dtype, device=device)
        lp = torch.cat([target.log_prob(chunk).reshape(-1) for chunk in z.split(batch_size)])
    energy = (-lp).double().cpu().numpy().reshape(grid_size, grid_size)
    ok = np.isfinite(energy)
    if not ok.any():
        raise ValueError("the energy is non-finite everywhere on the plane")
    levels = np.unique(np.quantile(energy[ok], np.linspace(0.0, 1.0, max(int(n_levels), 2) + 1)))
    if levels.size < 2:
        levels = np.array([levels[0] - 0.5, levels[0] + 0.5])
    masked = np.ma.masked_invalid(energy)

    n = len(projected)
    ncols = min(n, 3)
    nrows = -(-n // ncols)
    fig = _new_figure(3.6 * ncols + 0.8, 3.4 * nrows + (0.4 if title else 0.0))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False).ravel())
    contour = None
    colors = ("tab:red", "tab:blue", "tab:green", "tab:orange", "tab:purple", "tab:brown")
    for i, (ax, (name, pts)) in enumerate(zip(axes, projected.items())):
        contour = ax.contourf(ss, tt, masked, levels=levels, cmap="viridis_r", extend="both")
        ax.contour(ss, tt, masked, levels=levels, colors="k", linewidths=0.3, alpha=0.4)
        if pts.shape[0] > max_points:
            pts = pts[np.linspace(0, pts.shape[0] - 1, max_points).round().astype(int)]
        ax.scatter(
            pts[:, 0],
            pts[:, 1],
            s=5,
            color=colors[i % len(colors)],
            alpha=0.8,
            linewidths=0,
            label=f"{name} ({pts.shape[0]})",
        )
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_title(name)
        ax.set_xlabel("u" if plane_desc != "coordinates" else "x[0]")
        ax.set_ylabel("v" if plane_desc != "coordinates" else "x[1]")
    for ax in axes[n:]:
        ax.set_visible(False)
    if contour is not None:
        fig.colorbar(contour, ax=list(axes[:n]), label="energy −log π", shrink=0.9)
    fig.suptitle(title or f"energy on the {plane_desc} plane (D = {dim})")
    return fig
