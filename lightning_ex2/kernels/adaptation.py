"""Dual-averaging step-size adaptation (Hoffman & Gelman 2014, NUTS paper, Alg. 5).

Adaptation runs only while ``step(..., adapt=True)`` (the warm-up); ``freeze``
then fixes the step size to the averaged iterate, so the post-warm-up chain is a
fixed, pi-invariant Markov kernel (the reference implementation adapted forever).

The statistic is either shared (the mean acceptance over chains drives one step
size, shape ``[]``) or per chain (shape ``[C]``); shared is the default because
chains of a population are exchangeable and the mean is far less noisy. A
kernel's optional ``reduce_mean`` attribute (set by the LightningModule in
multi-device runs) averages the shared statistic across ranks.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor


class DualAveragingState(NamedTuple):
    """Tensors of the step-size shape (``[]`` or ``[C]``)."""

    log_step: Tensor  # current iterate log h_t
    log_step_avg: Tensor  # averaged iterate log h_bar_t (the final step size)
    error_avg: Tensor  # H_bar_t
    count: Tensor  # t
    mu: Tensor  # shrinkage point log(10 h_0)


def dual_averaging_init(step_size: Tensor) -> DualAveragingState:
    log_h = step_size.log()
    zero = torch.zeros_like(log_h)
    return DualAveragingState(log_h, log_h.clone(), zero, zero.clone(), log_h + math.log(10.0))


def dual_averaging_update(
    da: DualAveragingState,
    accept_prob: Tensor,
    target_accept: float,
    gamma: float = 0.05,
    t0: float = 10.0,
    kappa: float = 0.75,
) -> DualAveragingState:
    """One update from the acceptance probability (same shape as the step size)."""
    t = da.count + 1
    w = 1.0 / (t + t0)
    error_avg = (1 - w) * da.error_avg + w * (target_accept - accept_prob)
    log_step = da.mu - t.sqrt() / gamma * error_avg
    eta = t.pow(-kappa)
    log_step_avg = eta * log_step + (1 - eta) * da.log_step_avg
    return DualAveragingState(log_step, log_step_avg, error_avg, t, da.mu)


class StepSize:
    """Mixin for kernels with a step size and optional dual-averaging adaptation."""

    def _setup_step_size(
        self, step_size: float, target_accept: float | None, per_chain_step_size: bool
    ) -> None:
        if not (isinstance(step_size, int | float) and math.isfinite(step_size) and step_size > 0):
            raise ValueError(f"`step_size` must be a positive number, got {step_size!r}")
        if target_accept is not None and not 0.0 < target_accept < 1.0:
            raise ValueError(f"`target_accept` must lie in (0, 1), got {target_accept!r}")
        self.step_size = float(step_size)
        self.target_accept = None if target_accept is None else float(target_accept)
        self.per_chain_step_size = bool(per_chain_step_size)

    def _initial_step_size(self, x: Tensor) -> tuple[Tensor, DualAveragingState | None]:
        shape = (x.shape[0],) if self.per_chain_step_size else ()
        h = torch.full(shape, self.step_size, device=x.device, dtype=x.dtype)
        da = dual_averaging_init(h) if self.target_accept is not None else None
        return h, da

    def _adapt(
        self, h: Tensor, da: DualAveragingState | None, accept_prob: Tensor, adapt: bool
    ) -> tuple[Tensor, DualAveragingState | None]:
        if not adapt or da is None or self.target_accept is None:
            return h, da
        stat = accept_prob if self.per_chain_step_size else accept_prob.mean()
        reduce_mean = getattr(self, "reduce_mean", None)
        if reduce_mean is not None and not self.per_chain_step_size:
            stat = reduce_mean(stat)  # multi-device runs: one shared statistic
        da = dual_averaging_update(da, stat, self.target_accept)
        return da.log_step.exp(), da

    def freeze(self, state):  # type: ignore[no-untyped-def]
        if state.adapt is None:
            return state
        return state._replace(step_size=state.adapt.log_step_avg.exp())
