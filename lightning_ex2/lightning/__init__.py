"""The Lightning shell: everything that needs ``pytorch_lightning``.

The sampler modules (:class:`MCMCSampler`, :class:`FlEx2MCMC`) orchestrate the core's kernels
over a population of chains (:class:`ChainDataModule`); callbacks observe
(:class:`ChainDiagnostics`, :class:`SweepProgressBar`, :class:`SampleWriter`); the trainer
(running the core's :mod:`lightning_ex2.checks` before any step), its guard, and the
``lightning-ex2`` command line (:mod:`.cli`) run them. Code that needs no Lightning lives
in the core. It imports the core, never :mod:`lightning_ex2.gan`.
"""

from lightning_ex2._lazy import lazy_getattr

#: the public names, imported on first use (``lightning-ex2`` checks its environment
#: before anything imports Lightning): name -> submodule
_LAZY = {
    "ChainDDPStrategy": "data",
    "ChainDataModule": "data",
    "ChainDataset": "data",
    "ChainDiagnostics": "callbacks",
    "FlEx2MCMC": "flex2mcmc",
    "MCMCSampler": "module",
    "SampleWriter": "callbacks",
    "SamplingConfig": "module",
    "SweepProgressBar": "callbacks",
}

__all__ = sorted(_LAZY)

__getattr__ = lazy_getattr(__name__, _LAZY)
