"""Chain state, kernel base class and helpers shared by every MCMC kernel.

A kernel is an ``nn.Module`` holding only hyper-parameters (and, for global
kernels, the proposal). Its two methods are pure functions of their inputs:

* ``init(x [C, D], target) -> ChainState``
* ``step(state, target, generator=None, *, adapt=False) -> (ChainState, info)``

``info`` is a small NamedTuple of per-chain ``[C]`` tensors. Nothing inside a
step calls ``.item()``, ``.cpu()`` or branches on tensor values, so a step never
synchronises with the host.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from lightning_ex2 import random as _random
from lightning_ex2.kernels.adaptation import DualAveragingState


class ChainState(NamedTuple):
    """State of ``C`` chains in dimension ``D``.

    Attributes:
        x: positions ``[C, D]``.
        log_prob: ``log pi(x)`` ``[C]``, cached.
        grad: ``grad log pi(x)`` ``[C, D]`` for gradient kernels, else ``None``.
            Any move that changes ``x`` without recomputing it sets it to ``None``.
        step_size: local step size, ``[]`` (shared by all chains) or ``[C]``.
        adapt: dual-averaging state while the step size adapts, else ``None``.
    """

    x: Tensor
    log_prob: Tensor
    grad: Tensor | None = None
    step_size: Tensor | None = None
    adapt: DualAveragingState | None = None


def log_prob_and_grad(target: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """``log pi(x)`` ``[...]`` and its gradient ``[..., D]`` in one autograd pass.

    Works inside ``torch.no_grad()``; the results carry no graph. A target with its own
    ``log_prob_and_grad(x)`` (closed-form gradient, e.g. the built-in funnel) is asked
    for both instead.
    """
    fused = getattr(target, "log_prob_and_grad", None)
    if callable(fused):
        with torch.no_grad():
            return fused(x.detach())
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        log_prob = target.log_prob(x)
        (grad,) = torch.autograd.grad(log_prob.sum(), x)
    return log_prob.detach(), grad.detach()


def log_prob_only(target: nn.Module, x: Tensor) -> Tensor:
    """``log pi(x)`` without building a graph: ``[..., D] -> [...]``."""
    with torch.no_grad():
        return target.log_prob(x)


def check_start(x: Tensor, log_prob: Tensor, grad: Tensor | None = None) -> None:
    """Raise ``ValueError`` naming the chains whose start point is unusable.

    Called once per run (it synchronises with the host), never inside a step.
    """
    if x.ndim != 2:
        raise ValueError(f"initial points must have shape [n_chains, dim], got {tuple(x.shape)}")
    bad = ~torch.isfinite(x).all(-1) | ~torch.isfinite(log_prob)
    if grad is not None:
        bad |= ~torch.isfinite(grad).all(-1)
    if bool(bad.any()):
        idx = torch.nonzero(bad).flatten().tolist()
        shown = idx[:10] + (["..."] if len(idx) > 10 else [])
        raise ValueError(
            f"non-finite start point: chains {shown} ({len(idx)} of {x.shape[0]}) have a "
            "non-finite position, log-probability or gradient; choose other initial points"
        )


def randn(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """``N(0, 1)`` draws of ``shape`` on ``like``'s device and dtype; parallel streams when
    ``generator`` is a :class:`lightning_ex2.random.StreamGenerator`."""
    return _random.randn(shape, generator=generator, device=like.device, dtype=like.dtype)


def rand(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """``U[0, 1)`` draws of ``shape`` on ``like``'s device and dtype (as :func:`randn`)."""
    return _random.rand(shape, generator=generator, device=like.device, dtype=like.dtype)


def finite_or_neg_inf(t: Tensor) -> Tensor:
    """Replace NaN and +-Inf by ``-inf``: a non-finite proposal is never accepted."""
    return torch.where(torch.isfinite(t), t, torch.full_like(t, -torch.inf))


def metropolis_accept(
    log_alpha: Tensor, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """Metropolis-Hastings coin: ``(is_accepted [C] bool, accept_prob [C])``.

    NaN/Inf log-ratios count as rejections (``accept_prob = 0``).
    """
    log_alpha = finite_or_neg_inf(log_alpha)
    u = rand(tuple(log_alpha.shape), log_alpha, generator)
    is_accepted = u.log() < log_alpha
    accept_prob = log_alpha.clamp(max=0.0).exp()
    return is_accepted, accept_prob


def select(mask: Tensor, new: Tensor, old: Tensor) -> Tensor:
    """Per-chain ``where``: ``mask [C]`` broadcast over the trailing axes of ``new``."""
    return torch.where(mask.reshape(mask.shape + (1,) * (new.ndim - mask.ndim)), new, old)


class Kernel(nn.Module):
    """Base class: hyper-parameters only, no chain state."""

    #: whether the state caches ``grad log pi``
    uses_grad: bool = False

    def init(self, x: Tensor, target: nn.Module) -> ChainState:
        raise NotImplementedError

    def step(
        self,
        state: ChainState,
        target: nn.Module,
        generator: torch.Generator | None = None,
        *,
        adapt: bool = False,
    ) -> tuple[ChainState, NamedTuple]:
        raise NotImplementedError

    def freeze(self, state: ChainState) -> ChainState:
        """End of warm-up: fix the adapted step size (no-op for kernels without one)."""
        return state

    def initial_points(
        self,
        n_chains: int,
        dim: int,
        generator: torch.Generator | None,
        device: torch.device,
        dtype: torch.dtype,
    ) -> Tensor:
        """Default start ``[n_chains, dim]``: ``N(0, I)`` (global kernels: their proposal)."""
        return torch.randn((n_chains, dim), generator=generator, device=device, dtype=dtype)
