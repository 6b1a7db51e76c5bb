"""``sample``'s output set from its draws: a pure function, no Trainer.

:func:`write_output_set` takes the draws of all chains (:class:`Draws`, gathered by
:class:`~lightning_ex2.lightning.SampleWriter`) and the run's :class:`SamplePlan`
(built by :meth:`lightning_ex2.lightning.trainer.Ex2Trainer.sample`), and writes one output set
(see :class:`~lightning_ex2.output.files.OutputSet`: built in a hidden staging folder, moved
into place with ``summary.json`` last; its files are the names in
:data:`lightning_ex2.output.files.SET_FILES`, and a new output file is registered there):

* ``samples.npz``: ``samples`` ``(chain, draw, dim)`` in chain-index order and the
  run's dtype, ``log_prob`` ``(chain, draw)``, ``chain_index`` and every per-chain
  ``[C]`` field of the kernel's info (``accept_global``, ``accept_local``,
  ``particle_ess``, ...; NaN where a kernel has no such field; counts as integers);
* ``samples.nc``: the same draws with per-draw ``sample_stats`` in ArviZ's netCDF
  layout (:mod:`lightning_ex2.output.netcdf`);
* ``summary.json``: ArviZ's ESS/R-hat/MCSE and the convergence verdict
  (:func:`lightning_ex2.diagnostics.summary.diagnostics`), ``<info>_mean`` of every info
  field, the ``step_size``, EMD to exact samples (when the target has a sampler),
  sizes, wall time, kernel and target, and ``complete`` (false when a stop signal cut
  the run short: the draws made are kept);
* ``config.yaml``: the run's configuration (:attr:`SamplePlan.config_text`);
* ``scatter.png``, ``trace.png``, ``rank.png`` and, for ``2 <= dim <= 6``, ``pair.png``;

and logs the summary scalars and the figures to TensorBoard (``sample/...``): to the
``tb`` writer it is given (the trainer's ``TensorBoardLogger``), else, with
:attr:`OutputOptions.events_in_set` (the ``sample`` command, which runs without the
config's loggers), to an events file in the set itself (``events.out.tfevents.*``).
It returns a :class:`SampleResult`; nothing flows back through attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from lightning_ex2.diagnostics import summarize
from lightning_ex2.environment import ensure_writable_caches
from lightning_ex2.errors import UserError
from lightning_ex2.kernels.base import COUNT_FIELDS
from lightning_ex2.output.files import OutputSet, save_json, save_netcdf, save_npz, save_text
from lightning_ex2.output.netcdf import build_groups, constrained_draws
from lightning_ex2.protocols import target_hook
from lightning_ex2.sampling import superchain_ids
from lightning_ex2.targets.base import has_sampler

#: a scorer of this rank's draws ``(trainer, pl_module, samples [B, T, D]) -> dict``
#: (collective on every rank), e.g. ``ImageQualityMetrics(...).scorer``
Scorer = Callable[[Any, Any, Tensor], dict[str, Any]]


@dataclass(frozen=True)
class OutputOptions:
    """What a user chooses about a ``sample`` run's output set: the one place an output
    option is declared (a :class:`~lightning_ex2.lightning.SampleWriter` in
    ``trainer.callbacks`` carries them; the trainer puts them into the run's
    :class:`SamplePlan`; :func:`write_output_set` reads them there).

    Attributes:
        output_dir: the output folder (default
            :func:`lightning_ex2.lightning.preflight.default_output_dir`; ``sample``'s own
            ``output_dir`` wins).
        n_reference: exact target samples for the EMD (targets with ``sample``).
        save_figures: write (and log) the figures.
        scorers: scorers of the draws; their results go into ``summary.json`` as
            ``image_metrics``.
        events_in_set: without a ``tb`` writer, log TensorBoard events into the set
            (the ``sample`` command, which runs without the config's loggers).
    """

    output_dir: str | None = None
    n_reference: int = 2000
    save_figures: bool = True
    scorers: tuple[Scorer, ...] = ()
    events_in_set: bool = False


@dataclass(frozen=True)
class SamplePlan:
    """Everything one ``sample`` run needs, fixed before the run starts (built once, by
    :meth:`lightning_ex2.lightning.trainer.Ex2Trainer.sample`, and handed to the run's writer).

    Attributes:
        output: the destination, already checked (:meth:`OutputSet.check`).
        n_steps: steps after burn-in; ``n_steps // thin`` draws make a complete set.
        burn_in: steps run first and discarded.
        thin: one draw kept in ``thin``.
        progress: show a progress bar.
        config_text: the run's config as YAML (the CLI's), written as ``config.yaml``.
        options: the user's :class:`OutputOptions`.
    """

    output: OutputSet
    n_steps: int
    burn_in: int = 0
    thin: int = 1
    progress: bool = True
    config_text: str | None = None
    options: OutputOptions = OutputOptions()

    @property
    def n_draws(self) -> int:
        """Draws per chain of a complete run."""
        return self.n_steps // self.thin


class Draws(NamedTuple):
    """The draws of all chains in chain-index order, as NumPy arrays in the run's dtype
    (``C`` chains, ``T`` draws, ``D`` dimensions)."""

    samples: np.ndarray  # [C, T, D]
    log_prob: np.ndarray  # [C, T]
    chain_index: np.ndarray  # [C]
    info: dict[str, np.ndarray]  # per chain [C], NaN where a kernel has no such field
    draw_stats: dict[str, np.ndarray]  # per draw [C, T] (ArviZ's sample_stats)
    starts: np.ndarray | None  # [C, D]: the chains' points before the run
    wall_seconds: float  # the slowest rank's
    world_size: int
    image_metrics: dict[str, Any]  # the scorers' results (all ranks together)


class RunMeta(NamedTuple):
    """What ``summary.json`` and the figures name the run by, and where the target lives."""

    kernel: str
    target: str
    module: str
    seed: int | None
    device: torch.device  # of the reference draws' generator
    algorithm: str = ""  # the sampler that ran (MCMCSampler.algorithm); "": the kernel

    @property
    def title(self) -> str:
        """The figures' title: the sampler that ran on the target, e.g. ``FlEx2MCMC on
        GridMixture`` (an ``Ex2MCMC`` kernel whose flow proposal ``FlEx2MCMC`` trained)."""
        return f"{self.algorithm or self.kernel} on {self.target}"


class SampleResult(NamedTuple):
    """What one ``sample`` run wrote (``None``/``False`` on ranks other than 0)."""

    summary: dict[str, Any] | None
    written: Path | None  # the published folder; None: nothing written
    complete: bool  # every draw of the plan was kept
    replaced_complete: bool  # the set replaced a complete previous set (--overwrite)


def output_bytes(n_chains: int, dim: int, n_draws: int) -> int:
    """An upper estimate of an output set's size: the draws and ``log_prob`` in
    ``samples.npz`` and again in ``samples.nc`` with its per-draw stats (float64 at
    most), and the figures."""
    return n_chains * n_draws * (2 * dim + 12) * 8 + 2**25


def prepare_writer(figures: bool = True) -> None:
    """Everything the writer of an output set needs from the machine, before any step:
    writable library caches (:func:`~lightning_ex2.environment.ensure_writable_caches`),
    ArviZ (and Matplotlib for the figures) imported, so that nothing of theirs can fail
    once the draws exist."""
    ensure_writable_caches()
    try:
        from lightning_ex2.diagnostics.summary import import_arviz

        import_arviz()
        if figures:
            import lightning_ex2.output.figures  # noqa: F401  (matplotlib)
    except (ImportError, OSError) as err:
        raise UserError(
            f"the output set's libraries cannot be loaded ({type(err).__name__}: {err}); "
            "nothing was run"
        ) from err


def build_summary(
    draws: Draws,
    plan: SamplePlan,
    target: nn.Module,
    meta: RunMeta,
    stopped_by: str | None = None,
) -> tuple[dict[str, Any], np.ndarray | None, dict[str, np.ndarray]]:
    """``summary.json``'s content; also the reference draws (or ``None``) and the info
    arrays as ``samples.npz`` stores them (counts as integers)."""
    samples = draws.samples.astype(np.float64)
    reference = reference2 = None
    if has_sampler(target):
        g = torch.Generator(device=meta.device).manual_seed(12345)
        with torch.no_grad():
            n = plan.options.n_reference
            reference = target.sample(n, generator=g).cpu().double().numpy()
            reference2 = target.sample(n, generator=g).cpu().double().numpy()
    stored = {  # counts as integers, rates in the run's dtype
        k: np.rint(v).astype(np.int64) if k in COUNT_FIELDS else v for k, v in draws.info.items()
    }
    info = {k: v for k, v in stored.items() if not np.isnan(v).all()}
    starts = draws.starts
    superchains = None if starts is None else superchain_ids(torch.from_numpy(starts))
    summary = summarize(samples, info, reference, reference2, superchains=superchains)
    for name, value in info.items():  # every info field: rates averaged, counts summed
        if name in COUNT_FIELDS:
            summary[name] = int(np.nansum(value))
        elif name != "step_size":  # given once, as ``step_size`` (below)
            summary.setdefault(f"{name}_mean", float(np.nanmean(value)))
    complete = draws.samples.shape[1] == plan.n_draws
    summary.update(
        n_steps=plan.n_steps,
        burn_in=plan.burn_in,
        thin=plan.thin,
        complete=complete,
        stopped_by=None if complete else stopped_by,
        wall_seconds=draws.wall_seconds,
        world_size=draws.world_size,
        kernel=meta.kernel,
        target=meta.target,
        module=meta.module,
        seed=meta.seed,
    )
    # the frozen step size (the chains' mean if per chain)
    if "step_size" in draws.draw_stats:
        summary["step_size"] = float(np.nanmean(draws.draw_stats["step_size"][:, 0]))
    elif "step_size" in info:
        summary["step_size"] = float(np.nanmean(info["step_size"]))
    if draws.image_metrics:
        summary["image_metrics"] = draws.image_metrics
    return summary, reference, stored


def write_output_set(
    draws: Draws,
    plan: SamplePlan,
    target: nn.Module,
    meta: RunMeta,
    tb: Any = None,
    step: int = 0,
    stopped_by: str | None = None,
) -> SampleResult:
    """Write one output set of ``draws`` into ``plan.output`` and return what was written.

    Args:
        draws: all chains' draws (at least one draw per chain).
        plan: the run's plan.
        target: the sampled target (reference draws, ``dim_names``, ``constrain``).
        meta: the run's names and device.
        tb: a TensorBoard ``SummaryWriter`` to log to (``None``: see
            :attr:`OutputOptions.events_in_set`).
        step: the step the TensorBoard records carry.
        stopped_by: the stop request that cut the run short (``summary["stopped_by"]``).

    On an exception the staging folder is removed and nothing new appears.
    """
    summary, reference, info = build_summary(draws, plan, target, meta, stopped_by)
    output = plan.output
    staging = output.begin()
    try:
        save_npz(
            staging / "samples.npz",
            samples=draws.samples,
            log_prob=draws.log_prob,
            chain_index=draws.chain_index,
            **info,
        )
        attrs = {k: summary[k] for k in ("kernel", "target", "module", "seed")}
        groups = build_groups(
            draws.samples, draws.log_prob, draws.draw_stats, attrs,
            chain_index=draws.chain_index, dim_names=target_hook(target, "dim_names"),
            constrained=constrained_draws(target, draws.samples),
        )  # fmt: skip
        save_netcdf(staging / "samples.nc", groups)
        if plan.config_text is not None:
            save_text(staging / "config.yaml", plan.config_text)
        samples = draws.samples.astype(np.float64)
        own = tb is None and plan.options.events_in_set  # the set's own events file
        writer = _set_events(staging) if own else tb
        try:
            log_and_plot(
                writer, staging, samples, reference, summary, step, plan.options.save_figures,
                title=meta.title,
            )  # fmt: skip
        finally:
            if own and writer is not None:
                writer.close()
        save_json(staging / "summary.json", summary)  # last: it marks a complete set
        written = output.publish()
    except BaseException:
        output.abort()
        raise
    return SampleResult(summary, written, bool(summary["complete"]), output.replaced_complete)


def log_and_plot(
    tb: Any,
    out: Path,
    samples: np.ndarray,
    reference: np.ndarray | None,
    summary: dict[str, Any],
    step: int,
    save_figures: bool = True,
    title: str | None = None,
) -> None:
    """The summary's numbers as ``sample/<key>`` scalars to ``tb`` (if any); the figures
    into ``out`` (and to ``tb``) when ``save_figures``, the scatter plot titled ``title``
    (default: ``"<kernel> on <target>"`` from the summary)."""
    if tb is not None:
        for key, value in summary.items():
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if numeric and np.isfinite(value):
                tb.add_scalar(f"sample/{key}", value, step)
        if isinstance(summary.get("converged"), bool):
            tb.add_scalar("sample/converged", float(summary["converged"]), step)
    if not save_figures:
        return
    from lightning_ex2.output.figures import (
        pair_figure,
        rank_figure,
        save_figure,
        scatter_figure,
        trace_figure,
    )

    figures = {
        "scatter": scatter_figure(
            samples.reshape(-1, samples.shape[-1]),
            reference,
            title=title or f"{summary['kernel']} on {summary['target']}",
        ),
        "trace": trace_figure(samples),
        "rank": rank_figure(samples),
    }
    if 2 <= samples.shape[-1] <= 6:
        figures["pair"] = pair_figure(samples)
    for name, fig in figures.items():
        save_figure(fig, out / f"{name}.png")
        if tb is not None:
            tb.add_figure(f"sample/{name}", fig, step)
    if tb is not None:
        tb.flush()


def _set_events(folder: Path) -> Any:
    """A TensorBoard writer whose events file is in ``folder`` (an output set's staging
    folder; ``events.out.tfevents.*`` is in :data:`lightning_ex2.output.files.SET_PATTERNS`), or
    ``None`` without TensorBoard."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(folder))


__all__: Sequence[str] = (
    "Draws",
    "OutputOptions",
    "RunMeta",
    "SamplePlan",
    "SampleResult",
    "build_summary",
    "write_output_set",
)
