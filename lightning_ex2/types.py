"""The small data types every layer passes around; imports nothing from the package.

:mod:`lightning_ex2.protocols` (the contracts) and :mod:`lightning_ex2.kernels`
(the algorithms) both import these, so the contracts never import an algorithm.
Shapes: ``C`` chains, ``D`` the event dimension, ``N`` i-SIR particles per chain.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

#: a step's optional generator
Gen = torch.Generator | None


class ChainState(NamedTuple):
    """State of ``C`` chains in dimension ``D``.

    Attributes:
        x: positions ``[C, D]``.
        log_prob: ``log pi(x)`` ``[C]``, cached.
        grad: ``grad log pi(x)`` ``[C, D]`` for gradient kernels, else ``None``.
            Any move that changes ``x`` without recomputing it sets it to ``None``.
    """

    x: Tensor
    log_prob: Tensor
    grad: Tensor | None = None


class ISIRInfo(NamedTuple):
    """Per-chain ``[C]`` diagnostics of an i-SIR move."""

    accept_global: Tensor  # probability of leaving the current point, 1 - wbar_0
    particle_ess: Tensor  # ESS of the normalized weights divided by N, in [1/N, 1]
    nonfinite: Tensor  # NaN/+inf log-densities among the N - 1 fresh particles


class Particles(NamedTuple):
    """The particle system of one i-SIR step (particle 0 = the previous point)."""

    x: Tensor  # [C, N, D]
    log_target: Tensor  # [C, N]  log pi
    log_proposal: Tensor  # [C, N]  log q (no graph)
    log_weights: Tensor  # [C, N]  log pi - log q, -inf where not finite
    index: Tensor  # [C] selected particle
