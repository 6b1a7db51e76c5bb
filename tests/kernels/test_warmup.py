"""The default warm-up on posteriors where chains start in bad places, the dense metric,
and the warning that names the chains still stuck after warm-up.

The steep-start target reproduces what real posteriors do (posteriordb's garch11): a
coordinate whose log-density falls like ``-exp(x)`` on one side, and a few chains that
start far out on that side, where any step size that suits the other chains is
rejected. With one step size from the chains' mean acceptance and a metric pooled over
all chains, those chains stayed there for the whole run and inflated the metric; the
default warm-up must bring them back. Tolerances come from the Monte Carlo standard
error; seeds are fixed.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

import lightning_ex2 as lx
from lightning_ex2.diagnostics import ess
from lightning_ex2.kernels.adaptation import ChainHealth, lost_chains
from tests.conftest import mcse_z, z_quantile

#: x0 = log g with g ~ Exponential(1): E = -Euler's gamma, Var = pi^2 / 6
MEAN0, VAR0 = -0.5772156649015329, math.pi**2 / 6


class SteepStart(nn.Module):
    """4-D: ``x0`` the log of an Exponential(1) draw (``log pi = x0 - exp(x0)``: the
    right tail falls like ``-exp(x0)``), ``x1..x3`` standard normal."""

    dim = 4

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([MEAN0, 0.0, 0.0, 0.0]))
        self.register_buffer("sd", torch.tensor([math.sqrt(VAR0), 1.0, 1.0, 1.0]))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., 0] - x[..., 0].exp() - 0.5 * x[..., 1:].square().sum(-1)


def steep_starts(n_chains: int = 32, n_far: int = 3, far: float = 10.0) -> torch.Tensor:
    """Draws near the bulk, except ``n_far`` chains at ``x0 = far`` (~9 sd out, where the
    gradient is ~2e4)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n_chains, 4, generator=g)
    x[:, 0] = x[:, 0] * math.sqrt(VAR0) + MEAN0
    x[:n_far, 0] = far
    return x


def _stuck_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if "of moves after warm-up" in str(w.message)]


@pytest.mark.parametrize(
    ("kernel", "n_steps"), [(lx.MALA(), 300), (lx.HMC(n_leapfrog=3), 200)], ids=["mala", "hmc"]
)
def test_default_warmup_brings_back_chains_that_start_in_a_steep_region(kernel, n_steps):
    target = SteepStart()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = lx.sample(
            target, kernel, n_chains=32, n_steps=n_steps, burn_in=n_steps, init=steep_starts(),
            seed=1, progress=False, check_convergence=True,
        )  # fmt: skip
    assert not _stuck_warnings(caught)
    assert (run.info["accept_local"] > 0.1).all(), run.info["accept_local"]
    # every chain in the bulk: the mean within its MCSE, R-hat fine
    z = mcse_z(run.samples, target.mean, ess)
    assert (z < z_quantile(0.01, n_tests=4)).all(), z
    assert run.rhat().max() < 1.05
    # the metric pooled from the chains that mix: Var(x0) = pi^2/6, not inflated by the
    # far chains (which alone would make it ~5x); the default metric is dense in 4-D,
    # and the coordinates are independent
    metric = run.params.inverse_mass_matrix.squeeze(0)
    assert metric.shape == (4, 4)
    ratio = metric.diagonal() / target.sd.square()
    assert ((ratio > 0.6) & (ratio < 1.5)).all(), ratio
    corr = metric / torch.outer(metric.diagonal(), metric.diagonal()).sqrt()
    assert (corr - torch.eye(4)).abs().max() < 0.2, corr
    assert run.step_size.unique().numel() > 1  # one step size per chain


