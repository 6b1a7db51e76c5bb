"""Sample-quality diagnostics: MCMC convergence (ESS, R-hat) and distances (W2², TV).

Numpy-only (ArviZ, imported when called, for :func:`diagnostics`); torch tensors are
accepted everywhere and converted to CPU float64.
"""

from lightning_ex2.diagnostics.distances import emd, marginal_tv, sliced_tv
from lightning_ex2.diagnostics.mcmc import ess, nested_rhat, rhat, split_chains
from lightning_ex2.diagnostics.summary import diagnostics, summarize

__all__ = [
    "diagnostics",
    "emd",
    "ess",
    "marginal_tv",
    "nested_rhat",
    "rhat",
    "sliced_tv",
    "split_chains",
    "summarize",
]
