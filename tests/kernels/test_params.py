"""Kernel parameters (step size, inverse mass matrix) as NamedTuples, their warm-up
adaptation (dual averaging; Stan-windowed diagonal mass matrix pooled over chains),
Ex2MCMC with any local kernel, and kernels that do not subclass the base class.

Tolerances come from the Monte Carlo standard error (``conftest.mcse_z``) or from
KS tests with a Bonferroni correction; seeds are fixed.
"""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

import lightning_ex2 as lx
from lightning_ex2.diagnostics import ess
from lightning_ex2.kernels import HMCParams, MALAParams, Warmup
from lightning_ex2.kernels.adaptation import (
    mass_windows,
    variance_final,
    variance_init,
    variance_update,
)
from lightning_ex2.proposals import GaussianProposal
from lightning_ex2.targets import Gaussian, GaussianMixture
from tests.conftest import mcse_z, z_quantile
from tests.kernels.cases import COV, MEAN, build, gaussian_target, select

SCALES = torch.logspace(math.log10(0.03), math.log10(30.0), 40)


def badly_scaled() -> Gaussian:
    """40-D axis-aligned Gaussian, scales 0.03 to 30 (a condition number of 1e6)."""
    return Gaussian(torch.zeros(40), torch.diag(SCALES.square()))


def _mala_run(mass_matrix: str) -> lx.Run:
    # one shared step size: the comparison is of the metrics alone
    kernel = lx.MALA(1e-3, target_accept=0.574, per_chain_step_size=False, mass_matrix=mass_matrix)
    return lx.sample(
        badly_scaled(), kernel, n_chains=64, n_steps=500, burn_in=600, seed=0, progress=False
    )


def test_diagonal_mass_matrix_lifts_worst_coordinate_ess_tenfold():
    identity, diagonal = _mala_run("identity"), _mala_run("diagonal")
    worst_identity, worst_diagonal = identity.ess().min(), diagonal.ess().min()
    assert worst_diagonal >= 10 * worst_identity, (worst_identity, worst_diagonal)
    # and it samples the right thing: E[x_i^2] = s_i^2 within its MCSE, every coordinate
    z = mcse_z(diagonal.samples.double().square(), SCALES.double().square(), ess)
    assert (z < z_quantile(0.01, n_tests=40)).all(), z
    # the adapted inverse mass matrix is the variance (pooled over 64 chains)
    ratio = diagonal.params.inverse_mass_matrix.squeeze(0) / SCALES.square()
    assert ((ratio > 0.7) & (ratio < 1.4)).all(), ratio
    assert identity.params.inverse_mass_matrix is None
    assert diagonal.step_size.shape == (64,)
    assert (diagonal.step_size == diagonal.step_size[0]).all()


def test_mass_windows_follow_stan():
    assert mass_windows(1000) == [100, 150, 250, 450, 950]  # 75 + 25, 50, 100, 200, 500
    assert mass_windows(100) == [90]  # 15 % / 75 % / 10 %
    assert mass_windows(19) == []


def test_pooled_variance_matches_the_sample_variance():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 8, 3, generator=g, dtype=torch.float64) * torch.tensor([0.1, 1.0, 7.0])
    vs = variance_init(torch.zeros(1, 3, dtype=torch.float64))
    for t in range(8):
        vs = variance_update(vs, x[:, t], weight=1.0)
    vs = variance_update(vs, 100 + x[:, 0], weight=0.0)  # weight 0: not counted
    flat = x.permute(1, 0, 2).reshape(-1, 3)
    n = flat.shape[0]
    want = n / (n + 5) * flat.var(0) + 1e-3 * 5 / (n + 5)
    torch.testing.assert_close(variance_final(vs).squeeze(0), want)


def test_mass_matrix_adapts_only_in_windows_and_freezes():
    target = badly_scaled()
    kernel = lx.MALA(step_size=1e-3, target_accept=0.574, mass_matrix="diagonal")
    warmup = Warmup(kernel, n_warmup=200)
    state = kernel.init(torch.zeros(32, 40), target)
    tuning = warmup.init(32, state.x)
    seen = []
    for _ in range(200):
        state, info = kernel.step(state, target, None, tuning.params)
        tuning = warmup.update(tuning, info, x=state.x)
        seen.append(tuning.params.inverse_mass_matrix.clone())
    changes = [t + 1 for t in range(1, 200) if not torch.equal(seen[t], seen[t - 1])]
    assert changes == mass_windows(200), changes
    frozen = warmup.freeze(tuning)
    for _ in range(5):
        state, info = kernel.step(state, target, None, frozen.params)
    assert torch.equal(warmup.freeze(frozen).params.inverse_mass_matrix, seen[-1])


