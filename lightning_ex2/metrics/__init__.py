"""Sample-quality diagnostics: MCMC convergence (ESS, R-hat) and distances (W2², TV).

Numpy-only; torch tensors are accepted everywhere and converted to CPU float64.
"""

from .distances import emd, marginal_tv, sliced_tv
from .mcmc import ess, rhat, split_chains
from .summary import summarize

__all__ = ["emd", "ess", "marginal_tv", "rhat", "sliced_tv", "split_chains", "summarize"]
