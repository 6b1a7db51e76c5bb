"""Adaptation of a kernel's parameters during warm-up, then frozen.

Each parameter field has its own triple of pure functions (init, update, final):

* the step size: dual averaging toward a target acceptance (Hoffman & Gelman 2014,
  the NUTS paper, Alg. 5): :func:`dual_averaging_init`, :func:`dual_averaging_update`,
  :func:`dual_averaging_final`; one step size per chain by default (``[C]``), so a
  chain in a steep region finds its own small step instead of rejecting everything
  under a step size set by the others;
* the inverse mass matrix (``mass_matrix="diagonal"``: a per-coordinate variance;
  ``"dense"``: a covariance and its Cholesky factor; ``"auto"``, the default of MALA and
  HMC: dense up to 100 dimensions, diagonal above): pooled over the chains that mix
  (we have many), accumulated over Stan's windows (:func:`mass_windows`: a fast
  initial buffer, slow windows doubling in length, a fast final buffer) and
  regularized as Stan does (shrunk toward ``1e-3 I`` by ``5 / (n + 5)``):
  :func:`variance_init`, :func:`variance_update`, :func:`variance_final`. At the end
  of each slow window the inverse mass matrix becomes the window's estimate and dual
  averaging restarts from the current step;
* the chains' health (:class:`ChainHealth`): each chain's acceptance since the last
  check. Chains that do not move must not set everyone's metric, and need not stay
  where they started:

  - a draw enters the pooled metric only if its chain mixes: its acceptance since the
    last check is at least :data:`ACCEPT_FLOOR` and its ``log pi`` is not a low
    outlier of the population (below the chains' median by more than
    :data:`LP_OUTLIER` robust standard deviations, ``1.4826 MAD``, at least 1 nat);
  - at each check (the end of the initial buffer and of every slow window) a chain
    that fails either test takes the current state of a healthy chain (its point,
    ``log pi``, gradient, and its per-chain step-size state). This is done during
    warm-up only: the moves after :meth:`Warmup.freeze` are those of a fixed,
    pi-invariant kernel, and the warm-up's draws are discarded anyway.

  This combines Stan's windowed adaptation (Stan Reference Manual, "HMC algorithm
  parameters"; Carpenter et al. 2017) with what many parallel chains allow: a
  cross-chain, outlier-robust pooling and the re-initialisation of lost chains from
  the population (as in population and sequential Monte Carlo resampling). It adds
  no host synchronisation: the checks are ``torch.where`` on the warm-up's clock.

The updates take the cross-rank mean as an explicit argument (multi-device runs
share one statistic, so every rank keeps the same parameters).

:class:`Warmup` is the one phase structure shared by :func:`lightning_ex2.sample`,
``fit`` and ``sample``: while warming up, each kernel step is followed by
:meth:`Warmup.step` (one update from the step's ``info.accept_local`` and the chains'
new state, then the re-initialisation of stuck chains at a check);
:meth:`Warmup.freeze` then fixes the step size to the averaged iterate and keeps the
last mass matrix, so the post-warm-up chain is a fixed, pi-invariant Markov kernel
(the reference implementation adapted forever). Everything is tensors updated with
``torch.where``: no host synchronisation in the loop.

The step-size statistic is either per chain (shape ``[C]``, the default of MALA and
HMC) or shared (the mean acceptance over chains drives one step size, shape ``[]``:
``per_chain_step_size=False``).

Example:
    >>> import torch, lightning_ex2 as lx
    >>> target = lx.targets.Gaussian(torch.zeros(2), torch.eye(2))
    >>> kernel = lx.MALA(step_size=0.01)  # adapts toward 0.574, dense metric (2-D)
    >>> warmup = Warmup(kernel, n_warmup=100)
    >>> state = kernel.init(torch.zeros(64, 2), target)
    >>> tuning = warmup.init(64, state.x)
    >>> for _ in range(100):
    ...     state, info = kernel.step(state, target, None, tuning.params)
    ...     tuning, state = warmup.step(tuning, info, state)
    >>> tuning = warmup.freeze(tuning)
    >>> bool(tuning.frozen), bool((tuning.step_size > 0.01).all())
    (True, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from lightning_ex2.protocols import Kernel
from lightning_ex2.types import ChainState


class DualAveragingState(NamedTuple):
    """Tensors of the step-size shape (``[]`` or ``[C]``)."""

    log_step: Tensor  # current iterate log h_t
    log_step_avg: Tensor  # averaged iterate log h_bar_t (the final step size)
    error_avg: Tensor  # H_bar_t
    count: Tensor  # t
    mu: Tensor  # shrinkage point log(10 h_0)


def dual_averaging_init(step_size: Tensor) -> DualAveragingState:
    """Start from ``step_size`` (``[]`` or ``[C]``)."""
    log_h = step_size.log()
    zero = torch.zeros_like(log_h)
    return DualAveragingState(log_h, log_h.clone(), zero, zero.clone(), log_h + math.log(10.0))


def dual_averaging_update(
    da: DualAveragingState,
    accept_prob: Tensor,
    target_accept: float,
    mean: Callable[[Tensor], Tensor] | None = None,
    gamma: float = 0.05,
    t0: float = 10.0,
    kappa: float = 0.75,
) -> DualAveragingState:
    """One update from the per-chain acceptance probability ``accept_prob [C]``.

    A shared step size (``da`` of shape ``[]``) uses ``mean(accept_prob.mean())``:
    ``mean`` is the cross-rank average of multi-device runs (identity when ``None``).
    A per-chain step size (shape ``[C]``) uses ``accept_prob`` itself.
    """
    stat = accept_prob
    if da.log_step.ndim == 0:
        stat = accept_prob.mean()
        if mean is not None:
            stat = mean(stat)
    t = da.count + 1
    w = 1.0 / (t + t0)
    error_avg = (1 - w) * da.error_avg + w * (target_accept - stat)
    log_step = da.mu - t.sqrt() / gamma * error_avg
    eta = t.pow(-kappa)
    log_step_avg = eta * log_step + (1 - eta) * da.log_step_avg
    return DualAveragingState(log_step, log_step_avg, error_avg, t, da.mu)


def dual_averaging_final(da: DualAveragingState) -> Tensor:
    """The step size to keep after adaptation: ``exp(log h_bar_t)``."""
    return da.log_step_avg.exp()


#: a chain whose mean acceptance since the last check is below this does not mix
ACCEPT_FLOOR = 0.01
#: a chain whose ``log pi`` is below the chains' median by more than this many robust
#: standard deviations (``1.4826 MAD``, at least 1 nat) is lost (a low outlier)
LP_OUTLIER = 10.0


class VarianceState(NamedTuple):
    """Pooled moments of the current window (Welford/Chan): ``m2`` is ``[1, D]``
    (per-coordinate, diagonal metric) or ``[1, D, D]`` (cross-products, dense metric)."""

    count: Tensor  # [] draws accumulated (chains x steps, weighted)
    mean: Tensor  # [1, D]
    m2: Tensor  # [1, D] or [1, D, D] sum of squared deviations (cross-products)


def variance_init(like: Tensor, dense: bool = False) -> VarianceState:
    """An empty window for draws of ``like``'s ``[1, D]`` shape (``dense``: cross-products)."""
    zero = torch.zeros_like(like[..., :1, :] if like.ndim == 3 else like)
    m2 = zero.unsqueeze(-1) * zero.unsqueeze(-2) if dense else zero.clone()
    return VarianceState(like.new_zeros(()), zero, m2)