def _fixed_params_pvalues(kernel, params, target, n=20000, n_steps=3, seed=0):
    """Start from exact draws, take steps with fixed ``params``, KS per coordinate and
    on |x|^2 against fresh exact draws (independent chains: iid draws)."""
    g = torch.Generator().manual_seed(seed)
    x0 = target.sample(n, generator=g)
    state = kernel.init(x0, target)
    for _ in range(n_steps):
        state, _ = kernel.step(state, target, g, params)
    fresh = target.sample(n, generator=g)
    cols = [(state.x[:, i], fresh[:, i]) for i in range(x0.shape[1])]
    cols.append((state.x.square().sum(-1), fresh.square().sum(-1)))
    return [stats.ks_2samp(a.numpy(), b.numpy()).pvalue for a, b in cols]


MIXTURE = dict(
    means=torch.tensor([[-2.0, 0.0], [2.0, 1.0]]),
    scales=torch.tensor([0.7, 1.2]),
    weights=torch.tensor([0.4, 0.6]),
)
DIAG = torch.tensor([[0.5, 2.0]])


@pytest.mark.parametrize("name", select(all_of={"variant"}))
def test_fixed_parameters_leave_the_target_invariant(name):
    q = GaussianProposal(2, scale=2.5)
    hmc = lx.HMC(step_size=0.4, n_leapfrog=3, mass_matrix="diagonal")
    kernel, params = {
        "mala_diag": (lx.MALA(0.5, mass_matrix="diagonal"), MALAParams(torch.tensor(0.5), DIAG)),
        "hmc_diag": (hmc, HMCParams(torch.tensor(0.4), DIAG)),
        "ex2mcmc_hmc": (
            lx.Ex2MCMC(q, 5, local_kernel=lx.HMC(0.4, n_leapfrog=3), n_local_steps=1),
            None,
        ),
        "ex2mcmc_hmc_diag": (
            lx.Ex2MCMC(q, 5, local_kernel=hmc, n_local_steps=2),
            HMCParams(torch.tensor(0.4), DIAG),
        ),
        "ex2mcmc_hmc_dependent": (
            lx.Ex2MCMC(
                q,
                5,
                local_kernel=lx.HMC(0.4, n_leapfrog=3),
                correlation=0.9,
                correlation_prob=0.5,
            ),
            None,
        ),
    }[name]
    pvalues = _fixed_params_pvalues(kernel, params, GaussianMixture(**MIXTURE))
    assert min(pvalues) > 0.01 / len(pvalues), pvalues


def test_invariance_check_detects_a_wrong_mass_matrix_correction():
    """The check can fail: MALA whose proposal uses M^-1 but whose MH ratio ignores it."""

    class WrongMALA(lx.MALA):
        def step(self, state, target, generator=None, params=None):
            x, log_prob, grad, h, hx, m = self._start(state, target, params)
            y, noise, lp_y, g_y = self._langevin(x, grad, hx * m, target, generator)
            log_q_bwd = -(x - y - hx * g_y).square().sum(-1) / (4 * h)  # identity: wrong
            log_alpha = lp_y - log_prob + log_q_bwd + 0.5 * noise.square().sum(-1)
            accepted, prob = lx.kernels.base.metropolis_accept(log_alpha, generator)
            sel = lx.kernels.base.select
            new = lx.kernels.ChainState(
                sel(accepted, y, x), sel(accepted, lp_y, log_prob), sel(accepted, g_y, grad)
            )
            return new, lx.kernels.LocalInfo(prob, torch.zeros_like(prob))

    params = MALAParams(torch.tensor(0.5), torch.tensor([[0.2, 3.0]]))
    kernel = WrongMALA(0.5, mass_matrix="diagonal")
    pvalues = _fixed_params_pvalues(kernel, params, GaussianMixture(**MIXTURE), n_steps=5)
    assert min(pvalues) < 1e-4, pvalues


