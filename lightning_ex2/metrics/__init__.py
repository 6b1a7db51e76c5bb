"""Sample-quality diagnostics: MCMC convergence (ESS, R-hat) and distances (W2², TV).

Numpy-only (ArviZ, imported when called, for :func:`diagnostics`); torch tensors are
accepted everywhere and converted to CPU float64. The image metrics' feature networks
(:class:`ClassifierFeatures`, :class:`ClassifierLogits` over one :class:`FeatureCNN`) are in
:mod:`~lightning_ex2.metrics.classifier` (torch, imported on first use, so that
``class_path: lightning_ex2.metrics.ClassifierFeatures`` works in configs).
"""

from typing import Any

from .distances import emd, marginal_tv, sliced_tv
from .mcmc import ess, nested_rhat, rhat, split_chains
from .summary import diagnostics, summarize

__all__ = [
    "ClassifierFeatures",
    "ClassifierLogits",
    "FeatureCNN",
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

_TORCH_NAMES = ("ClassifierFeatures", "ClassifierLogits", "FeatureCNN")


def __getattr__(name: str) -> Any:
    if name in _TORCH_NAMES:
        from . import classifier

        return getattr(classifier, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
