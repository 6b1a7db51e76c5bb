"""Tests for lightning_ex2.metrics: ESS, split R-hat, W2² (EMD) and histogram TV distances."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.signal import lfilter

from lightning_ex2.metrics import emd, ess, marginal_tv, rhat, sliced_tv


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


# --------------------------------------------------------------------------------------------
# EMD / W2²
# --------------------------------------------------------------------------------------------


def test_emd_zero_for_identical_sets() -> None:
    x = np.random.default_rng(0).standard_normal((300, 3))
    assert emd(x, x) == pytest.approx(0.0, abs=1e-10)
    assert emd(x, x[::-1].copy()) == pytest.approx(0.0, abs=1e-10)


def test_emd_exact_translation_and_1d_sorted_formula() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((400, 2))
    shift = np.array([1.5, -2.0])
    # W2²(mu, mu + v) = |v|² exactly, also for empirical measures.
    assert emd(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-9)
    # In 1-D with n == m, the optimal coupling matches order statistics.
    a, b = rng.standard_normal(500), rng.standard_normal(500) * 2.0 + 1.0
    expected = np.mean((np.sort(a) - np.sort(b)) ** 2)
    assert emd(a[:, None], b[:, None]) == pytest.approx(expected, rel=1e-9)


def test_emd_gaussian_shift_close_to_m_squared() -> None:
    rng = np.random.default_rng(2)
    m, n = 2.0, 2000
    x = rng.standard_normal((n, 1))
    y = rng.standard_normal((n, 1)) + m
    # W2²(N(0,1), N(m,1)) = m².  The empirical value is (mean difference)² + W2² of the centred
    # samples: the first term fluctuates with std ~ 2 m sqrt(2 / n) = 0.13, the second is a
    # small positive bias (~0.01 at n = 2000).  0.4 is a ~3-sigma band.
    assert emd(x, y) == pytest.approx(m**2, abs=0.4)


def test_emd_subsampling_deterministic_and_torch() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((600, 2))
    y = rng.standard_normal((500, 2)) + 0.5
    a = emd(x, y, max_samples=200, seed=4)
    assert a == emd(x, y, max_samples=200, seed=4)
    assert a != emd(x, y, max_samples=200, seed=5)
    assert emd(torch.from_numpy(x), torch.from_numpy(y), max_samples=200, seed=4) == a
    # no subsampling when both sizes are within the limit
    assert emd(x, y, max_samples=600) == emd(x, y, max_samples=None)
    # (chain, draw, dim) input is flattened
    assert emd(x.reshape(3, 200, 2), y) == pytest.approx(emd(x, y))


def test_emd_errors_name_argument() -> None:
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="same dimension"):
        emd(x, np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"`x`.*non-finite"):
        emd(np.full((5, 2), np.nan), x)
    with pytest.raises(ValueError, match=r"`y`.*non-finite"):
        emd(x, np.array([[0.0, np.inf]]))
    with pytest.raises(ValueError, match=r"`y`.*empty"):
        emd(x, np.zeros((0, 2)))
    with pytest.raises(ValueError, match=r"`x`.*shape"):
        emd(np.zeros((1, 2, 3, 4)), x)
    with pytest.raises(ValueError, match="max_samples"):
        emd(x, x, max_samples=0)


# --------------------------------------------------------------------------------------------
# TV
# --------------------------------------------------------------------------------------------


def test_tv_same_law_small_far_laws_near_one() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1000, 3))
    y = rng.standard_normal((1000, 3))
    # Histogram-TV bias for equal laws is <~ 1/2 sqrt(2/pi) sqrt(B (1/n + 1/m)) = 0.08 with the
    # default B = 20 bins at n = m = 1000 (observed ~0.065 on average, max 0.077 over 30 seeds).
    assert 0.0 < sliced_tv(x, y) < 0.1
    assert 0.0 < marginal_tv(x, y) < 0.1
    far = y + 20.0
    assert marginal_tv(x, far) == pytest.approx(1.0)
    # random directions nearly orthogonal to the shift (1, 1, 1) overlap a little
    assert sliced_tv(x, far) > 0.85
    # 1-D: disjoint supports give exactly 1
    assert sliced_tv(x[:, 0], x[:, 0] + 10.0) == pytest.approx(1.0)


def test_tv_range_determinism_and_torch() -> None:
    rng = np.random.default_rng(5)
    for shift in [0.0, 0.3, 1.0, 3.0]:
        x = rng.standard_normal((200, 4))
        y = rng.standard_normal((150, 4)) * 1.5 + shift
        for value in (sliced_tv(x, y, n_projections=20, n_bins=15), marginal_tv(x, y, n_bins=7)):
            assert 0.0 <= value <= 1.0
    x = rng.standard_normal((300, 2))
    y = rng.standard_normal((300, 2)) + 0.5
    assert sliced_tv(x, y, seed=1) == sliced_tv(x, y, seed=1)
    assert sliced_tv(x, y, seed=1) != sliced_tv(x, y, seed=2)
    assert sliced_tv(torch.from_numpy(x), torch.from_numpy(y), seed=1) == sliced_tv(x, y, seed=1)
    assert marginal_tv(x, x) == 0.0
    # TV grows with the separation
    vals = [marginal_tv(x, x + d) for d in (0.1, 0.5, 2.0)]
    assert vals[0] < vals[1] < vals[2]


def test_tv_errors_name_argument() -> None:
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="same dimension"):
        sliced_tv(x, np.zeros((5, 1)))
    with pytest.raises(ValueError, match=r"`y`.*non-finite"):
        marginal_tv(x, np.full((5, 2), np.nan))
    with pytest.raises(ValueError, match="n_bins"):
        marginal_tv(x, x, n_bins=0)
    with pytest.raises(ValueError, match="n_projections"):
        sliced_tv(x, x, n_projections=0)