@pytest.mark.parametrize("name", select(all_of={"variant"}, none_of={"dependent"}))
def test_adapted_kernels_have_the_right_moments(name):
    """Adapted (step size and mass matrix), then frozen: mean, variances and a
    covariance entry of a correlated 3-D Gaussian within their Monte Carlo error."""
    q = GaussianProposal(3, scale=3.0)
    kernel = build(name, q, step_size=0.3)
    run = lx.sample(
        gaussian_target(), kernel, n_chains=32, n_steps=600, burn_in=300, seed=0, progress=False
    )
    draws = run.samples.double()
    z = z_quantile(0.01, n_tests=7)
    assert (mcse_z(draws, MEAN, ess) < z).all(), mcse_z(draws, MEAN, ess)
    sq = (draws - MEAN.double()).square()
    assert (mcse_z(sq, torch.diagonal(COV), ess) < z).all()
    cross = ((draws[..., 0] - MEAN[0]) * (draws[..., 1] - MEAN[1])).unsqueeze(-1)
    assert (mcse_z(cross, COV[0, 1].reshape(1), ess) < z).all()


def test_ex2mcmc_delegates_to_its_local_kernel():
    q = GaussianProposal(2)
    hmc = lx.HMC(0.2, n_leapfrog=4, target_accept=0.65, per_chain_step_size=True,
                 mass_matrix="diagonal")  # fmt: skip
    kernel = lx.Ex2MCMC(q, 8, local_kernel=hmc, n_local_steps=2)
    assert (kernel.step_size, kernel.target_accept, kernel.mass_matrix) == (0.2, 0.65, "diagonal")
    assert kernel.per_chain_step_size and kernel.step_size_adaptable and kernel.uses_grad
    params = kernel.init_params(6, torch.zeros(6, 2))
    assert isinstance(params, HMCParams) and params.step_size.shape == (6,)
    assert params.inverse_mass_matrix.shape == (1, 2)
    # the short form builds the same MALA as main did
    short = lx.Ex2MCMC(q, 8, 0.3, 2, target_accept=0.5)
    assert isinstance(short.local_kernel, lx.MALA)
    assert (short.step_size, short.target_accept, short.mass_matrix) == (0.3, 0.5, "identity")
    assert not lx.Ex2MCMC(q, 8, 0.3, n_local_steps=0).step_size_adaptable
    with pytest.raises(ValueError, match="`step_size` belongs to `local_kernel`"):
        lx.Ex2MCMC(q, 8, step_size=0.1, local_kernel=hmc)
    with pytest.raises(TypeError, match="local kernel"):
        lx.Ex2MCMC(q, 8, local_kernel=lx.ISIR(q))
    with pytest.raises(ValueError, match="mass_matrix"):
        lx.MALA(0.1, mass_matrix="full")


class PlainRandomWalk:
    """A kernel that subclasses nothing: random-walk Metropolis with the protocol's members."""

    uses_grad = False
    step_size = 0.8
    target_accept = None
    per_chain_step_size = False
    step_size_adaptable = False
    mass_matrix = "identity"
    is_global = False

    def init(self, x, target):
        return lx.kernels.ChainState(x, target.log_prob(x))

    def init_params(self, n_chains, like):
        return None

    def step(self, state, target, generator=None, params=None):
        y = state.x + self.step_size * torch.randn(state.x.shape, generator=generator)
        lp = target.log_prob(y)
        u = torch.rand(lp.shape, generator=generator)
        ok = u.log() < lp - state.log_prob
        new = lx.kernels.ChainState(
            torch.where(ok.unsqueeze(-1), y, state.x), torch.where(ok, lp, state.log_prob)
        )
        return new, lx.kernels.LocalInfo(ok.to(lp.dtype), torch.zeros_like(lp))

    def initial_points(self, n_chains, dim, generator, device, dtype):
        return torch.randn((n_chains, dim), generator=generator, device=device, dtype=dtype)


def test_a_kernel_without_the_base_class_runs_through_sample():
    kernel = PlainRandomWalk()
    assert isinstance(kernel, lx.kernels.Kernel)
    assert not isinstance(kernel, lx.kernels.KernelBase)
    run = lx.sample(gaussian_target(), kernel, n_chains=32, n_steps=800, burn_in=100, seed=0,
                    progress=False)  # fmt: skip
    z = z_quantile(0.01, n_tests=3)
    assert (mcse_z(run.samples.double(), MEAN, ess) < z).all()
    assert run.tuning is None and run.step_size is None
    # and as Ex2MCMC's local kernel (no gradient: none is recomputed after i-SIR)
    ex2 = lx.Ex2MCMC(GaussianProposal(3, scale=3.0), 10, local_kernel=kernel)
    assert not ex2.uses_grad
    run = lx.sample(gaussian_target(), ex2, n_chains=32, n_steps=300, seed=0, progress=False)
    assert (mcse_z(run.samples.double(), MEAN, ess) < z).all()
    with pytest.raises(TypeError, match=r"protocols\.Kernel"):
        lx.sample(gaussian_target(), object(), n_chains=2, n_steps=2, progress=False)
