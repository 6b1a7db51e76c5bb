"""LightningModules that orchestrate: the samplers ``MCMCSampler`` and ``FlEx2MCMC``, the GAN
trainer ``GANModule`` and its discriminator calibration ``DiscriminatorCalibration``."""

from lightning_ex2.modules.calibration import DiscriminatorCalibration
from lightning_ex2.modules.flex2mcmc import FlEx2MCMC
from lightning_ex2.modules.gan import LOSSES, GANModule
from lightning_ex2.modules.sampler import MCMCSampler, SamplingConfig

__all__ = [
    "LOSSES",
    "DiscriminatorCalibration",
    "FlEx2MCMC",
    "GANModule",
    "MCMCSampler",
    "SamplingConfig",
]
