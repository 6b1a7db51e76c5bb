"""The ``summary.json`` of a sampling run: ArviZ's diagnostics and the convergence rule.

Keys of :func:`diagnostics` (every ESS/R-hat/MCSE is computed per coordinate of the
posterior variable ``x`` and reduced over coordinates as the name says):

* ``ess_bulk_min``, ``ess_bulk_mean``: ``arviz.ess(method="bulk")``, the
  rank-normalized split-chain ESS (Vehtari et al. 2021), min / mean over coordinates;
* ``ess_tail_min``: ``arviz.ess(method="tail")`` (the 5% and 95% quantiles' ESS), min;
* ``rhat_max``: ``arviz.rhat(method="rank")``, ArviZ's default rank-normalized split
  R-hat (the larger of the bulk and folded versions), max over coordinates;
* ``mcse_mean_max``: ``arviz.mcse(method="mean")``, the Monte Carlo standard error of
  the posterior mean, max over coordinates;
* ``ess_geyer_mean``: our :func:`~lightning_ex2.diagnostics.ess` (the classic split-chain
  ESS of the mean, ``arviz.ess(method="mean")``), mean over coordinates (the key
  ``ess_mean`` before ArviZ's diagnostics were added);
* ``rhat_split_max``: our :func:`~lightning_ex2.diagnostics.rhat` (classic split R-hat,
  ``arviz.rhat(method="split")``), max over coordinates (the ``rhat_max`` of before);
* ``rhat_nested_max`` (only when chains share start points): nested R-hat
  (:func:`~lightning_ex2.diagnostics.nested_rhat`) with the chains that share a start as
  superchains, max over coordinates; ``n_superchains`` their number;
* ``converged``, ``failed_checks``, ``convergence_rule``: the verdict of
  :data:`CONVERGENCE_RULE`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from lightning_ex2.diagnostics.distances import emd
from lightning_ex2.diagnostics.mcmc import ess, nested_rhat, rhat

#: R-hat threshold (Vehtari et al. 2021: R-hat <= 1.01)
RHAT_MAX = 1.01
#: bulk and tail ESS needed: 100 per chain, at most 400 in all (Vehtari et al. 2021;
#: ArviZ and Stan's guidance of 400 for 4 chains)
ESS_PER_CHAIN, ESS_TOTAL = 100, 400
#: the rule, as written into ``summary.json``
CONVERGENCE_RULE = (
    f"rhat_max <= {RHAT_MAX} (rhat_nested_max when chains share starts) and "
    f"ess_bulk_min, ess_tail_min >= min({ESS_PER_CHAIN} * n_chains, {ESS_TOTAL})"
)


def import_arviz():  # type: ignore[no-untyped-def]
    """``import arviz`` without its import-time FutureWarning about the 1.0 refactor."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz

    return arviz


def _arviz_per_coordinate(samples: np.ndarray) -> dict[str, np.ndarray]:
    """ArviZ's bulk/tail ESS, rank R-hat and mean MCSE per coordinate ``(dim,)``."""
    import xarray as xr

    az = import_arviz()
    ds = xr.Dataset({"x": (("chain", "draw", "dim"), np.asarray(samples, dtype=np.float64))})
    return {
        "ess_bulk": az.ess(ds, method="bulk")["x"].values,
        "ess_tail": az.ess(ds, method="tail")["x"].values,
        "rhat": az.rhat(ds, method="rank")["x"].values,
        "mcse_mean": az.mcse(ds, method="mean")["x"].values,
    }


