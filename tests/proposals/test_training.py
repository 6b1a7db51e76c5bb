"""FlEx2MCMC's flow training in the core: ``lx.sample`` trains a flow proposal in burn-in
(the module's loss and update, one implementation), freezes it, and follows the
target's dtype."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch

import lightning_ex2 as lx
from lightning_ex2.lightning import ChainDataModule, FlEx2MCMC
from lightning_ex2.lightning.module import SamplingConfig
from lightning_ex2.lightning.trainer import Ex2Trainer
from lightning_ex2.proposals import FlowProposal, FlowTraining, GaussianProposal
from lightning_ex2.random import derived_seed
from lightning_ex2.targets import Gaussian


def _kernel(scale=3.0, dim=2, n_particles=8):
    torch.manual_seed(0)  # the flow's initial weights
    flow = FlowProposal(dim, n_blocks=2, hidden_features=16, scale=scale)
    return lx.Ex2MCMC(flow, n_particles, step_size=0.3, n_local_steps=1, target_accept=0.574)


def _trainer(tmp_path, **kwargs) -> Ex2Trainer:
    defaults = dict(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    return Ex2Trainer(**{**defaults, **kwargs})


def _flow_frozen(flow) -> bool:
    return not flow.training and not any(p.requires_grad for p in flow.parameters())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sample_makes_the_modules_draws(tmp_path, dtype):
    """Same settings, same seed: ``lx.sample`` (burn-in = training) and the module
    (``fit`` then ``sample``) make the same draws and the same trained flow, bit for bit
    (one process). Alignment: the module draws its moves from
    ``derived_seed(seed, "moves")`` and its starts here come from the DataModule, so
    ``lx.sample`` gets that seed and those starts; the order of the random draws is
    the same (move, then the flow update's backward-KL draws, per step).
    The float64 case: the module builds its buffers and moves the flow to the target's
    dtype, as ``lx.sample`` does."""
    target = Gaussian(torch.tensor([1.0, -1.0]), torch.eye(2)).to(dtype)
    kernel = _kernel()
    n_chains, burn_in, n_steps = 8, 6, 5
    dm = ChainDataModule(n_chains=n_chains, init_loc=[0.0, 0.0], init_scale=2.0)
    model = FlEx2MCMC(target, copy.deepcopy(kernel), n_chains=n_chains, seed=3,
                      backward_kl_weight=0.5, n_backward_samples=2)  # fmt: skip
    assert model.state.x.dtype == dtype and model.proposal.loc.dtype == dtype
    trainer = _trainer(tmp_path, max_steps=burn_in)
    trainer.fit(model, datamodule=dm)
    model.sampling = SamplingConfig(n_steps=n_steps, progress=False)  # what `sample` runs
    (out,) = trainer.predict(model, datamodule=dm)
    module_draws = out["samples"]

    run = lx.sample(
        target, kernel, n_chains=n_chains, n_steps=n_steps, burn_in=burn_in,
        init=dm.initial_points().to(dtype), seed=derived_seed(3, "moves"), progress=False,
        check_convergence=False,
        train_proposal=FlowTraining(backward_kl_weight=0.5, n_backward_samples=2),
    )  # fmt: skip
    assert run.samples.dtype == dtype and run.meta["proposal_updates"] == burn_in
    assert torch.equal(run.samples, module_draws)
    for mine, theirs in zip(kernel.proposal.parameters(), model.proposal.parameters()):
        assert torch.equal(mine, theirs)
    assert _flow_frozen(kernel.proposal)
    trained = [p.clone() for p in kernel.proposal.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(trained, _kernel().proposal.parameters()))


def test_flow_training_trains_during_burn_in_only_and_is_not_repeated():
    target = Gaussian(torch.tensor([2.0, -2.0]), torch.eye(2))
    kernel = _kernel()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # training by default: nothing to warn about
        run = lx.sample(target, kernel, n_chains=4, n_steps=3, burn_in=4, seed=0,
                        progress=False, check_convergence=False)  # fmt: skip
    assert run.meta["proposal_updates"] == 4 and _flow_frozen(kernel.proposal)
    trained = [p.clone() for p in kernel.proposal.parameters()]
    # a frozen (trained) flow is used as it is: no update, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = lx.sample(target, kernel, n_chains=4, n_steps=3, burn_in=4, seed=0,
                          progress=False, check_convergence=False)  # fmt: skip
    assert again.meta["proposal_updates"] is None
    for a, b in zip(trained, kernel.proposal.parameters()):
        assert torch.equal(a, b)


def test_an_untrained_flow_is_never_used_silently():
    target = Gaussian(torch.zeros(2), torch.eye(2))
    args = dict(n_chains=4, n_steps=3, seed=0, progress=False, check_convergence=False)
    with pytest.warns(UserWarning, match=r"burn_in=0 leaves no step to train it"):
        lx.sample(target, _kernel(), **args)
    with pytest.warns(UserWarning, match=r"train_proposal=False: .*used as it is"):
        run = lx.sample(target, _kernel(), burn_in=2, train_proposal=False, **args)
    assert run.meta["proposal_updates"] is None
    with pytest.raises(ValueError, match=r"`train_proposal` needs `burn_in` > 0"):
        lx.sample(target, _kernel(), train_proposal=True, **args)
    fixed = lx.Ex2MCMC(GaussianProposal(2, scale=3.0), 8, 0.3)
    with pytest.raises(ValueError, match=r"`train_proposal` needs a global kernel .*"):
        lx.sample(target, fixed, burn_in=2, train_proposal=True, **args)
    with pytest.raises(ValueError, match=r"train_proposal.forward_kl_weight"):
        FlowTraining(forward_kl_weight=0.0)
    with warnings.catch_warnings():  # a Gaussian proposal has nothing to train: silent
        warnings.simplefilter("error")
        lx.sample(target, fixed, **args)


def test_trained_flow_finds_both_modes_an_untrained_one_does_not():
    """Two well-separated modes (weights 0.3 / 0.7) at +-6 on the first axis of a 6-D
    target; the chains start from the flow (a wide Gaussian), so each falls into one
    mode, about half into each. The untrained flow almost never proposes a point i-SIR
    accepts in 6-D, so the chains keep those wrong proportions; after a FlEx2MCMC
    burn-in the frozen flow moves the chains between the modes, and the draws have the
    right mode weights (within 4 Monte Carlo standard errors, from the ESS of the mode
    indicator)."""
    dim, weight = 6, 0.3
    loc = torch.zeros(2, dim)
    loc[0, 0], loc[1, 0] = -6.0, 6.0
    target = lx.targets.GaussianMixture(loc, scales=0.5, weights=[weight, 1 - weight])

    def kernel():
        torch.manual_seed(0)
        flow = FlowProposal(dim, n_blocks=2, hidden_features=32, scale=6.0)
        return lx.Ex2MCMC(flow, n_particles=24, step_size=0.3, n_local_steps=1)

    args = dict(n_chains=16, seed=0, progress=False, check_convergence=False)
    with pytest.warns(UserWarning, match="used as it is"):
        untrained = lx.sample(target, kernel(), n_steps=100, burn_in=50, train_proposal=False,
                              **args)  # fmt: skip
    trained = lx.sample(target, kernel(), n_steps=150, burn_in=200, **args)
    stuck = (untrained.samples[..., 0] > 0).double()  # [C, T] indicator of the 0.7 mode
    heavy = (trained.samples[..., 0] > 0).double()
    assert float(untrained.info["accept_global"].mean()) < 0.01  # measured: <= 0.001
    assert int((stuck[:, 1:] != stuck[:, :-1]).sum()) == 0  # no chain ever changes mode
    assert float(trained.info["accept_global"].mean()) > 0.3  # measured: 0.70-0.72
    assert int((heavy[:, 1:] != heavy[:, :-1]).sum()) > 100
    ess = float(lx.diagnostics.ess(heavy.unsqueeze(-1).numpy())[0])
    mcse = float(np.sqrt(weight * (1 - weight) / ess))
    assert abs(float(heavy.mean()) - (1 - weight)) < 4 * mcse, (heavy.mean(), mcse, ess)


class _Declared(torch.nn.Module):
    """A float64 target whose class names its declared parameters ``parameters`` (as
    posteriordb ports do), shadowing ``nn.Module.parameters``."""

    parameters = ("mu",)
    dim = 2

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.ones(2, dtype=torch.float64))

    def log_prob(self, x):
        return -0.5 * (x - self.mean).square().sum(-1)


def test_the_run_dtype_is_read_past_a_shadowed_parameters_attribute():
    from lightning_ex2.lightning import MCMCSampler

    run = lx.sample(_Declared(), lx.MALA(0.3), n_chains=4, n_steps=3, seed=0, progress=False,
                    check_convergence=False)  # fmt: skip
    assert run.samples.dtype == torch.float64
    assert MCMCSampler(_Declared(), lx.MALA(0.3), n_chains=4).state.x.dtype == torch.float64
