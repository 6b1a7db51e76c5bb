"""Adaptation of a kernel's parameters during warm-up, then frozen.

Each parameter field has its own triple of pure functions (init, update, final):

* the step size: dual averaging toward a target acceptance (Hoffman & Gelman 2014,
  the NUTS paper, Alg. 5): :func:`dual_averaging_init`, :func:`dual_averaging_update`,
  :func:`dual_averaging_final`;
* the diagonal inverse mass matrix: a per-coordinate variance pooled over the chains
  (we have many), accumulated over Stan's windows (:func:`mass_windows`: a fast
  initial buffer, slow windows doubling in length, a fast final buffer) and
  regularized as Stan does: :func:`variance_init`, :func:`variance_update`,
  :func:`variance_final`. At the end of each slow window the inverse mass matrix
  becomes the window's variance and dual averaging restarts from the current step.

The updates take the cross-rank mean as an explicit argument (multi-device runs
share one statistic, so every rank keeps the same parameters).

:class:`Warmup` is the one phase structure shared by :func:`lightning_ex2.sample`,
``fit`` and ``sample``: while warming up, each kernel step is followed by one update
from the step's ``info.accept_local`` and the chains' new positions;
:meth:`Warmup.freeze` then fixes the step size to the averaged iterate and keeps the
last mass matrix, so the post-warm-up chain is a fixed, pi-invariant Markov kernel
(the reference implementation adapted forever). Everything is tensors updated with
``torch.where``: no host synchronisation in the loop.

The statistic is either shared (the mean acceptance over chains drives one step
size, shape ``[]``) or per chain (shape ``[C]``); shared is the default because
chains of a population are exchangeable and the mean is far less noisy.

Example:
    >>> import torch, lightning_ex2 as lx
    >>> target = lx.targets.Gaussian(torch.zeros(2), torch.eye(2))
    >>> kernel = lx.MALA(step_size=0.01, target_accept=0.574)
    >>> warmup = Warmup(kernel)
    >>> state = kernel.init(torch.zeros(64, 2), target)
    >>> tuning = warmup.init(64, state.x)
    >>> for _ in range(100):
    ...     state, info = kernel.step(state, target, None, tuning.params)
    ...     tuning = warmup.update(tuning, info, x=state.x)
    >>> tuning = warmup.freeze(tuning)
    >>> bool(tuning.frozen), tuning.step_size.item() > 0.01
    (True, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from lightning_ex2.protocols import Kernel


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


class VarianceState(NamedTuple):
    """Pooled per-coordinate moments of the current window (Welford/Chan)."""

    count: Tensor  # [] draws accumulated (chains x steps)
    mean: Tensor  # [1, D]
    m2: Tensor  # [1, D] sum of squared deviations


def variance_init(like: Tensor) -> VarianceState:
    """An empty window, shaped like ``like`` ``[1, D]``."""
    zero = torch.zeros_like(like)
    return VarianceState(like.new_zeros(()), zero, zero.clone())


def variance_update(
    vs: VarianceState,
    x: Tensor,
    weight: Tensor | float = 1.0,
    mean: Callable[[Tensor], Tensor] | None = None,
) -> VarianceState:
    """Add the draws ``x [C, D]`` (all chains pooled) when ``weight`` is 1, not when 0.

    ``mean`` is the cross-rank average (multi-device runs): the batch mean and
    variance are averaged over ranks, so every rank accumulates the same moments.
    """
    mean = mean or (lambda t: t)
    x = x.detach()
    batch_mean = mean(x.mean(0, keepdim=True))
    batch_m2 = mean((x - batch_mean).square().mean(0, keepdim=True)) * x.shape[0]
    n_b = torch.as_tensor(weight, dtype=x.dtype, device=x.device) * x.shape[0]
    n = vs.count + n_b
    frac = torch.where(n > 0, n_b / n.clamp_min(1.0), torch.zeros_like(n))
    delta = batch_mean - vs.mean
    new_mean = vs.mean + delta * frac
    new_m2 = vs.m2 + n_b / x.shape[0] * batch_m2 + delta.square() * vs.count * frac
    return VarianceState(n, new_mean, new_m2)


def variance_final(vs: VarianceState) -> Tensor:
    """Stan's regularized variance ``n/(n+5) var + 1e-3 * 5/(n+5)``, ``[1, D]``."""
    n = vs.count
    var = vs.m2 / (n - 1).clamp_min(1.0)
    return (n / (n + 5.0)) * var + 1e-3 * (5.0 / (n + 5.0))


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


