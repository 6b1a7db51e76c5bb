"""Sampling trajectories in a GAN's latent space: image grids, energy / D(G(z)) curves, landscapes.

:class:`SamplingTrajectory` reproduces the trajectory figure of Samsonov et al. 2022
(arXiv 2111.02702, CIFAR-10 figure): the images ``G(z)`` of a few chains (rows) at successive
steps (columns), with the mean energy ``−log π(z)`` and the mean discriminator output
``D(G(z)) = sigmoid(d(G(z)))`` over the chains against the step.
:func:`energy_landscape_figure` reproduces the paper's MNIST energy-landscape figure: latent
samples of several methods projected on a 2-D plane of the latent space, over the contours of
the energy on that plane.

Figures are built with :class:`matplotlib.figure.Figure` on an Agg canvas (never ``pyplot``).

Example:
    >>> import torch
    >>> from lightning_ex2.targets import Gaussian
    >>> fig = energy_landscape_figure(Gaussian(torch.zeros(5), 1.0),
    ...                               {"MALA": torch.randn(100, 5), "i-SIR": torch.randn(50, 5)})
    >>> len([ax for ax in fig.axes if ax.get_label() != "<colorbar>"])
    2
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from matplotlib.figure import Figure
from pytorch_lightning.loggers import TensorBoardLogger
from torch import Tensor, nn

from lightning_ex2.callbacks.plots import _new_figure, _points, _to_numpy, figure_to_array
from lightning_ex2.validation import check_int

__all__ = ["SamplingTrajectory", "energy_landscape_figure", "trajectory_grid"]


def _check_int(value: Any, name: str, minimum: int) -> int:
    return check_int(value, name, "SamplingTrajectory", minimum)


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


def _curves_figure(
    steps: np.ndarray, energy: np.ndarray, dgz: np.ndarray | None, title: str
) -> Figure:
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


class SamplingTrajectory(pl.Callback):
    """Image grid of a few chains over steps, and energy / D(G(z)) curves, for GAN latent targets.

    Needs ``pl_module.target`` with ``decode(z [..., D]) -> [..., C, H, W]`` in ``[-1, 1]``;
    ``discriminator_logit(z) -> [...]`` is optional (without it no D(G(z)) curve).

    **Fit**: after every ``every_n_steps``-th training batch (rank zero) the positions of the
    tracked chains are kept as one column (at most ``max_snapshots``, then every other one is
    dropped) and, over the chains of the batch (at most ``max_curve_chains``), the mean energy
    ``−log π(z)`` (from ``pl_module.chain_log_prob``, free, or ``target.log_prob``) and the mean
    ``D(G(z)) = sigmoid(target.discriminator_logit(z))`` are logged as ``trajectory/energy`` and
    ``trajectory/dgz`` (``on_step``). The grid ``trajectory/images`` — rows = chains, columns =
    ``n_columns`` evenly spaced snapshots, oldest left — is logged at the end of every
    ``log_every_n_epochs``-th epoch (if set) and at the end of ``fit``. With several batches per
    epoch, choose ``every_n_steps`` a multiple of their number so that each column follows a move.

    **Predict**: from the draws ``samples [B, T, D]`` / ``log_prob [B, T]`` of ``predict_step``,
    the grid ``trajectory/predict_images`` (tracked chains × ``n_columns`` evenly spaced draws),
    and curves vs draw index (mean over all chains of this rank for the energy, over the tracked
    chains for D(G(z)), at most ``max_curve_points`` points) as the scalars
    ``trajectory/predict_energy`` / ``trajectory/predict_dgz`` and the figure
    ``trajectory/predict_curves``.

    Tracked chains: ``chains`` (global indices), default the first ``n_chains`` indices seen on
    rank zero. Only a :class:`~pytorch_lightning.loggers.TensorBoardLogger` receives images.

    Args:
        n_chains: rows of the grid when ``chains`` is not given.
        chains: explicit chain indices to follow.
        n_columns: columns of the grid.
        every_n_steps: snapshot / scalar period in training batches.
        log_every_n_epochs: also log the fit grid every this many epochs (``None``: only at the end).
        max_snapshots: memory cap on kept snapshots (``n_chains × D`` numbers each).
        max_curve_chains: chains per batch whose D(G(z)) is evaluated for the curve.
        max_curve_points: points of the predict curves.
    """

    def __init__(
        self,
        n_chains: int = 8,
        chains: Sequence[int] | None = None,
        n_columns: int = 10,
        every_n_steps: int = 10,
        log_every_n_epochs: int | None = None,
        max_snapshots: int = 1000,
        max_curve_chains: int = 256,
        max_curve_points: int = 200,
    ) -> None:
        super().__init__()
        self.n_chains = _check_int(n_chains, "n_chains", 1)
        self.chains = None if chains is None else [_check_int(c, "chains", 0) for c in chains]
        if self.chains is not None and not self.chains:
            raise ValueError("SamplingTrajectory: `chains` must name at least one chain")
        self.n_columns = _check_int(n_columns, "n_columns", 1)
        self.every_n_steps = _check_int(every_n_steps, "every_n_steps", 1)
        self.log_every_n_epochs = (
            None
            if log_every_n_epochs is None
            else _check_int(log_every_n_epochs, "log_every_n_epochs", 1)
        )
        self.max_snapshots = _check_int(max_snapshots, "max_snapshots", 2)
        self.max_curve_chains = _check_int(max_curve_chains, "max_curve_chains", 1)
        self.max_curve_points = _check_int(max_curve_points, "max_curve_points", 2)
        self._reset()

    def _reset(self) -> None:
        self._tracked: Tensor | None = None  # [R] chain indices
        self._lookup: Tensor | None = None  # chain index -> row of _current
        self._current: Tensor | None = None  # [R + 1, D]; row R collects untracked chains
        self._snapshots: list[Tensor] = []
        self._snapshot_steps: list[int] = []
        self._stride = 1  # keep every _stride-th snapshot after thinning
        self._n_batches = 0
        self._predict: list[dict[str, Tensor]] = []

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """No-op: snapshots are not checkpointed."""

    @property
    def snapshots(self) -> tuple[list[int], Tensor | None]:
        """``(steps, positions [R, S, D])`` of the fit snapshots kept so far."""
        if not self._snapshots:
            return [], None
        return list(self._snapshot_steps), torch.stack(self._snapshots, dim=1)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _target(pl_module: pl.LightningModule) -> Any:
        target = getattr(pl_module, "target", None)
        if not callable(getattr(target, "decode", None)):
            raise ValueError(
                "SamplingTrajectory: pl_module.target has no decode(z) -> images (a GAN latent "
                "target such as GANLatentTarget is needed)"
            )
        return target

    def _choose(self, index: Tensor) -> Tensor:
        if self.chains is not None:
            return torch.tensor(self.chains, dtype=torch.long, device=index.device)
        return index.reshape(-1)[: self.n_chains].sort().values

    @staticmethod
    def _tensorboards(trainer: pl.Trainer) -> list[TensorBoardLogger]:
        return [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]

    @torch.no_grad()
    def _dgz(self, target: Any, z: Tensor) -> Tensor | None:
        logit = getattr(target, "discriminator_logit", None)
        if not callable(logit):
            return None
        return torch.sigmoid(logit(z).float())

    # ------------------------------------------------------------------ fit
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._reset()
        self._target(pl_module)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if not trainer.is_global_zero or not isinstance(outputs, Mapping):
            return
        x, index = outputs.get("x"), outputs.get("index")
        if not isinstance(x, Tensor) or not isinstance(index, Tensor) or x.ndim != 2:
            return
        x, index = x.detach(), index.detach().reshape(-1)
        if self._tracked is None:
            self._tracked = self._choose(index)
            self._current = x.new_zeros(self._tracked.numel() + 1, x.shape[1])
            # lookup[i] = row of chain i, R (the spare row) for untracked chains and, in the
            # last entry, for any index out of range; no host sync afterwards
            n_all = int(getattr(pl_module, "n_chains", int(index.max()) + 1))
            n_all = max(n_all, int(self._tracked.max()) + 1)
            self._lookup = torch.full(
                (n_all + 1,), self._tracked.numel(), dtype=torch.long, device=x.device
            )
            self._lookup[self._tracked.to(x.device)] = torch.arange(
                self._tracked.numel(), device=x.device
            )
        assert self._current is not None and self._lookup is not None
        rows = self._lookup[index.clamp(0, self._lookup.numel() - 1)]
        self._current.index_copy_(0, rows, x.to(self._current.dtype))
        self._n_batches += 1
        if (self._n_batches - 1) % self.every_n_steps:
            return
        step = int(trainer.global_step)
        self._add_snapshot(self._current[:-1].clone(), step)
        with torch.no_grad():
            target = self._target(pl_module)
            xs, ids = x[: self.max_curve_chains], index[: self.max_curve_chains]
            chain_lp = getattr(pl_module, "chain_log_prob", None)
            if isinstance(chain_lp, Tensor) and chain_lp.shape[0] > int(ids.max()):
                energy = -chain_lp[ids].float().mean()
            else:
                energy = -target.log_prob(xs).float().mean()
            pl_module.log(
                "trajectory/energy",
                energy,
                on_step=True,
                on_epoch=False,
                batch_size=1,
                rank_zero_only=True,
            )
            dgz = self._dgz(target, xs)
            if dgz is not None:
                pl_module.log(
                    "trajectory/dgz",
                    dgz.mean(),
                    on_step=True,
                    on_epoch=False,
                    batch_size=1,
                    rank_zero_only=True,
                )

    def _add_snapshot(self, z: Tensor, step: int) -> None:
        self._snapshots.append(z)
        self._snapshot_steps.append(step)
        if len(self._snapshots) > self.max_snapshots:  # thin: keep every other snapshot
            self._snapshots = self._snapshots[::2]
            self._snapshot_steps = self._snapshot_steps[::2]

    def _columns(self, n: int) -> list[int]:
        k = min(self.n_columns, n)
        return sorted(set(np.linspace(0, n - 1, k).round().astype(int).tolist()))

    @torch.no_grad()
    def _log_grid(self, trainer: pl.Trainer, pl_module: pl.LightningModule, tag: str) -> None:
        loggers = self._tensorboards(trainer)
        if not loggers or not self._snapshots or not trainer.is_global_zero:
            return
        cols = self._columns(len(self._snapshots))
        z = torch.stack([self._snapshots[c] for c in cols], dim=1)  # [R, K, D]
        images = self._target(pl_module).decode(z)  # [R, K, C, H, W]
        grid = trajectory_grid(images).cpu()
        step = int(trainer.global_step)
        for logger in loggers:
            logger.experiment.add_image(tag, grid, global_step=step, dataformats="CHW")
            logger.experiment.add_text(
                f"{tag}/columns",
                "steps " + ", ".join(str(self._snapshot_steps[c]) for c in cols),
                global_step=step,
            )

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.log_every_n_epochs and (trainer.current_epoch + 1) % self.log_every_n_epochs == 0:
            self._log_grid(trainer, pl_module, "trajectory/images")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._log_grid(trainer, pl_module, "trajectory/images")
        for logger in self._tensorboards(trainer):
            logger.experiment.flush()

    # ------------------------------------------------------------------ predict
    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._predict = []

    def on_predict_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if trainer.is_global_zero and isinstance(outputs, Mapping) and "samples" in outputs:
            keep = {
                k: outputs[k].detach() for k in ("index", "samples", "log_prob") if k in outputs
            }
            self._predict.append(keep)

    @torch.no_grad()
    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero or not self._predict:
            return
        loggers = self._tensorboards(trainer)
        target = self._target(pl_module)
        index = torch.cat([o["index"].reshape(-1) for o in self._predict])
        samples = torch.cat([o["samples"] for o in self._predict])  # [B, T, D]
        log_prob = None
        if all("log_prob" in o for o in self._predict):
            log_prob = torch.cat([o["log_prob"] for o in self._predict])  # [B, T]
        self._predict = []
        if self.chains is not None:
            wanted = torch.tensor(self.chains, device=index.device)
            rows = (index[:, None] == wanted[None]).nonzero()[:, 0]
        else:
            rows = index.argsort()[: self.n_chains]
        if rows.numel() == 0:
            return
        n_draws = samples.shape[1]
        cols = torch.tensor(self._columns(n_draws), device=samples.device)
        tracked = samples.index_select(0, rows.to(samples.device))  # [R, T, D]
        step = int(trainer.global_step)
        grid = trajectory_grid(target.decode(tracked.index_select(1, cols))).cpu()
        points = torch.tensor(self._curve_points(n_draws), device=samples.device)
        if log_prob is not None:
            energy = -log_prob.index_select(1, points.to(log_prob.device)).float().mean(0)
        else:
            energy = -target.log_prob(samples.index_select(1, points)).float().mean(0)
        dgz = self._dgz(target, tracked.index_select(1, points))  # [R, P] or None
        dgz_mean = None if dgz is None else dgz.mean(0)
        steps = points.cpu().numpy()
        fig = _curves_figure(
            steps,
            energy.cpu().double().numpy(),
            None if dgz_mean is None else dgz_mean.cpu().double().numpy(),
            title=f"{samples.shape[0]} chains (D(G(z)): {rows.numel()} tracked)",
        )
        curves = figure_to_array(fig)
        for logger in loggers:
            w = logger.experiment
            w.add_image("trajectory/predict_images", grid, global_step=step, dataformats="CHW")
            w.add_image("trajectory/predict_curves", curves, global_step=step, dataformats="HWC")
            for i, t in enumerate(steps.tolist()):
                w.add_scalar("trajectory/predict_energy", float(energy[i]), int(t))
                if dgz_mean is not None:
                    w.add_scalar("trajectory/predict_dgz", float(dgz_mean[i]), int(t))
            w.flush()

    def _curve_points(self, n: int) -> list[int]:
        k = min(self.max_curve_points, n)
        return sorted(set(np.linspace(0, n - 1, k).round().astype(int).tolist()))


# ============================================================================ energy landscape
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
    target_d = getattr(target, "dim", dim)
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
