"""lightning-ex2: Explore-Exploit MCMC (i-SIR, Ex2MCMC, FlEx2MCMC) on PyTorch Lightning.

Samsonov, Lagutin, Gabrié, Durmus, Naumov, Moulines. "Local-Global MCMC kernels:
the best of both worlds", NeurIPS 2022 (arXiv 2111.02702).

Example:
    >>> import lightning_ex2 as lx
    >>> target = lx.targets.GaussianMixture.grid(k=5)
    >>> kernel = lx.kernels.Ex2MCMC(lx.proposals.GaussianProposal(2, scale=6.0),
    ...                             n_particles=50, step_size=0.2)
    >>> run = lx.sample(target, kernel, n_chains=8, n_steps=500, seed=0, progress=False)
    >>> run.summary()["converged"]
    True
"""

import pkgutil as _pkgutil

from lightning_ex2 import diagnostics, kernels, proposals, targets
from lightning_ex2._lazy import lazy_getattr as _lazy
from lightning_ex2.kernels import HMC, ISIR, MALA, ULA, Ex2MCMC
from lightning_ex2.sampling import Run, sample
from lightning_ex2.version import __version__

#: every submodule is an attribute: ``lx.output``, ``lx.gan``, ``lx.lightning``, ... are
#: imported on first use (so ``import lightning_ex2`` stays light: no Lightning)
__getattr__ = _lazy(__name__, {})


def __dir__() -> list[str]:
    public = (n for n in globals() if not n.startswith("_") or n.startswith("__"))
    return sorted({*public, *(m.name for m in _pkgutil.iter_modules(__path__))})


__all__ = [
    "HMC",
    "ISIR",
    "MALA",
    "ULA",
    "Ex2MCMC",
    "Run",
    "__version__",
    "diagnostics",
    "kernels",
    "proposals",
    "sample",
    "targets",
]