class Tuning(NamedTuple):
    """The tuned parameters of a run and their adaptation state.

    Attributes:
        params: the kernel's parameter tuple (e.g. ``MALAParams``), the ``params``
            argument of its next step.
        da: dual-averaging state of the step size (``None`` when it does not adapt).
        variance: the current window's moments (``None`` without a diagonal mass matrix
            to adapt).
        count: ``[]`` warm-up updates so far (the window schedule's clock).
        frozen: ``[]`` bool, True once the warm-up has ended.
    """

    params: NamedTuple
    da: DualAveragingState | None
    variance: VarianceState | None
    count: Tensor
    frozen: Tensor

    @property
    def step_size(self) -> Tensor:
        """``params.step_size`` (``[]`` or ``[C]``)."""
        return self.params.step_size


class Warmup:
    """Warm-up (adapt the kernel's parameters), then frozen.

    Built from the kernel's capabilities: the step size adapts toward
    ``kernel.target_accept`` when ``kernel.step_size_adaptable``; with
    ``kernel.mass_matrix == "diagonal"`` the inverse mass matrix adapts over
    :func:`mass_windows` ``(n_warmup)``. Kernels without parameters get no tuning
    (:meth:`init` returns ``None``) and every method accepts ``None``.

    Args:
        kernel: the kernel whose parameters are tuned.
        n_warmup: warm-up length in updates, which places the mass-matrix windows
            (``None``: unknown yet, no window; the step size still adapts).
    """

    def __init__(self, kernel: Kernel, n_warmup: int | None = None) -> None:
        self.kernel = kernel
        self.initial = kernel.step_size
        self.target_accept = kernel.target_accept if kernel.step_size_adaptable else None
        self.per_chain = kernel.per_chain_step_size
        self.diagonal = kernel.mass_matrix == "diagonal"
        self.n_warmup = n_warmup
        self.windows = mass_windows(n_warmup) if (self.diagonal and n_warmup) else []
        self.window_start = _buffers(n_warmup)[0] if self.windows else 0

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
        variance = None if m is None else variance_init(m)
        count = torch.zeros((), dtype=torch.int64, device=like.device)
        frozen = torch.tensor(not self.adapts, device=like.device)
        return Tuning(params, da, variance, count, frozen)

    def update(
        self,
        tuning: Tuning | None,
        info: NamedTuple,
        mean: Callable[[Tensor], Tensor] | None = None,
        x: Tensor | None = None,
    ) -> Tuning | None:
        """One warm-up update from a step's ``info.accept_local`` and the chains' new
        positions ``x [C, D]`` (needed with a diagonal mass matrix); no host sync.

        ``mean`` averages the statistics across ranks (see :func:`dual_averaging_update`).
        The caller decides, on the host, whether the run is still warming up; a frozen
        or non-adaptive tuning is returned as is.
        """
        if tuning is None or not self.adapts:
            return tuning
        params, da, variance = tuning.params, tuning.da, tuning.variance
        count = tuning.count + 1
        if da is not None:
            da = dual_averaging_update(da, info.accept_local, self.target_accept, mean)
            params = params._replace(step_size=da.log_step.exp())
        if variance is not None and self.windows:
            if x is None:
                raise ValueError("Warmup.update: a diagonal mass matrix needs `x`")
            inside = (count > self.window_start) & (count <= self.windows[-1])
            variance = variance_update(variance, x, inside.to(x.dtype), mean)
            ends = torch.tensor(self.windows, device=count.device)
            end = torch.isin(count, ends)
            new_m = torch.where(end, variance_final(variance), params.inverse_mass_matrix)
            params = params._replace(inverse_mass_matrix=new_m)
            empty = variance_init(new_m)
            variance = VarianceState(*(torch.where(end, e, v) for e, v in zip(empty, variance)))
            if da is not None:  # restart dual averaging from the current step size
                fresh = dual_averaging_init(params.step_size)
                da = DualAveragingState(*(torch.where(end, f, d) for f, d in zip(fresh, da)))
        return tuning._replace(params=params, da=da, variance=variance, count=count)

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
