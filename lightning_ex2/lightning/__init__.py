"""The Lightning shell: everything that needs ``pytorch_lightning``.

The sampler modules (:class:`MCMCSampler`, :class:`FlEx2MCMC`) orchestrate the core's kernels
over a population of chains (:class:`ChainDataModule`); callbacks observe
(:class:`ChainDiagnostics`, :class:`SweepProgressBar`, :class:`SampleWriter`); the trainer,
its checks and guard, and the ``lightning-ex2`` command line (:mod:`.cli`) run them.
It imports the core, never :mod:`lightning_ex2.gan`.
"""

from lightning_ex2.lightning.callbacks import ChainDiagnostics, SampleWriter, SweepProgressBar
from lightning_ex2.lightning.data import ChainDataModule, ChainDataset, ChainDDPStrategy
from lightning_ex2.lightning.flex2mcmc import FlEx2MCMC
from lightning_ex2.lightning.module import MCMCSampler, SamplingConfig

__all__ = [
    "ChainDDPStrategy",
    "ChainDataModule",
    "ChainDataset",
    "ChainDiagnostics",
    "FlEx2MCMC",
    "MCMCSampler",
    "SampleWriter",
    "SamplingConfig",
    "SweepProgressBar",
]
