"""LightningModules that orchestrate kernels: ``MCMCSampler`` and ``FlEx2MCMC``."""

from lightning_ex2.modules.flex2mcmc import FlEx2MCMC
from lightning_ex2.modules.sampler import MCMCSampler, SamplingConfig

__all__ = ["FlEx2MCMC", "MCMCSampler", "SamplingConfig"]