def test_stuck_chains_are_named_in_one_warning():
    """A fixed step size and no warm-up cannot rescue the far chains: one warning names them."""
    kernel = lx.MALA(step_size=0.5, target_accept=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = lx.sample(
            SteepStart(), kernel, n_chains=32, n_steps=50, init=steep_starts(n_far=3),
            seed=0, progress=False, check_convergence=True,
        )  # fmt: skip
    stuck = _stuck_warnings(caught)
    assert len(stuck) == 1, stuck
    assert stuck[0].startswith("sample: 3 of 32 chains accepted < 1 % of moves after warm-up")
    assert "chains 0, 1, 2" in stuck[0]
    assert all(w.category is RuntimeWarning for w in caught if "warm-up" in str(w.message))
    assert run.info["accept_local"].shape == (32,)  # every chain's acceptance is kept
    assert (run.info["accept_local"][:3] < 0.01).all()


def test_lost_chains_by_acceptance_and_by_log_density():
    lp = torch.tensor([-3.0, -2.0, -2.5, -1.5, -400.0, -2.2])
    health = ChainHealth(torch.tensor([5.0, 0.0, 5.0, 5.0, 5.0, 5.0]), torch.full((6,), 10.0))
    assert lost_chains(health, lp).tolist() == [False, True, False, False, True, False]


def test_warmup_rescue_copies_a_healthy_chain_only_at_a_check():
    target = SteepStart()
    kernel = lx.MALA(step_size=0.5)
    warmup = lx.kernels.Warmup(kernel, n_warmup=100)
    first_check = warmup.checks[0]
    state = kernel.init(steep_starts(16, n_far=2, far=30.0), target)  # too far to crawl back
    tuning = warmup.init(16, state.x)
    g = torch.Generator().manual_seed(0)
    for t in range(1, first_check + 1):
        state, info = kernel.step(state, target, g, tuning.params)
        before = state.x.clone()
        tuning, state = warmup.step(tuning, info, state)
        if t < first_check:
            assert torch.equal(state.x, before)
    moved = ~(state.x == before).all(-1)
    assert moved[:2].all() and not moved[2:].any()  # the two far chains, and only them
    healthy = [tuple(r) for r in before[2:].tolist()]
    assert all(tuple(r) in healthy for r in state.x[:2].tolist())  # each took a healthy point
    torch.testing.assert_close(state.log_prob, target.log_prob(state.x))


def _correlated(dim: int = 20, cond: float = 1e3) -> lx.targets.Gaussian:
    """A Gaussian with a random rotation and eigenvalues 1 to ``cond`` (log-spaced)."""
    g = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    eig = torch.logspace(0, math.log10(cond), dim, dtype=torch.float64)
    cov = (q * eig) @ q.T
    return lx.targets.Gaussian(torch.zeros(dim), cov.float())


def test_dense_metric_on_a_correlated_gaussian():
    target = _correlated()
    runs = {}
    for metric in ("diagonal", "dense"):
        runs[metric] = lx.sample(
            target, lx.MALA(mass_matrix=metric), n_chains=32, n_steps=200, burn_in=300,
            seed=0, progress=False, check_convergence=False,
        )  # fmt: skip
    dense = runs["dense"]
    assert dense.ess().min() > 5 * runs["diagonal"].ess().min()
    z = mcse_z(dense.samples, torch.zeros(20), ess)
    assert (z < z_quantile(0.01, n_tests=20)).all(), z
    # the variances along the covariance's extreme eigenvectors, within their MCSE
    cov = target.scale_tril @ target.scale_tril.T
    evals, evecs = torch.linalg.eigh(cov.double())
    proj = dense.samples.double() @ evecs[:, [0, -1]]
    z = mcse_z(proj.square(), evals[[0, -1]], ess)
    assert (z < z_quantile(0.01, n_tests=2)).all(), z
    # the adapted metric is the covariance (within the estimation noise of the windows)
    m = dense.params.inverse_mass_matrix.squeeze(0)
    rel = torch.linalg.matrix_norm(m - cov) / torch.linalg.matrix_norm(cov)  # float32
    assert rel < 0.2, rel
    chol = dense.params.inverse_mass_cholesky.squeeze(0)
    torch.testing.assert_close(chol @ chol.T, m)
    assert dense.step_size.unique().numel() > 1  # dense works with per-chain step sizes


@pytest.mark.parametrize(
    "kernel",
    [lx.MALA(step_size=0.5, mass_matrix="dense"), lx.HMC(0.3, 5, mass_matrix="dense")],
    ids=["mala", "hmc"],
)
def test_dense_metric_keeps_a_gaussian_invariant(kernel):
    """Exact draws stay exact under a fixed dense metric unrelated to the target's
    covariance (a wrong term in the proposal or kinetic energy would show), per chain
    step sizes included."""
    target = _correlated(dim=5, cond=100.0).double()
    cov = target.scale_tril @ target.scale_tril.T
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, 5, generator=g, dtype=torch.float64)
    metric = (a @ a.T + torch.eye(5, dtype=torch.float64)).unsqueeze(0)
    n = 4000
    x = target.sample(n, generator=g)
    params = kernel.init_params(n, x)
    assert params.step_size.shape == (n,)
    h = params.step_size * (0.5 + torch.rand(n, generator=g, dtype=torch.float64))
    params = params._replace(
        step_size=h, inverse_mass_matrix=metric, inverse_mass_cholesky=torch.linalg.cholesky(metric)
    )
    state = kernel.init(x, target)
    for _ in range(3):
        state, info = kernel.step(state, target, g, params)
    assert 0.05 < info.accept_local.mean() < 0.99
    emp = state.x.T @ state.x / n
    sd = (cov.diagonal().outer(cov.diagonal()) + cov.square()).sqrt()
    z = ((emp - cov) / (sd / math.sqrt(n))).abs()
    assert z.max() < z_quantile(0.01, n_tests=15), z
    zm = state.x.mean(0).abs() / (cov.diagonal().sqrt() / math.sqrt(n))
    assert zm.max() < z_quantile(0.01, n_tests=5), zm
