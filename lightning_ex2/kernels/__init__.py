"""Batched MCMC kernels: ``init(x, target) -> state``, ``step(state, target, generator,
params) -> (state, info)``; parameters per kernel (``MALAParams``, ...), adapted by
:class:`Warmup`."""

from lightning_ex2.kernels.adaptation import (
    ChainHealth,
    DualAveragingState,
    Tuning,
    VarianceState,
    Warmup,
)
from lightning_ex2.kernels.base import GradientKernel, KernelBase, LocalInfo, log_prob_and_grad
from lightning_ex2.kernels.ex2mcmc import Ex2Info, Ex2MCMC
from lightning_ex2.kernels.hmc import HMC, HMCParams
from lightning_ex2.kernels.isir import ISIR
from lightning_ex2.kernels.mala import MALA, MALAParams
from lightning_ex2.kernels.ula import ULA, ULAParams
from lightning_ex2.protocols import GlobalKernel, Kernel, LocalKernel
from lightning_ex2.types import ChainState, ISIRInfo, Particles

__all__ = [
    "HMC",
    "ISIR",
    "MALA",
    "ULA",
    "ChainHealth",
    "ChainState",
    "DualAveragingState",
    "Ex2Info",
    "Ex2MCMC",
    "GlobalKernel",
    "GradientKernel",
    "HMCParams",
    "ISIRInfo",
    "Kernel",
    "KernelBase",
    "LocalInfo",
    "LocalKernel",
    "MALAParams",
    "Particles",
    "Tuning",
    "ULAParams",
    "VarianceState",
    "Warmup",
    "log_prob_and_grad",
]