def variance_update(
    vs: VarianceState,
    x: Tensor,
    weight: Tensor | float = 1.0,
    mean: Callable[[Tensor], Tensor] | None = None,
) -> VarianceState:
    """Add the draws ``x [C, D]`` pooled over the chains, each with its ``weight``
    (``[]`` or ``[C]``: 1 counts the chain's draw, 0 leaves it out).

    ``mean`` is the cross-rank average (multi-device runs): the weighted sums are
    averaged over ranks, so every rank accumulates the same moments.
    """
    mean = mean or (lambda t: t)
    x = x.detach()
    w = torch.as_tensor(weight, dtype=x.dtype, device=x.device).expand(x.shape[0])
    n_b = mean(w.sum())
    batch_mean = mean((w.unsqueeze(-1) * x).sum(0, keepdim=True)) / n_b.clamp_min(1e-30)
    dev = x - batch_mean
    if vs.m2.ndim == 3:
        batch_m2 = mean(torch.einsum("c,ci,cj->ij", w, dev, dev).unsqueeze(0))
    else:
        batch_m2 = mean((w.unsqueeze(-1) * dev.square()).sum(0, keepdim=True))
    n = vs.count + n_b
    frac = torch.where(n > 0, n_b / n.clamp_min(1e-30), torch.zeros_like(n))
    delta = batch_mean - vs.mean
    new_mean = vs.mean + delta * frac
    if vs.m2.ndim == 3:
        outer = delta.unsqueeze(-1) * delta.unsqueeze(-2)
        new_m2 = vs.m2 + batch_m2 + outer * (vs.count * frac)
    else:
        new_m2 = vs.m2 + batch_m2 + delta.square() * vs.count * frac
    return VarianceState(n, new_mean, new_m2)


