"""Tests for lightning_ex2.diagnostics.distances: W2² (EMD) and histogram TV distances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_ex2.diagnostics import emd, marginal_tv, sliced_tv

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
