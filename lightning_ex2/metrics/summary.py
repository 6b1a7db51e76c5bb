"""The ``summary.json`` of a sampling run."""

from __future__ import annotations

from typing import Any

import numpy as np

from lightning_ex2.metrics.distances import emd
from lightning_ex2.metrics.mcmc import ess, rhat


def summarize(
    samples: np.ndarray,
    info: dict[str, np.ndarray],
    reference: np.ndarray | None = None,
    reference2: np.ndarray | None = None,
    max_samples: int = 2000,
) -> dict[str, Any]:
    """Diagnostics of draws ``(chain, draw, dim)``.

    Args:
        samples: draws ``[C, T, D]``.
        info: per-chain ``[C]`` arrays (``accept_global``, ``accept_local``, ...);
            their means become ``<name>_mean``.
        reference: exact target samples ``[n, D]``; adds ``emd`` (W2^2).
        reference2: a second, independent exact sample; adds ``emd_exact``, the
            EMD of exact vs exact at the same sizes (the estimator's noise floor).
        max_samples: subsample size of the EMD.
    """
    n_chains, n_draws, dim = samples.shape
    out: dict[str, Any] = {"n_chains": n_chains, "n_draws": n_draws, "dim": dim}
    if n_draws >= 4:
        e = ess(samples)
        r = rhat(samples)
        out.update(
            ess_mean=float(np.nanmean(e)),
            ess_min=float(np.nanmin(e)),
            rhat_max=float(np.nanmax(r)),
        )
    else:
        out.update(ess_mean=None, ess_min=None, rhat_max=None)
    for name in ("accept_global", "accept_local", "particle_ess"):
        value = info.get(name)
        out[f"{name}_mean"] = None if value is None else float(np.mean(value))
    flat = samples.reshape(-1, dim)
    if reference is not None:
        out["emd"] = emd(flat, reference, max_samples=max_samples)
        if reference2 is not None:
            n = min(len(flat), max_samples)
            out["emd_exact"] = emd(reference2[:n], reference, max_samples=max_samples)
    return out