def variance_final(vs: VarianceState) -> Tensor:
    """Stan's regularized estimate ``n/(n+5) S + 1e-3 * 5/(n+5) I``: ``[1, D]`` (the
    variances) or ``[1, D, D]`` (the covariance, shrunk toward a diagonal)."""
    n = vs.count
    var = vs.m2 / (n - 1).clamp_min(1.0)
    shrink = 1e-3 * (5.0 / (n + 5.0))
    if var.ndim == 3:
        eye = torch.eye(var.shape[-1], dtype=var.dtype, device=var.device)
        return (n / (n + 5.0)) * var + shrink * eye
    return (n / (n + 5.0)) * var + shrink


def dense_cholesky(cov: Tensor) -> tuple[Tensor, Tensor]:
    """``(cov, L)`` with ``L L' = cov`` for ``cov [1, D, D]``; where the factorisation
    fails (not positive definite in floating point) the diagonal of ``cov`` is used
    instead. No host synchronisation."""
    chol, bad = torch.linalg.cholesky_ex(cov)
    diag = torch.diag_embed(cov.diagonal(dim1=-2, dim2=-1).clamp_min(1e-12))
    ok = (bad == 0).reshape(-1, 1, 1) & torch.isfinite(chol).all()
    cov = torch.where(ok, cov, diag)
    return cov, torch.where(ok, chol, diag.sqrt())


class ChainHealth(NamedTuple):
    """Per-chain ``[C]`` statistics since the last check (see the module docstring)."""

    accept_sum: Tensor  # acceptance probabilities summed
    steps: Tensor  # steps counted


def lost_chains(health: ChainHealth, log_prob: Tensor) -> Tensor:
    """``[C]`` bool: chains that do not mix (acceptance since the last check below
    :data:`ACCEPT_FLOOR`) or are lost (``log pi`` a low outlier of the chains, by
    :data:`LP_OUTLIER` robust standard deviations; a non-finite one too)."""
    lp = torch.where(torch.isfinite(log_prob), log_prob, torch.full_like(log_prob, -torch.inf))
    finite = torch.where(torch.isfinite(lp), lp, torch.full_like(lp, torch.nan))
    median = finite.nanmedian()
    scale = (1.4826 * (finite - median).abs().nanmedian()).clamp_min(1.0)
    low = ~(lp >= median - LP_OUTLIER * scale)  # NaN median (all lost): every chain
    slow = health.accept_sum < ACCEPT_FLOOR * health.steps
    return low | slow


