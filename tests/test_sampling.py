"""The Python API ``lightning_ex2.sample``: shapes, seeds, thinning, errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lightning_ex2 as lx
from lightning_ex2.proposals import GaussianProposal
from lightning_ex2.targets import Funnel, Gaussian

KERNELS = {
    "ula": lambda d: lx.ULA(0.05),
    "mala": lambda d: lx.MALA(0.1, target_accept=0.574),
    "hmc": lambda d: lx.HMC(0.1, n_leapfrog=3, target_accept=0.7),
    "isir": lambda d: lx.ISIR(GaussianProposal(d, scale=2.0), n_particles=8),
    "ex2mcmc": lambda d: lx.Ex2MCMC(GaussianProposal(d, scale=2.0), 8, 0.1, n_local_steps=2),
}


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
