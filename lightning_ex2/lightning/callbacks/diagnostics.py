"""Periodic convergence / accuracy diagnostics of the chains during ``Trainer.fit``.

:class:`ChainDiagnostics` observes the chains and never steers them: it reads the positions
that ``training_step`` returns, draws its random numbers from private generators (the global
RNG streams, hence the chains' trajectories, are unchanged by it) and modifies no state of the
LightningModule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor

from lightning_ex2.diagnostics import emd, ess, rhat
from lightning_ex2.lightning.compat import logged_step
from lightning_ex2.lightning.data import merge_owned_rows
from lightning_ex2.lightning.module import MCMCSampler
from lightning_ex2.output.figures import figure_to_array, scatter_figure, trace_figure
from lightning_ex2.targets import has_sampler
from lightning_ex2.validation import check_int

__all__ = ["ChainDiagnostics"]

_MIN_DRAWS = 4  # ess / rhat need at least 4 draws per chain


def _check_int(value: Any, name: str, minimum: int) -> int:
    return check_int(value, name, "ChainDiagnostics", minimum)


def _module_device(module: Any) -> torch.device:
    """Device of ``module``'s first buffer / parameter (CPU when it has none)."""
    if isinstance(module, torch.nn.Module):
        for t in module.buffers():
            return t.device
        for t in module.parameters():
            return t.device
    return torch.device("cpu")


def _draw(sampler: Any, n: int, device: torch.device, seed: int) -> Tensor:
    """``sampler(n, generator=...)`` with a private seeded generator on ``device``.

    Samplers that take no ``generator`` run inside :func:`torch.random.fork_rng`, so the global
    RNG state is restored afterwards either way.
    """
    try:
        gen = torch.Generator(device=device).manual_seed(seed)
        return sampler(n, generator=gen)
    except TypeError:
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return sampler(n)