def _buffers(n_warmup: int) -> tuple[int, int, int]:
    """Stan's (initial buffer, final buffer, first slow window) for ``n_warmup`` steps."""
    init, term, base = 75, 50, 25
    if init + term + base > n_warmup:
        init, term = int(0.15 * n_warmup), int(0.1 * n_warmup)
        base = n_warmup - init - term
    return init, term, base


def mass_windows(n_warmup: int) -> list[int]:
    """The warm-up update counts (1-based) that end a slow window (Stan's schedule).

    A fast initial buffer of 75 steps, slow windows of 25, 50, 100, ... steps (the
    last one stretched to the final buffer), a fast final buffer of 50 steps in
    which only the step size adapts. Short warm-ups scale the buffers to 15 % / 10 %
    of ``n_warmup`` as Stan does; below 20 steps there is no window (``[]``).

    Example:
        >>> mass_windows(1000)
        [100, 150, 250, 450, 950]
        >>> mass_windows(100)
        [90]
    """
    if n_warmup < 20:
        return []
    init, term, size = _buffers(n_warmup)
    ends, start, last = [], init, n_warmup - term
    while True:
        end = start + size
        if end + 2 * size > last:
            ends.append(last)
            return ends
        ends.append(end)
        start, size = end, 2 * size


def check_points(n_warmup: int | None) -> list[int]:
    """The warm-up update counts at which lost chains are re-initialised: the end of
    the initial buffer and of every slow window (``[]`` below 20 steps).

    Example:
        >>> check_points(1000)
        [75, 100, 150, 250, 450, 950]
    """
    ends = mass_windows(n_warmup) if n_warmup else []
    return [_buffers(n_warmup)[0], *ends] if ends else []


class Tuning(NamedTuple):
    """The tuned parameters of a run and their adaptation state.

    Attributes:
        params: the kernel's parameter tuple (e.g. ``MALAParams``), the ``params``
            argument of its next step.
        da: dual-averaging state of the step size (``None`` when it does not adapt).
        variance: the current window's moments (``None`` without a mass matrix to
            adapt).
        count: ``[]`` warm-up updates so far (the window schedule's clock).
        frozen: ``[]`` bool, True once the warm-up has ended.
        health: per-chain acceptance since the last check (:class:`ChainHealth`;
            ``None`` for a tuning built without it).
    """

    params: NamedTuple
    da: DualAveragingState | None
    variance: VarianceState | None
    count: Tensor
    frozen: Tensor
    health: ChainHealth | None = None

    @property
    def step_size(self) -> Tensor:
        """``params.step_size`` (``[]`` or ``[C]``)."""
        return self.params.step_size


def _where(mask: Tensor, new: NamedTuple, old: NamedTuple) -> NamedTuple:
    """Field-wise ``torch.where(mask, new, old)`` of two tuples of one type."""
    return type(old)(*(torch.where(mask, n, o) for n, o in zip(new, old)))


