"""Tests for lightning_ex2.diagnostics.mcmc: ESS and split R-hat (distances: ``test_distances.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from lightning_ex2.diagnostics import ess, rhat


def ar1(rho: float, n_chain: int, n_draw: int, n_dim: int, seed: int) -> np.ndarray:
    """Stationary Gaussian AR(1) chains ``x_t = rho x_{t-1} + e_t``, shape (chain, draw, dim)."""
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((n_chain, n_draw, n_dim))
    e[:, 0] /= np.sqrt(1.0 - rho**2)  # start in the stationary law N(0, 1 / (1 - rho²))
    return lfilter([1.0], [1.0, -rho], e, axis=1)


# --------------------------------------------------------------------------------------------
# ESS
# --------------------------------------------------------------------------------------------


# For AR(1), the integrated autocorrelation time is (1 + rho) / (1 - rho), so ESS / N tends to
# (1 - rho) / (1 + rho).  Tolerances on the ratio (estimated / true, averaged over 8 dims,
# 4 chains x 4000 draws) were set from 100 independent seeds: the ratio had mean 0.990 / 0.996 /
# 1.001 and std 0.008 / 0.016 / 0.031 for rho = 0 / 0.5 / 0.9, so the tolerances below are
# about 5 standard deviations (plus the ~1% downward truncation bias at rho = 0).
@pytest.mark.parametrize(("rho", "tol"), [(0.0, 0.05), (0.5, 0.08), (0.9, 0.15)])
def test_ess_ar1_matches_theory(rho: float, tol: float) -> None:
    x = ar1(rho, n_chain=4, n_draw=4000, n_dim=8, seed=123)
    rel = ess(x, relative=True)
    assert rel.shape == (8,)
    ratio = rel.mean() / ((1.0 - rho) / (1.0 + rho))
    assert abs(ratio - 1.0) < tol
    # relative=True is ESS / N
    np.testing.assert_allclose(ess(x), rel * x.shape[0] * x.shape[1])


def test_ess_iid_close_to_total_draws() -> None:
    x = np.random.default_rng(0).standard_normal((4, 2000, 5))
    out = ess(x)
    # per-dim std of ESS/N for iid draws at this size is ~2%; 10% is a 5-sigma bound.
    np.testing.assert_allclose(out / x[..., 0].size, 1.0, atol=0.1)


def test_ess_strong_autocorrelation_is_small() -> None:
    x = ar1(0.99, n_chain=2, n_draw=2000, n_dim=1, seed=1)[..., 0]
    assert float(ess(x)) < 0.05 * x.size


def test_ess_shapes_dtype_and_torch_input() -> None:
    x = ar1(0.3, 3, 50, 2, seed=2)
    out2 = ess(x[..., 0])
    out3 = ess(x)
    assert isinstance(out2, np.ndarray)
    assert out2.shape == () and out2.dtype == np.float64
    assert out3.shape == (2,) and out3.dtype == np.float64
    np.testing.assert_allclose(out3[0], out2)
    np.testing.assert_allclose(ess(torch.from_numpy(x).float()), out3, rtol=1e-5)
    np.testing.assert_allclose(rhat(torch.from_numpy(x)), rhat(x))


def test_ess_constant_and_nonfinite_give_nan() -> None:
    x = ar1(0.3, 2, 20, 3, seed=3)
    x[:, :, 1] = 4.2
    x[0, 5, 2] = np.nan
    out = ess(x)
    assert np.isfinite(out[0])
    assert np.isnan(out[1]) and np.isnan(out[2])
    r = rhat(x)
    assert np.isfinite(r[0]) and np.isnan(r[1]) and np.isnan(r[2])


@pytest.mark.parametrize("fn", [ess, rhat])
def test_chain_input_errors(fn) -> None:
    with pytest.raises(ValueError, match=r"samples.*at least 4 draws"):
        fn(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"samples.*chain, draw"):
        fn(np.zeros(10))
    with pytest.raises(ValueError, match=r"samples.*chain, draw"):
        fn(np.zeros((2, 10, 3, 1)))


def test_ess_rhat_match_arviz() -> None:
    az = pytest.importorskip("arviz")
    rng = np.random.default_rng(7)
    cases = []
    for rho, n_chain, n_draw in [(0.0, 4, 100), (0.5, 4, 301), (0.9, 2, 500), (-0.4, 1, 64)]:
        cases.append(ar1(rho, n_chain, n_draw, 3, seed=int(rng.integers(1 << 31))))
    shifted = ar1(0.7, 4, 200, 3, seed=11)
    shifted[2] += 1.5  # one chain off: large R-hat, low ESS
    cases.append(shifted)
    short = ar1(0.2, 3, 5, 3, seed=12)  # minimum-ish length, exercises the truncation edge
    cases.append(short)
    for x in cases:
        ds = az.convert_to_dataset(x)  # variable "x", dims (chain, draw, x_dim_0)
        ref_ess = az.ess(ds, method="mean")["x"].values
        ref_rhat = az.rhat(ds, method="split")["x"].values
        # Same algorithm (split chains, Geyer IPS + IMS with Stan's tail term), so agreement is
        # to floating-point round-off.
        np.testing.assert_allclose(ess(x), ref_ess, rtol=1e-6)
        if x.shape[0] >= 2:  # ArviZ refuses R-hat for 1 chain; ours compares its two halves
            np.testing.assert_allclose(rhat(x), ref_rhat, rtol=1e-6)
        # 2-D input path against ArviZ's plain-array interface
        np.testing.assert_allclose(ess(x[..., 0]), az.ess(x[..., 0], method="mean"), rtol=1e-6)
        if x.shape[0] >= 2:
            ref = az.rhat(x[..., 0], method="split")
            np.testing.assert_allclose(rhat(x[..., 0]), ref, rtol=1e-6)


# --------------------------------------------------------------------------------------------
# R-hat
# --------------------------------------------------------------------------------------------


def test_rhat_well_mixed_and_shifted() -> None:
    x = ar1(0.5, 4, 2000, 3, seed=5)
    r = rhat(x)
    assert r.shape == (3,)
    assert np.all(np.abs(r - 1.0) < 0.01)
    # a single chain is compared with itself through its two halves
    assert abs(float(rhat(x[:1, :, 0])) - 1.0) < 0.05
    x[1] += 2.0  # one chain stuck in another mode (stationary std is 1.15)
    assert np.all(rhat(x) > 1.1)


def test_rhat_detects_within_chain_drift_only_when_split() -> None:
    # every chain drifts identically: between-chain variance ~ 0 unless chains are split.
    n = 1000
    drift = np.linspace(0.0, 6.0, n)
    x = np.random.default_rng(6).standard_normal((4, n)) + drift
    assert float(rhat(x)) > 1.1
    assert float(rhat(x, split=False)) < 1.01
