"""Step-size adaptation: dual averaging, and the warm-up-then-frozen phase.

* Dual averaging (Hoffman & Gelman 2014, NUTS paper, Alg. 5) is a standalone
  triple of pure functions, :func:`dual_averaging_init`, :func:`dual_averaging_update`
  and :func:`dual_averaging_final`. The update takes the cross-rank mean as an
  explicit argument (multi-device runs share one statistic).
* :class:`Warmup` is the one phase structure shared by :func:`lightning_ex2.sample`,
  ``fit`` and ``sample``: while warming up, each kernel step is followed by one
  dual-averaging update from the step's ``info.accept_local``; :meth:`Warmup.freeze`
  then fixes the step size to the averaged iterate, so the post-warm-up chain is a
  fixed, pi-invariant Markov kernel (the reference implementation adapted forever).

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
    ...     state, info = kernel.step(state, target, step_size=tuning.step_size)
    ...     tuning = warmup.update(tuning, info)
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

from lightning_ex2.kernels.base import Kernel


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


class Tuning(NamedTuple):
    """The tuned parameters of a run (shapes ``[]`` or ``[C]``).

    Attributes:
        step_size: the step argument of the kernel's next step.
        da: dual-averaging state (inert once frozen or without ``target_accept``).
        frozen: ``[]`` bool, True once the warm-up has ended.
    """

    step_size: Tensor
    da: DualAveragingState
    frozen: Tensor


class Warmup:
    """Warm-up (adapt the step size toward ``kernel.target_accept``), then frozen.

    Built from the kernel's capabilities; kernels without a step size get no
    tuning (:meth:`init` returns ``None``) and every method accepts ``None``.

    Args:
        kernel: the kernel whose step size is tuned.
    """

    def __init__(self, kernel: Kernel) -> None:
        self.initial = kernel.step_size
        self.target_accept = kernel.target_accept if kernel.step_size_adaptable else None
        self.per_chain = kernel.per_chain_step_size

    @property
    def adapts(self) -> bool:
        """Whether warm-up steps change the step size."""
        return self.initial is not None and self.target_accept is not None

    def init(self, n_chains: int, like: Tensor) -> Tuning | None:
        """Initial tuning on ``like``'s device and dtype (``None`` without a step size)."""
        if self.initial is None:
            return None
        shape = (n_chains,) if self.per_chain else ()
        h = torch.full(shape, self.initial, device=like.device, dtype=like.dtype)
        frozen = torch.tensor(not self.adapts, device=like.device)
        return Tuning(h, dual_averaging_init(h), frozen)

    def update(
        self,
        tuning: Tuning | None,
        info: NamedTuple,
        mean: Callable[[Tensor], Tensor] | None = None,
    ) -> Tuning | None:
        """One warm-up update from a step's ``info.accept_local`` (no host sync).

        ``mean`` averages the shared statistic across ranks (see
        :func:`dual_averaging_update`). The caller decides, on the host, whether
        the run is still warming up; a frozen or non-adaptive tuning is returned as is.
        """
        if tuning is None or not self.adapts:
            return tuning
        da = dual_averaging_update(tuning.da, info.accept_local, self.target_accept, mean)
        return tuning._replace(step_size=da.log_step.exp(), da=da)

    def freeze(self, tuning: Tuning | None) -> Tuning | None:
        """End of warm-up: fix the step size to the averaged iterate (idempotent)."""
        if tuning is None or not self.adapts:
            return tuning
        step_size = torch.where(tuning.frozen, tuning.step_size, dual_averaging_final(tuning.da))
        return tuning._replace(step_size=step_size, frozen=torch.ones_like(tuning.frozen))

    @staticmethod
    def step_size(tuning: Tuning | None) -> Tensor | None:
        """The step argument for the kernel (``None`` without a step size)."""
        return None if tuning is None else tuning.step_size