class Warmup:
    """Warm-up (adapt the kernel's parameters, rescue lost chains), then frozen.

    Built from the kernel's capabilities: the step size adapts toward
    ``kernel.target_accept`` when ``kernel.step_size_adaptable`` (one per chain with
    ``kernel.per_chain_step_size``); with ``kernel.mass_matrix`` ``"diagonal"``,
    ``"dense"`` or ``"auto"`` the inverse mass matrix adapts over :func:`mass_windows`
    ``(n_warmup)``, from the chains that mix; at :func:`check_points` ``(n_warmup)``
    the chains that do not mix take the state of healthy ones (see the module
    docstring). Kernels without parameters get no tuning (:meth:`init` returns
    ``None``) and every method accepts ``None``.

    Args:
        kernel: the kernel whose parameters are tuned.
        n_warmup: warm-up length in updates, which places the mass-matrix windows and
            the checks (``None``: unknown yet, no window; the step size still adapts).
    """

    def __init__(self, kernel: Kernel, n_warmup: int | None = None) -> None:
        self.kernel = kernel
        self.initial = kernel.step_size
        self.target_accept = kernel.target_accept if kernel.step_size_adaptable else None
        self.per_chain = kernel.per_chain_step_size
        adapted = ("diagonal", "dense", "auto")
        self.metric = kernel.mass_matrix if kernel.mass_matrix in adapted else None
        self.diagonal = self.metric is not None  # the mass matrix adapts (kept name)
        self.n_warmup = n_warmup
        self.windows = mass_windows(n_warmup) if (self.diagonal and n_warmup) else []
        self.window_start = _buffers(n_warmup)[0] if self.windows else 0
        self.checks = check_points(n_warmup) if self.adapts else []

    @property
    def adapts_step(self) -> bool:
        """Whether warm-up updates change the step size."""
        return self.initial is not None and self.target_accept is not None

    @property
    def adapts(self) -> bool:
        """Whether warm-up updates change any parameter."""
        return self.adapts_step or self.diagonal

    def init(self, n_chains: int, like: Tensor) -> Tuning | None:
        """Initial tuning for ``like`` ``[C, D]``'s device and dtype (``None``: no params)."""
        params = self.kernel.init_params(n_chains, like)
        if params is None:
            return None
        da = dual_averaging_init(params.step_size) if self.adapts_step else None
        m = getattr(params, "inverse_mass_matrix", None) if self.diagonal else None
        variance = None if m is None else variance_init(like[:1], dense=m.ndim == 3)
        count = torch.zeros((), dtype=torch.int64, device=like.device)
        frozen = torch.tensor(not self.adapts, device=like.device)
        zeros = like.new_zeros(n_chains)
        health = ChainHealth(zeros, zeros.clone()) if self.adapts else None
        return Tuning(params, da, variance, count, frozen, health)

    def update(
        self,
        tuning: Tuning | None,
        info: NamedTuple,
        mean: Callable[[Tensor], Tensor] | None = None,
        x: Tensor | None = None,
        log_prob: Tensor | None = None,
    ) -> Tuning | None:
        """One warm-up update from a step's ``info.accept_local`` and the chains' new
        positions ``x [C, D]`` (needed with an adapted mass matrix) and ``log_prob [C]``
        (which chains count in the metric; without it, every chain that mixes); no
        host sync.

        ``mean`` averages the statistics across ranks (see :func:`dual_averaging_update`).
        The caller decides, on the host, whether the run is still warming up; a frozen
        or non-adaptive tuning is returned as is.
        """
        if tuning is None or not self.adapts:
            return tuning
        params, da, variance, health = tuning.params, tuning.da, tuning.variance, tuning.health
        count = tuning.count + 1
        if health is not None:
            health = ChainHealth(health.accept_sum + info.accept_local, health.steps + 1)
        if da is not None:
            da = dual_averaging_update(da, info.accept_local, self.target_accept, mean)
            params = params._replace(step_size=da.log_step.exp())
        if variance is not None and self.windows:
            if x is None:
                raise ValueError("Warmup.update: an adapted mass matrix needs `x`")
            dense = variance.m2.ndim == 3  # a [1, D, D] metric ("dense", "auto" in few D)
            inside = (count > self.window_start) & (count <= self.windows[-1])
            weight = inside.to(x.dtype)
            if health is not None:
                lp = log_prob if log_prob is not None else x.new_zeros(x.shape[0])
                mixing = ~lost_chains(health, lp)
                weight = weight * mixing.to(x.dtype)
            variance = variance_update(variance, x, weight, mean)
            end = torch.isin(count, torch.tensor(self.windows, device=count.device))
            # keep the previous metric when too few draws mixed in this window
            enough = variance.count >= 10 + (x.shape[-1] if dense else 0)
            end_ok = end & enough
            estimate = variance_final(variance)
            if dense:
                estimate, chol = dense_cholesky(estimate)
                params = params._replace(
                    inverse_mass_matrix=torch.where(end_ok, estimate, params.inverse_mass_matrix),
                    inverse_mass_cholesky=torch.where(end_ok, chol, params.inverse_mass_cholesky),
                )
            else:
                new_m = torch.where(end_ok, estimate, params.inverse_mass_matrix)
                params = params._replace(inverse_mass_matrix=new_m)
            variance = _where(end, variance_init(x[:1], dense=dense), variance)
            if da is not None:  # restart dual averaging from the current step size
                da = _where(end_ok, dual_averaging_init(params.step_size), da)
        return tuning._replace(params=params, da=da, variance=variance, count=count, health=health)

    def rescue(self, tuning: Tuning | None, state: ChainState) -> tuple[Tuning | None, ChainState]:
        """At a check (:func:`check_points`), give each lost chain (:func:`lost_chains`)
        the state of a healthy one, with its per-chain step-size state, and restart
        every chain's health statistics; elsewhere return both unchanged. No host sync.

        The healthy chain is spread over the lost ones by a fixed hash of the chain
        index and the clock (no random draw: the run's random stream is untouched).
        """
        if tuning is None or tuning.health is None or not self.checks:
            return tuning, state
        at_check = torch.isin(tuning.count, torch.tensor(self.checks, device=tuning.count.device))
        lost = lost_chains(tuning.health, state.log_prob)
        n = lost.shape[0]
        n_ok = (~lost).sum()
        order = torch.argsort(lost.to(torch.int8), stable=True)  # healthy chains first
        chain = torch.arange(n, device=lost.device)
        slot = (chain * 40503 + tuning.count * 2654435761) % n_ok.clamp_min(1)
        donor = order[slot]
        move = lost & at_check & (n_ok > 0)

        def take(t: Tensor | None) -> Tensor | None:
            if t is None or t.ndim == 0 or t.shape[0] != n:
                return t  # shared (``[]``, ``[1, D]``) or absent
            return torch.where(move.reshape((n,) + (1,) * (t.ndim - 1)), t[donor], t)

        state = ChainState(*(take(t) for t in state))
        da = tuning.da if tuning.da is None else DualAveragingState(*map(take, tuning.da))
        params = tuning.params._replace(step_size=take(tuning.params.step_size))
        health = _where(at_check, ChainHealth(*map(torch.zeros_like, tuning.health)), tuning.health)
        return tuning._replace(params=params, da=da, health=health), state

    def step(
        self,
        tuning: Tuning | None,
        info: NamedTuple,
        state: ChainState,
        mean: Callable[[Tensor], Tensor] | None = None,
    ) -> tuple[Tuning | None, ChainState]:
        """:meth:`update` from the step's ``info`` and new ``state``, then
        :meth:`rescue`: the warm-up's work after one kernel step."""
        tuning = self.update(tuning, info, mean, x=state.x, log_prob=state.log_prob)
        return self.rescue(tuning, state)

    def freeze(self, tuning: Tuning | None) -> Tuning | None:
        """End of warm-up: fix the step size to the averaged iterate, keep the mass
        matrix of the last window (idempotent)."""
        if tuning is None or not self.adapts:
            return tuning
        params = tuning.params
        if tuning.da is not None:
            final = dual_averaging_final(tuning.da)
            params = params._replace(step_size=torch.where(tuning.frozen, params.step_size, final))
        return tuning._replace(params=params, frozen=torch.ones_like(tuning.frozen))

    @staticmethod
    def params(tuning: Tuning | None) -> NamedTuple | None:
        """The ``params`` argument of the kernel's next step (``None`` without params)."""
        return None if tuning is None else tuning.params

    @staticmethod
    def step_size(tuning: Tuning | None) -> Tensor | None:
        """The current step size (``None`` without params)."""
        return None if tuning is None else tuning.params.step_size
