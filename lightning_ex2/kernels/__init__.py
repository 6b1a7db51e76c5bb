"""Batched MCMC kernels: ``init(x, target) -> state``, ``step(state, target, ...) -> (state, info)``."""

from lightning_ex2.kernels.adaptation import DualAveragingState, Tuning, Warmup
from lightning_ex2.kernels.base import ChainState, Kernel, log_prob_and_grad
from lightning_ex2.kernels.ex2mcmc import Ex2Info, Ex2MCMC
from lightning_ex2.kernels.hmc import HMC
from lightning_ex2.kernels.isir import ISIR, ISIRInfo, Particles
from lightning_ex2.kernels.mala import MALA, LocalInfo
from lightning_ex2.kernels.ula import ULA

__all__ = [
    "HMC",
    "ISIR",
    "MALA",
    "ULA",
    "ChainState",
    "DualAveragingState",
    "Ex2Info",
    "Ex2MCMC",
    "ISIRInfo",
    "Kernel",
    "LocalInfo",
    "Particles",
    "Tuning",
    "Warmup",
    "log_prob_and_grad",
]