class ChainDiagnostics(pl.Callback):
    """Log ESS, R-hat, EMD to exact samples, and chain figures every ``every_n_epochs`` epochs.

    An *epoch* is one sweep over all chains (one MCMC move per chain).  ``training_step`` must
    return ``{"x": Tensor [B, D], "index": LongTensor [B]}``: the positions of the chains of the
    batch after the move and their chain indices (a batch may be all chains or a block).

    **Buffer.**  After every batch the positions of the chains with index ``< max_chains`` are
    copied, on the module's device and without host synchronisation, into a ring buffer
    holding the last ``trace_length`` sweeps (one slot per epoch; a chain not visited during an
    epoch keeps its previous position).

    **Logged** at the end of every ``every_n_epochs``-th epoch, once the buffer holds at least 4
    sweeps, on global rank zero only (``pl_module.log(..., on_epoch=True, rank_zero_only=True)``,
    so the x-axis is the one Lightning uses for epoch-level metrics):

    * ``diagnostics/ess``: split-chain ESS of the mean (:func:`lightning_ex2.diagnostics.ess`) of the
      buffered trace ``(chain, draw, dim)``, averaged over coordinates (``nan`` if a coordinate
      never moved);
    * ``diagnostics/rhat``: split R-hat (:func:`lightning_ex2.diagnostics.rhat`), max over coordinates;

        These two are the classic definitions, ArviZ's ``ess(method="mean")`` and
        ``rhat(method="split")`` (``summary.json``'s ``ess_geyer_mean`` and
        ``rhat_split_max``), not the bulk ESS and rank-normalized R-hat by which ``sample``
        judges convergence (``ess_bulk_min``, ``rhat_max``);

    * ``diagnostics/emd``: only when the target has an exact ``sample`` — squared 2-Wasserstein
      distance (:func:`lightning_ex2.diagnostics.emd`) between the current positions of the
      buffered chains and ``n_reference`` exact samples (drawn once with a fixed seed, cached);
    * ``diagnostics/emd_exact``: logged once (first evaluation) — the same EMD between a second,
      independent exact sample of the same size as the chains and the reference: the noise
      floor ``diagnostics/emd`` can reach.

    **Figures** (when ``log_figures`` and a :class:`~pytorch_lightning.loggers.TensorBoardLogger`
    is attached; same step as the scalars), as TensorBoard images:

    * ``chains/scatter``: current positions projected on ``dims`` (histogram when ``D == 1``)
      over the exact reference samples, or else over ``n_reference`` samples of
      ``pl_module.kernel.proposal`` (labelled "flow" / "proposal") when it has a ``sample``;
    * ``chains/trace``: traces of the first 4 buffered chains for the coordinates ``dims``.

    Args:
        every_n_epochs: evaluation period in epochs (sweeps).
        trace_length: number of most recent sweeps kept (``>= 4``).
        max_chains: chains with index ``< max_chains`` are buffered.
        n_reference: number of exact / proposal reference samples (0 disables EMD and the
            reference cloud).
        dims: two coordinates for the scatter and trace plots (coordinates ``>= D`` are
            dropped; ``D == 1`` plots a histogram of coordinate 0).
        log_figures: log the figures to TensorBoard.
        seed: seed of the private generators of the reference / proposal samples.

    Raises:
        ValueError: naming the offending argument.

    Memory: ``trace_length * (min(max_chains, n_chains) + 1) * D`` elements on the device.
    """

    def __init__(
        self,
        every_n_epochs: int = 50,
        trace_length: int = 200,
        max_chains: int = 256,
        n_reference: int = 2000,
        dims: tuple[int, int] = (0, 1),
        log_figures: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.every_n_epochs = _check_int(every_n_epochs, "every_n_epochs", 1)
        self.trace_length = _check_int(trace_length, "trace_length", _MIN_DRAWS)
        self.max_chains = _check_int(max_chains, "max_chains", 1)
        self.n_reference = _check_int(n_reference, "n_reference", 0)
        if isinstance(dims, (str, bytes)) or not isinstance(dims, Sequence) or len(dims) != 2:
            raise ValueError(f"ChainDiagnostics: `dims` must be a pair of ints, got {dims!r}")
        d0, d1 = (_check_int(d, "dims", 0) for d in dims)
        if d0 == d1:
            raise ValueError(f"ChainDiagnostics: `dims` must be two distinct ints, got {dims!r}")
        self.dims = (d0, d1)
        if not isinstance(log_figures, bool):
            raise ValueError(f"ChainDiagnostics: `log_figures` must be a bool, got {log_figures!r}")
        self.log_figures = log_figures
        self.seed = _check_int(seed, "seed", 0)
        self._reset()

    # ------------------------------------------------------------------ state
    def _reset(self) -> None:
        self._buffer: Tensor | None = None  # [trace_length, M + 1, D]; row M collects the rest
        self._seen: Tensor | None = None  # [M + 1] bool: chain recorded at least once
        self._n_sweeps = 0  # completed sweeps recorded
        self._recorded = False  # something was recorded during the current epoch
        self._reference: np.ndarray | None = None
        self._reference_ready = False
        self._emd_exact_logged = False
        self._warned = False

    def state_dict(self) -> dict[str, Any]:
        """Nothing is checkpointed: the buffer refills after a restart."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """No-op (see :meth:`state_dict`)."""

    @property
    def n_sweeps(self) -> int:
        """Number of sweeps recorded since the start of ``fit``."""
        return self._n_sweeps

    def trace(self) -> Tensor | None:
        """Buffered draws ``(chain, draw, dim)``, oldest first, on the module's device.

        Only chains seen at least once are included (ordered by chain index); ``None`` before
        the first recorded sweep.  A copy, safe to keep.
        """
        if self._buffer is None or self._seen is None or self._n_sweeps == 0:
            return None
        n_draws = min(self._n_sweeps, self.trace_length)
        first = self._n_sweeps - n_draws
        order = torch.arange(first, first + n_draws, device=self._buffer.device)
        order = order % self.trace_length
        ids = self._seen[:-1].nonzero().squeeze(1)
        return self._buffer.index_select(0, order).index_select(1, ids).transpose(0, 1).clone()

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._reset()

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._buffer is not None and self._n_sweeps > 0:
            # Chains not visited in this epoch keep their last position.
            slot = self._n_sweeps % self.trace_length
            self._buffer[slot].copy_(self._buffer[(self._n_sweeps - 1) % self.trace_length])
        self._recorded = False

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            rank_zero_warn(f"ChainDiagnostics: {message}; nothing is recorded.")

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, *_: Any
    ) -> None:
        if not isinstance(outputs, Mapping) or "x" not in outputs or "index" not in outputs:
            self._warn_once('training_step must return {"x": [B, D], "index": [B]}')
            return
        x, index = outputs["x"], outputs["index"]
        if not isinstance(x, Tensor) or x.ndim != 2 or not isinstance(index, Tensor):
            self._warn_once('outputs["x"] must be a [B, D] tensor and outputs["index"] a tensor')
            return
        with torch.no_grad():
            x = x.detach()
            if self._buffer is None:
                n_chains = getattr(pl_module, "n_chains", None)  # any module may be observed
                try:
                    m = min(self.max_chains, int(n_chains))
                except (TypeError, ValueError):
                    m = self.max_chains
                m = max(m, 1)
                self._buffer = x.new_zeros(self.trace_length, m + 1, x.shape[1])
                self._seen = torch.zeros(m + 1, dtype=torch.bool, device=x.device)
            buffer, seen = self._buffer, self._seen
            assert seen is not None
            if x.shape[1] != buffer.shape[2]:
                self._warn_once(f"dimension changed from {buffer.shape[2]} to {x.shape[1]}")
                return
            m = buffer.shape[1] - 1
            index = index.detach().to(device=buffer.device, dtype=torch.long).reshape(-1)
            if index.numel() != x.shape[0]:
                self._warn_once(
                    f'outputs["index"] has {index.numel()} entries for {x.shape[0]} rows'
                )
                return
            # Chains outside the tracked set all go to the spare row m: no boolean mask, no sync.
            rows = torch.where((index >= 0) & (index < m), index, torch.full_like(index, m))
            slot = self._n_sweeps % self.trace_length
            buffer[slot].index_copy_(0, rows, x.to(device=buffer.device, dtype=buffer.dtype))
            seen.index_fill_(0, rows, True)
            self._recorded = True

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._recorded:
            return
        self._recorded = False
        self._n_sweeps += 1
        if (trainer.current_epoch + 1) % self.every_n_epochs != 0:
            return
        if min(self._n_sweeps, self.trace_length) < _MIN_DRAWS:
            return
        with torch.no_grad():
            local = (self._buffer, self._seen)
            if trainer.world_size > 1:  # every rank holds its own chains: merge them
                self._buffer, self._seen = self._gather(pl_module)
            try:
                if trainer.is_global_zero:
                    self._evaluate(trainer, pl_module)
            finally:
                self._buffer, self._seen = local

    def _gather(self, pl_module: pl.LightningModule) -> tuple[Tensor, Tensor]:
        """All ranks' tracked chains in one buffer (collective; ranks own disjoint chains)."""
        assert self._buffer is not None and self._seen is not None
        mine = self._seen.nonzero().squeeze(1)  # the tracked chains this rank saw
        merged = merge_owned_rows(pl_module, self._buffer, mine, dim=1)  # [T, M + 1, D]
        return merged, merge_owned_rows(pl_module, self._seen, mine)

    # ------------------------------------------------------------------ evaluation
    def _log(self, pl_module: pl.LightningModule, name: str, value: float) -> None:
        pl_module.log(name, value, on_step=False, on_epoch=True, rank_zero_only=True, batch_size=1)

    def _get_reference(self, target: Any, dim: int) -> np.ndarray | None:
        """Cached ``[n_reference, D]`` exact samples (fixed seed), or ``None`` without a sampler."""
        if not self._reference_ready:
            self._reference_ready = True
            if self.n_reference > 0 and has_sampler(target):
                ref = _draw(target.sample, self.n_reference, _module_device(target), self.seed)
                ref = ref.detach().to("cpu", torch.float64).numpy()
                if ref.shape == (self.n_reference, dim):
                    self._reference = ref
                else:
                    rank_zero_warn(
                        f"ChainDiagnostics: target.sample({self.n_reference}) returned shape "
                        f"{ref.shape}, expected {(self.n_reference, dim)}; EMD is not logged."
                    )
        return self._reference

    def _proposal_reference(self, pl_module: pl.LightningModule) -> tuple[np.ndarray, str] | None:
        """``n_reference`` samples of ``pl_module.kernel.proposal`` (fixed seed), if any."""
        if not (isinstance(pl_module, MCMCSampler) and pl_module.kernel.is_global):
            return None
        proposal = pl_module.kernel.proposal
        if self.n_reference == 0:
            return None

        def draw(n: int, generator: torch.Generator | None = None) -> Tensor:
            with torch.no_grad():
                return proposal.sample_and_log_prob((n,), generator)[0]

        out = _draw(draw, self.n_reference, _module_device(proposal), self.seed + 2)
        label = "flow" if "flow" in type(proposal).__name__.lower() else "proposal"
        return out.detach().to("cpu", torch.float64).numpy(), label

    def _evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trace_t = self.trace()
        if trace_t is None or trace_t.shape[0] == 0:
            return
        trace = trace_t.to("cpu", torch.float64).numpy()  # (chain, draw, dim)
        current = trace[:, -1]
        dim = trace.shape[2]

        self._log(pl_module, "diagnostics/ess", float(np.mean(ess(trace))))
        self._log(pl_module, "diagnostics/rhat", float(np.max(rhat(trace))))

        target = getattr(pl_module, "target", None)  # any module with a target
        reference = self._get_reference(target, dim)
        if reference is not None:
            finite = bool(np.isfinite(current).all())
            self._log(
                pl_module,
                "diagnostics/emd",
                emd(current, reference, max_samples=None) if finite else math.nan,
            )
            if not self._emd_exact_logged:
                self._emd_exact_logged = True
                n = current.shape[0]
                other = _draw(target.sample, n, _module_device(target), self.seed + 1)
                other = other.detach().to("cpu", torch.float64).numpy()
                self._log(
                    pl_module, "diagnostics/emd_exact", emd(other, reference, max_samples=None)
                )

        if self.log_figures:
            loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
            if loggers:
                self._log_figures(trainer, pl_module, loggers, trace, reference)

    def _log_figures(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        loggers: list[TensorBoardLogger],
        trace: np.ndarray,
        reference: np.ndarray | None,
    ) -> None:
        dim = trace.shape[2]
        if reference is not None:
            ref, label = reference, "exact"
        else:
            proposal = self._proposal_reference(pl_module)
            ref, label = proposal if proposal is not None else (None, "exact")
        dims = tuple(d for d in self.dims if d < dim) or (0,)
        epoch = trainer.current_epoch
        title = f"epoch {epoch + 1}, {trace.shape[0]} chains"
        scatter = figure_to_array(
            scatter_figure(
                trace[:, -1],
                reference=ref,
                dims=dims if len(dims) == 2 else (0, 1),
                title=title,
                reference_label=label,
            )
        )
        traces = figure_to_array(
            trace_figure(
                trace,
                chains=range(min(4, trace.shape[0])),
                dims=dims,
                title=title,
                start=self._n_sweeps - trace.shape[1] + 1,
                xlabel="sweep (epoch)",
            )
        )
        step = logged_step(trainer)  # where Lightning writes this epoch's scalars
        for logger in loggers:
            writer = logger.experiment
            writer.add_image("chains/scatter", scatter, global_step=step, dataformats="HWC")
            writer.add_image("chains/trace", traces, global_step=step, dataformats="HWC")
