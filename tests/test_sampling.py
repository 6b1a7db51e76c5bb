"""The Python API ``lightning_ex2.sample``: shapes, seeds, thinning, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lightning_ex2 as lx
from lightning_ex2 import interrupt
from lightning_ex2.proposals import GaussianProposal
from lightning_ex2.targets import Funnel, Gaussian
from tests.kernels.cases import BY_NAME, smoke_cases

# the kernel table's cheap configurations, by name (``tests/kernels/cases.py``)
KERNELS = {name: BY_NAME[name].smoke for name in smoke_cases()}


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_sample_shapes_and_info(name):
    target = Funnel(dim=4)
    run = lx.sample(
        target, KERNELS[name](4), n_chains=6, n_steps=20, burn_in=5, thin=3, seed=0, progress=False
    )
    assert run.samples.shape == (6, 6, 4)
    assert run.log_prob.shape == (6, 6)
    assert run.numpy().shape == (6, 6, 4)
    torch.testing.assert_close(run.log_prob[:, -1], target.log_prob(run.samples[:, -1]))
    for key, value in run.info.items():
        assert value.shape == (6,), key
    expected = {
        "ula": {"accept_local"},
        "mala": {"accept_local"},
        "hmc": {"accept_local"},
        "isir": {"accept_global", "particle_ess"},
        "ex2mcmc": {"accept_global", "accept_local", "particle_ess"},
    }[name]
    assert expected <= set(run.info)
    assert run.wall_seconds > 0


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_same_seed_same_draws(name):
    target = Funnel(dim=3)
    a = lx.sample(
        target, KERNELS[name](3), n_chains=4, n_steps=15, burn_in=5, seed=7, progress=False
    )
    b = lx.sample(
        target, KERNELS[name](3), n_chains=4, n_steps=15, burn_in=5, seed=7, progress=False
    )
    c = lx.sample(
        target, KERNELS[name](3), n_chains=4, n_steps=15, burn_in=5, seed=8, progress=False
    )
    assert torch.equal(a.samples, b.samples)
    assert not torch.equal(a.samples, c.samples)


def test_float64_runs_in_float64():
    target = Gaussian(torch.zeros(2), torch.eye(2)).double()
    run = lx.sample(target, KERNELS["ex2mcmc"](2), n_chains=4, n_steps=5, seed=0, progress=False)
    assert run.samples.dtype == torch.float64


def test_user_module_target_without_base_class():
    class MyTarget(nn.Module):
        dim = 2

        def log_prob(self, x):
            return -0.5 * (x.square() / torch.tensor([1.0, 4.0])).sum(-1)

    for name in KERNELS:
        run = lx.sample(MyTarget(), KERNELS[name](2), n_chains=4, n_steps=5, progress=False)
        assert run.samples.shape == (4, 5, 2)


def test_init_defaults_to_the_proposal_for_global_kernels():
    target = Gaussian(torch.full((2,), 100.0), torch.eye(2))
    q = GaussianProposal(2, loc=100.0, scale=1.0)
    run = lx.sample(target, lx.ISIR(q, 4), n_chains=64, n_steps=1, seed=0, progress=False)
    assert (run.samples - 100).abs().max() < 10


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"n_chains": 0, "n_steps": 5}, "n_chains"),
        ({"n_chains": 2, "n_steps": 0}, "n_steps"),
        ({"n_chains": 2, "n_steps": 5, "burn_in": -1}, "burn_in"),
        ({"n_chains": 2, "n_steps": 5, "thin": 0}, "thin"),
        ({"n_chains": 2, "n_steps": 5, "seed": 1.5}, "seed"),
        ({"n_chains": 2, "n_steps": 5, "init": torch.zeros(3, 2)}, "init"),
        ({"n_chains": 2, "n_steps": 5, "init": torch.zeros(2, 5)}, "init"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, field):
    with pytest.raises(ValueError, match=field):
        lx.sample(Gaussian(torch.zeros(2), torch.eye(2)), lx.MALA(0.1), progress=False, **kwargs)


def test_bad_target_and_kernel_are_type_errors():
    with pytest.raises(TypeError, match="log_prob"):
        lx.sample(nn.Linear(2, 2), lx.MALA(0.1), n_chains=2, n_steps=2, progress=False)
    with pytest.raises(TypeError, match="kernel"):
        lx.sample(
            Gaussian(torch.zeros(2), torch.eye(2)), "mala", n_chains=2, n_steps=2, progress=False
        )


def test_run_diagnostics():
    target = Gaussian(torch.zeros(2), torch.eye(2))
    run = lx.sample(target, KERNELS["mala"](2), n_chains=4, n_steps=50, seed=0, progress=False)
    assert run.ess().shape == (2,)
    assert run.rhat().shape == (2,)


# ------------------------------------------------------------------ what lx.sample refuses
def _gauss(dim=2):
    return Gaussian(torch.zeros(dim), torch.eye(dim))


def test_proposal_of_another_dim_is_refused():
    kernel = lx.ISIR(GaussianProposal(3), n_particles=4)
    with pytest.raises(ValueError, match=r"proposal\.dim.*\(3\).*\(2\)"):
        lx.sample(_gauss(2), kernel, n_chains=2, n_steps=3, progress=False)


def test_thin_above_n_steps_is_refused():
    with pytest.raises(ValueError, match=r"`thin` \(5\) must not exceed `n_steps` \(3\)"):
        lx.sample(_gauss(), lx.MALA(0.1), n_chains=2, n_steps=3, thin=5, progress=False)


def test_init_dtype_other_than_the_targets_is_refused_naming_both():
    init = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"`init` is torch\.float64.*torch\.float32"):
        lx.sample(_gauss(), lx.MALA(0.1), n_chains=2, n_steps=3, init=init, progress=False)


class _WrongShape(nn.Module):
    dim = 2

    def log_prob(self, x):
        return -0.5 * x.square()  # forgot .sum(-1)


@pytest.mark.parametrize("name", ["mala", "isir"])
def test_log_prob_of_the_wrong_shape_is_refused(name):
    kernel = KERNELS[name](2)
    with pytest.raises(ValueError, match=r"target\.log_prob returned shape \(2, 2\)"):
        lx.sample(_WrongShape(), kernel, n_chains=2, n_steps=3, seed=0, progress=False)


class _NoGrad(nn.Module):
    dim = 2

    def log_prob(self, x):
        return torch.from_numpy(-0.5 * (x.detach().numpy() ** 2).sum(-1))


def test_target_without_gradient_under_mala_is_a_clear_error():
    with pytest.raises(TypeError, match=r"_NoGrad\.log_prob is not differentiable"):
        lx.sample(_NoGrad(), lx.MALA(0.1), n_chains=2, n_steps=3, progress=False)
    # a gradient-free kernel runs it
    run = lx.sample(_NoGrad(), KERNELS["isir"](2), n_chains=2, n_steps=3, progress=False)
    assert run.samples.shape == (2, 3, 2)


def test_nested_list_init_is_accepted():
    run = lx.sample(
        _gauss(), lx.MALA(0.1), n_chains=2, n_steps=3, init=[[0.0, 1.0], [1, 2]], progress=False
    )
    assert run.samples.shape == (2, 3, 2) and run.samples.dtype == torch.float32
    with pytest.raises(ValueError, match="init"):
        lx.sample(_gauss(), lx.MALA(0.1), n_chains=2, n_steps=3, init=[[0.0], [1.0, 2.0]])


@pytest.mark.parametrize("seed", [2**70, -(2**64)])
def test_out_of_range_seed_is_refused(seed):
    with pytest.raises(ValueError, match=r"`seed` must be an integer in"):
        lx.sample(_gauss(), lx.MALA(0.1), n_chains=2, n_steps=3, seed=seed, progress=False)


def test_ex2mcmc_without_local_steps_reports_no_local_acceptance():
    kernel = lx.Ex2MCMC(GaussianProposal(2, scale=2.0), 8, 0.1, n_local_steps=0)
    run = lx.sample(_gauss(), kernel, n_chains=4, n_steps=5, seed=0, progress=False)
    assert "accept_local" not in run.info
    assert {"accept_global", "particle_ess", "nonfinite"} <= set(run.info)
    assert all(torch.isfinite(v).all() for v in run.info.values())


# ------------------------------------------------------------------ non-finite log-densities
class _Holey(nn.Module):
    """N(0, I) with NaN for x_0 > 1, +inf for x_1 > 1.5 and -inf for x_0 < -1.5."""

    dim = 2

    def __init__(self, holes: bool = True):
        super().__init__()
        self.holes = holes

    def log_prob(self, x):
        lp = -0.5 * x.square().sum(-1)
        lp = torch.where(x[..., 0] < -1.5, -torch.inf, lp)  # outside the support: legitimate
        if self.holes:
            lp = torch.where(x[..., 0] > 1.0, torch.nan, lp)
            lp = torch.where(x[..., 1] > 1.5, torch.inf, lp)
        return lp


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_nonfinite_log_densities_are_counted_and_warned(name):
    init = torch.zeros(16, 2) - 0.5
    with pytest.warns(RuntimeWarning, match=r"NaN or \+inf \d+ times"):
        run = lx.sample(
            _Holey(), KERNELS[name](2), n_chains=16, n_steps=50, init=init, seed=0, progress=False
        )
    assert run.info["nonfinite"].shape == (16,)
    assert run.info["nonfinite"].sum() > 0


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_minus_inf_is_not_a_nonfinite_error(name, recwarn):
    init = torch.zeros(16, 2) - 0.5
    run = lx.sample(
        _Holey(holes=False), KERNELS[name](2), n_chains=16, n_steps=50, init=init, seed=0,
        progress=False,
    )  # fmt: skip
    assert run.info["nonfinite"].sum() == 0
    assert not [w for w in recwarn if "NaN or +inf" in str(w.message)]


def test_a_diverging_trajectory_is_not_a_target_error(recwarn):
    """HMC with a step far too large leaves for infinity: log pi(inf) is NaN, but the point
    is not finite, so it is a rejected move, not a NaN of the target (no count, no warning)."""
    target = lx.targets.Gaussian(torch.zeros(2), torch.diag(torch.tensor([1.0, 1e-4])))
    run = lx.sample(
        target, lx.HMC(step_size=50.0, n_leapfrog=30, jitter=0.0), n_chains=16, n_steps=20,
        init=torch.ones(16, 2), seed=0, progress=False,
    )  # fmt: skip
    assert run.info["accept_local"].max() < 1e-3  # it did diverge
    assert run.info["nonfinite"].sum() == 0
    assert not [w for w in recwarn if "NaN or +inf" in str(w.message)]


# ------------------------------------------------------------------ stop requests
class _StopAfter(nn.Module):
    """N(0, I) that requests a stop at its ``n``-th evaluation (a signal mid-run)."""

    dim = 2

    def __init__(self, n: int):
        super().__init__()
        self.n = n
        self.calls = 0

    def log_prob(self, x):
        self.calls += 1
        if self.calls == self.n:
            interrupt.request("test")
        return -0.5 * x.square().sum(-1)


@pytest.fixture
def clean_interrupt():
    interrupt.clear()
    yield
    interrupt.clear()


def test_stop_request_ends_the_run_with_the_draws_completed(clean_interrupt):
    # MALA evaluates log pi once at init and once per step: the 11th call is step 10
    # (burn-in 4 + 6 sampling steps); thin 2 keeps 3 draws.
    run = lx.sample(
        _StopAfter(11), lx.MALA(0.1), n_chains=3, n_steps=20, burn_in=4, thin=2, seed=0,
        progress=False,
    )  # fmt: skip
    assert not run.complete
    assert run.samples.shape == (3, 3, 2) and run.log_prob.shape == (3, 3)
    torch.testing.assert_close(run.log_prob, -0.5 * run.samples.square().sum(-1))


def test_stop_request_during_burn_in_gives_no_draws(clean_interrupt):
    run = lx.sample(
        _StopAfter(2), lx.MALA(0.1), n_chains=3, n_steps=20, burn_in=4, seed=0, progress=False
    )
    assert not run.complete and run.samples.shape == (3, 0, 2)


def test_uninterrupted_run_is_complete(clean_interrupt):
    run = lx.sample(_StopAfter(10**9), lx.MALA(0.1), n_chains=3, n_steps=5, progress=False)
    assert run.complete and run.samples.shape == (3, 5, 2)