def _reduce(values: np.ndarray, how: str) -> float | None:
    """``nanmin``/``nanmax``/``nanmean`` as a float, ``None`` when all are NaN."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    return float({"min": np.min, "max": np.max, "mean": np.mean}[how](finite))


def diagnostics(samples: np.ndarray, superchains: Sequence[int] | None = None) -> dict[str, Any]:
    """ArviZ's ESS/R-hat/MCSE of draws ``[C, T, D]`` and the convergence verdict.

    Keys as in the module docstring. Fewer than 4 draws per chain give ``None``
    values and ``converged: None`` (nothing can be judged). ``superchains`` ``[C]``:
    ids of chains that share start points (:func:`lightning_ex2.sampling.superchain_ids`);
    with them R-hat is judged by nested R-hat. A coordinate with non-finite draws or
    that never moves makes R-hat/ESS NaN there; the rule then fails on
    ``rhat_max is undefined``.
    """
    samples = np.asarray(samples, dtype=np.float64)
    n_chains, n_draws, _ = samples.shape
    out: dict[str, Any] = {}
    keys = ("ess_bulk_min", "ess_bulk_mean", "ess_tail_min", "rhat_max", "mcse_mean_max")
    if n_draws < 4:
        out.update(dict.fromkeys((*keys, "ess_geyer_mean", "rhat_split_max")))
        out.update(converged=None, failed_checks=[], convergence_rule=CONVERGENCE_RULE)
        return out
    per = _arviz_per_coordinate(samples)
    out.update(
        ess_bulk_min=_reduce(per["ess_bulk"], "min"),
        ess_bulk_mean=_reduce(per["ess_bulk"], "mean"),
        ess_tail_min=_reduce(per["ess_tail"], "min"),
        rhat_max=_reduce(per["rhat"], "max"),
        mcse_mean_max=_reduce(per["mcse_mean"], "max"),
        ess_geyer_mean=_reduce(ess(samples), "mean"),
        rhat_split_max=_reduce(rhat(samples), "max"),
    )
    rhat_key = "rhat_max"
    if superchains is not None:
        ids = np.asarray(superchains).reshape(-1)
        _, counts = np.unique(ids, return_counts=True)
        if len(counts) >= 2 and (counts == counts[0]).all():
            out["rhat_nested_max"] = _reduce(nested_rhat(samples, ids), "max")
            out["n_superchains"] = len(counts)
            rhat_key = "rhat_nested_max"
    need = float(min(ESS_PER_CHAIN * n_chains, ESS_TOTAL))
    failed = []
    r = out[rhat_key]
    undefined = rhat_key == "rhat_max" and not np.isfinite(per["rhat"]).all()
    if r is None or undefined:
        failed.append(f"{rhat_key} is undefined (a coordinate is constant or not finite)")
    elif r > RHAT_MAX:
        failed.append(f"{rhat_key} {r:.3f} > {RHAT_MAX}")
    for key in ("ess_bulk_min", "ess_tail_min"):
        v = out[key]
        if v is None or v < need:
            failed.append(f"{key} {'undefined' if v is None else f'{v:.0f}'} < {need:.0f}")
    out.update(converged=not failed, failed_checks=failed, convergence_rule=CONVERGENCE_RULE)
    return out


def summarize(
    samples: np.ndarray,
    info: dict[str, np.ndarray],
    reference: np.ndarray | None = None,
    reference2: np.ndarray | None = None,
    max_samples: int = 2000,
    superchains: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Diagnostics of draws ``(chain, draw, dim)``: sizes, :func:`diagnostics`, info
    means and the EMD.

    Args:
        samples: draws ``[C, T, D]``.
        info: per-chain ``[C]`` arrays (``accept_global``, ``accept_local``, ...);
            their means become ``<name>_mean``.
        reference: exact target samples ``[n, D]``; adds ``emd`` (W2^2).
        reference2: a second, independent exact sample; adds ``emd_exact``, the
            EMD of exact vs exact at the same sizes (the estimator's noise floor).
        max_samples: subsample size of the EMD.
        superchains: ids of chains that share start points (adds nested R-hat).
    """
    n_chains, n_draws, dim = samples.shape
    out: dict[str, Any] = {"n_chains": n_chains, "n_draws": n_draws, "dim": dim}
    out.update(diagnostics(samples, superchains))
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
