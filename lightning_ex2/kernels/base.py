"""Kernel base classes and the helpers shared by every MCMC kernel.

A kernel is an ``nn.Module`` holding only hyper-parameters (and, for global
kernels, the proposal). Its methods are pure functions of their inputs
(the contract: :class:`lightning_ex2.protocols.Kernel`; these base classes are a
convenience, not a requirement):

* ``init(x [C, D], target) -> ChainState``
* ``init_params(n_chains, like) -> params`` (``None`` for kernels without any)
* ``step(state, target, generator=None, params=None) -> (ChainState, info)``

The state is what the chain is (position, cached log-density and gradient). The
tuned values are the kernel's own small NamedTuple of parameters (e.g.
:class:`~lightning_ex2.kernels.MALAParams` ``(step_size, inverse_mass_matrix)``),
a step argument adapted outside the kernel during warm-up
(:mod:`lightning_ex2.kernels.adaptation`) and then frozen. ``info`` is a small
NamedTuple of per-chain ``[C]`` tensors. Nothing inside a step calls ``.item()``,
``.cpu()`` or branches on tensor values, so a step never synchronises with the host.

Shapes of the parameters: ``step_size`` ``[]`` (shared) or ``[C]`` (per chain);
``inverse_mass_matrix`` ``None`` (identity), ``[1, D]`` (a diagonal shared by
all chains: the leading 1 marks it as shared, and it broadcasts over ``[C, D]``) or
``[1, D, D]`` (dense, with its lower Cholesky factor ``inverse_mass_cholesky``).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from lightning_ex2 import random as _random
from lightning_ex2.protocols import target_hook
from lightning_ex2.types import ChainState, Gen

__all__ = [
    "COUNT_FIELDS",
    "MASS_MATRICES",
    "ChainState",
    "Gen",
    "GradientKernel",
    "KernelBase",
    "LocalInfo",
    "LocalParams",
    "check_start",
    "count_nonfinite",
    "finite_or_neg_inf",
    "finite_rows",
    "log_prob_and_grad",
    "log_prob_only",
    "metropolis_accept",
    "rand",
    "randn",
    "select",
]

#: info fields that are per-chain event counts (summed over steps, not averaged)
COUNT_FIELDS = ("nonfinite",)

#: the ``mass_matrix`` choices of the gradient kernels
MASS_MATRICES = ("identity", "diagonal", "dense", "auto")
#: ``mass_matrix="auto"`` is dense up to this dimension, diagonal above it
AUTO_DENSE_MAX_DIM = 100


def resolve_mass_matrix(mass_matrix: str, dim: int) -> str:
    """The metric a kernel with ``mass_matrix`` uses in ``dim`` dimensions.

    ``"auto"`` is ``"dense"`` for ``dim <= AUTO_DENSE_MAX_DIM`` (a covariance: what
    correlated posteriors need, cheap to apply and well estimated from many chains'
    pooled warm-up draws at that size) and ``"diagonal"`` above (``O(D)`` per step; a
    dense estimate would need ever more draws); the other choices are returned as they are.

    Example:
        >>> resolve_mass_matrix("auto", 26), resolve_mass_matrix("auto", 784)
        ('dense', 'diagonal')
    """
    if mass_matrix == "auto":
        return "dense" if dim <= AUTO_DENSE_MAX_DIM else "diagonal"
    return mass_matrix


#: what ``step`` accepts as ``params``: the kernel's NamedTuple, a bare step size
#: (``[]`` or ``[C]`` tensor, or a float: the identity mass matrix), or ``None``
#: (the kernel's configured step size, identity mass matrix)
ParamsArg = tuple | Tensor | float | None


class LocalParams(NamedTuple):
    """The tuned parameters of a gradient kernel (ULA, MALA, HMC).

    Attributes:
        step_size: ``[]`` or ``[C]``.
        inverse_mass_matrix: ``None`` (identity), the diagonal ``[1, D]`` or the dense
            ``[1, D, D]`` (shared by all chains).
        inverse_mass_cholesky: ``None``, or with a dense ``inverse_mass_matrix`` its lower
            Cholesky factor ``L`` ``[1, D, D]`` (``L L' = M^-1``).
    """

    step_size: Tensor
    inverse_mass_matrix: Tensor | None = None
    inverse_mass_cholesky: Tensor | None = None


class LocalInfo(NamedTuple):
    """Per-chain ``[C]`` diagnostics of a local (gradient) move."""

    accept_local: Tensor  # Metropolis-Hastings acceptance probability (ULA: 1 if finite)
    nonfinite: Tensor  # NaN/+inf log-densities met (0 or 1 per chain for one proposal)


def log_prob_and_grad(target: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """``log pi(x)`` ``[...]`` and its gradient ``[..., D]`` in one autograd pass.

    Works inside ``torch.no_grad()``; the results carry no graph. A target with its
    own ``log_prob_and_grad(x)`` (closed-form gradient, e.g. the built-in funnel; see
    :class:`~lightning_ex2.protocols.Target`) is asked for both instead.

    Raises:
        TypeError: ``target.log_prob`` is not differentiable in ``x`` (computed
            outside autograd, e.g. in NumPy or under ``no_grad``).
    """
    fused = target_hook(target, "log_prob_and_grad")
    if fused is not None:
        with torch.no_grad():
            return fused(x.detach())
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        log_prob = target.log_prob(x)
        if not log_prob.requires_grad:
            raise TypeError(
                f"{type(target).__name__}.log_prob is not differentiable in x (its result "
                "has no autograd graph); gradient kernels (MALA, HMC, ULA, Ex2MCMC) need "
                "it: compute log_prob with torch operations, or use ISIR"
            )
        (grad,) = torch.autograd.grad(log_prob.sum(), x, allow_unused=True)
    if grad is None:  # log pi does not depend on x
        grad = torch.zeros_like(x)
    return log_prob.detach(), grad.detach()


def log_prob_only(target: nn.Module, x: Tensor) -> Tensor:
    """``log pi(x)`` without building a graph: ``[..., D] -> [...]``."""
    with torch.no_grad():
        return target.log_prob(x)


def count_nonfinite(log_prob: Tensor, point_finite: Tensor) -> Tensor:
    """Per-chain count of NaN or ``+inf`` log-densities at finite points:
    ``log_prob [C, ...]``, ``point_finite [C, ...]`` bool ``-> [C]`` (``log_prob``'s dtype).

    ``-inf`` (outside the support) is legitimate and not counted, and neither is a point
    that is itself not finite (a diverged HMC trajectory, an overflowing ULA move):
    what is counted is a target returning NaN/+inf where it should not. The caller
    says which points are finite from a reduction it already has (i-SIR: the fresh
    particles' ``log q``, finite iff the particle is; local kernels: their ``[C, D]``
    proposal), never from an extra pass over the ``[C, N, D]`` particle array.
    """
    bad = (torch.isnan(log_prob) | (log_prob == torch.inf)) & point_finite
    return bad.reshape(bad.shape[0], -1).sum(-1).to(log_prob.dtype)


def finite_rows(x: Tensor) -> Tensor:
    """``x [..., D] -> [...]`` bool: whether every coordinate is finite (local kernels'
    ``[C, D]`` proposals; see :func:`count_nonfinite`)."""
    return torch.isfinite(x).all(-1)


def check_start(x: Tensor, log_prob: Tensor, grad: Tensor | None = None) -> None:
    """Raise ``ValueError`` on a start that cannot be used, naming what is wrong.

    Checks shapes (``x [C, D]``, ``log_prob [C]``) and finiteness (naming the
    chains). Called once per run (it synchronises with the host), never in a step.
    """
    if x.ndim != 2:
        raise ValueError(f"initial points must have shape [n_chains, dim], got {tuple(x.shape)}")
    if log_prob.shape != x.shape[:1]:
        raise ValueError(
            f"target.log_prob returned shape {tuple(log_prob.shape)} for points of shape "
            f"{tuple(x.shape)}; it must return one value per point, shape {tuple(x.shape[:1])} "
            "(sum over the last axis?)"
        )
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


class KernelBase(nn.Module):
    """Base class of the built-in kernels: hyper-parameters only, no chain state.

    The class attributes are the capabilities of
    :class:`lightning_ex2.protocols.Kernel`; subclasses override what they have.
    """

    #: whether the state caches ``grad log pi``
    uses_grad: bool = False
    #: initial (or fixed) step size; ``None``: the kernel has none
    step_size: float | None = None
    #: acceptance the warm-up adapts the step size toward; ``None``: fixed
    target_accept: float | None = None
    #: one step size per chain (``[C]``) instead of a shared one (``[]``)
    per_chain_step_size: bool = False
    #: whether a warm-up may adapt the step size (from ``info.accept_local``)
    step_size_adaptable: bool = False
    #: ``"identity"``, ``"diagonal"``, ``"dense"`` or ``"auto"`` (dense up to
    #: :data:`AUTO_DENSE_MAX_DIM` dimensions; adapted during warm-up, then frozen)
    mass_matrix: str = "identity"
    #: whether the kernel has an i-SIR move (``proposal``, ``explore``, ...)
    is_global: bool = False

    def init(self, x: Tensor, target: nn.Module) -> ChainState:
        raise NotImplementedError

    def init_params(self, n_chains: int, like: Tensor) -> NamedTuple | None:
        """Initial parameters on ``like``'s (``[C, D]``) device and dtype; ``None``: none."""
        return None

    def step(
        self, state: ChainState, target: nn.Module, generator: Gen = None, params: Any = None
    ) -> tuple[ChainState, NamedTuple]:
        raise NotImplementedError

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


class GradientKernel(KernelBase):
    """Base of the local gradient kernels (ULA, MALA, HMC): parameters, init, preamble."""

    uses_grad = True
    #: the kernel's parameter tuple (a :class:`LocalParams`-shaped NamedTuple)
    Params: type = LocalParams
    #: the settings ``repr`` shows, in order
    repr_fields: tuple[str, ...] = ("step_size", "target_accept", "mass_matrix")

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={getattr(self, k)!r}" for k in self.repr_fields)

    def _setup_params(
        self,
        step_size: float,
        target_accept: float | None,
        per_chain_step_size: bool,
        mass_matrix: str = "identity",
    ) -> None:
        if not (isinstance(step_size, int | float) and math.isfinite(step_size) and step_size > 0):
            raise ValueError(f"`step_size` must be a positive number, got {step_size!r}")
        if target_accept is not None and not 0.0 < target_accept < 1.0:
            raise ValueError(f"`target_accept` must lie in (0, 1), got {target_accept!r}")
        if mass_matrix not in MASS_MATRICES:
            raise ValueError(
                f"`mass_matrix` must be one of {', '.join(map(repr, MASS_MATRICES))}, "
                f"got {mass_matrix!r}"
            )
        self.step_size = float(step_size)
        self.target_accept = None if target_accept is None else float(target_accept)
        self.per_chain_step_size = bool(per_chain_step_size)
        self.mass_matrix = mass_matrix

    def init(self, x: Tensor, target: nn.Module) -> ChainState:
        log_prob, grad = log_prob_and_grad(target, x)
        check_start(x, log_prob, grad)
        return ChainState(x.detach(), log_prob, grad)

    def init_params(self, n_chains: int, like: Tensor) -> NamedTuple:
        shape = (n_chains,) if self.per_chain_step_size else ()
        h = torch.full(shape, self.step_size, device=like.device, dtype=like.dtype)
        dim = like.shape[-1]
        metric = resolve_mass_matrix(self.mass_matrix, dim)
        if metric == "dense":
            eye = torch.eye(dim, device=like.device, dtype=like.dtype).unsqueeze(0)
            return self.Params(h, eye, eye.clone())
        diag = metric == "diagonal"
        return self.Params(h, like.new_ones((1, dim)) if diag else None)

    def _start(
        self, state: ChainState, target: nn.Module, params: ParamsArg
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor | None]:
        """``(x, log_prob, grad, h [] or [C], h_x broadcastable to [C, D], m)`` of a step,
        ``m`` the inverse mass matrix ``[1, D]`` or ``None`` (identity).

        Recomputes a dropped gradient (after an i-SIR move).
        """
        x, log_prob, grad = state.x, state.log_prob, state.grad
        if grad is None:
            log_prob, grad = log_prob_and_grad(target, x)
        if isinstance(params, tuple):
            h, m = params.step_size, params.inverse_mass_matrix
        else:
            h, m = (self.step_size if params is None else params), None
        h = torch.as_tensor(h, dtype=x.dtype, device=x.device)
        return x, log_prob, grad, h, (h.unsqueeze(-1) if h.ndim else h), m

    @staticmethod
    def _cholesky(params: ParamsArg) -> Tensor | None:
        """The dense metric's ``L`` ``[D, D]`` (``L L' = M^-1``), else ``None``."""
        chol = getattr(params, "inverse_mass_cholesky", None) if isinstance(params, tuple) else None
        return None if chol is None else chol[0]

    @staticmethod
    def _langevin(
        x: Tensor, grad: Tensor, hm: Tensor, target: nn.Module, generator: Gen
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Langevin proposal ``y = x + h M^-1 grad + sqrt(2h M^-1) xi`` (``hm = h M^-1``):
        ``(y, xi, log pi(y), grad(y))``."""
        noise = randn(tuple(x.shape), x, generator)
        y = torch.addcmul(torch.addcmul(x, hm, grad), (2 * hm).sqrt(), noise)  # fused
        log_prob_y, grad_y = log_prob_and_grad(target, y)
        return y, noise, log_prob_y, grad_y

    @staticmethod
    def _metropolis(
        state: ChainState,
        y: Tensor,
        log_prob_y: Tensor,
        grad_y: Tensor,
        log_alpha: Tensor,
        generator: Gen,
    ) -> tuple[ChainState, LocalInfo]:
        """Accept the proposal ``(y, log pi(y), grad(y))`` ``[C, D]``/``[C]``/``[C, D]``
        with probability ``min(1, exp(log_alpha))``; a non-finite ``grad(y)`` is refused.

        Returns the new state (``state``'s gradient must be present) and the step's info.
        """
        x, log_prob, grad = state.x, state.log_prob, state.grad
        assert grad is not None
        log_alpha = torch.where(torch.isfinite(grad_y).all(-1), log_alpha, -torch.inf)
        accepted, accept_prob = metropolis_accept(log_alpha, generator)
        new = ChainState(
            x=select(accepted, y, x),
            log_prob=select(accepted, log_prob_y, log_prob),
            grad=select(accepted, grad_y, grad),
        )
        return new, LocalInfo(accept_prob, count_nonfinite(log_prob_y, finite_rows(y)))
