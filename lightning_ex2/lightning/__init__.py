"""The Lightning shell: everything that needs ``pytorch_lightning``.

The sampler modules (:class:`MCMCSampler`, :class:`FlEx2MCMC`) orchestrate the core's kernels
over a population of chains (:class:`ChainDataModule`); callbacks observe
(:class:`ChainDiagnostics`, :class:`SweepProgressBar`, :class:`SampleWriter`); the trainer,
its checks and guard, and the ``lightning-ex2`` command line (:mod:`.cli`) run them.
It imports the core, never :mod:`lightning_ex2.gan`.
"""

import importlib
import importlib.util
from typing import Any

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


def __getattr__(name: str) -> Any:
    """The public names and every submodule (``lx.lightning.cli``), on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
