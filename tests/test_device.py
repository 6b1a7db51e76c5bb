"""Device-parametrised tests: they run on ``--device`` (default cpu; ``make gpu-check`` runs
them with ``--device cuda``). Everything stays on the device and is reproducible there."""

from __future__ import annotations

import pytest
import torch

import lightning_ex2 as lx
from lightning_ex2.kernels.base import log_prob_and_grad, randn
from lightning_ex2.random import StreamGenerator, make_generator


def _kernel(name: str, dim: int):
    q = lx.proposals.GaussianProposal(dim, scale=2.0)
    if name == "ULA":
        return lx.ULA(0.05)
    if name == "MALA":
        return lx.MALA(0.3, target_accept=0.574)
    if name == "i-SIR":
        return lx.ISIR(q, n_particles=20)
    if name == "Ex2MCMC":
        return lx.Ex2MCMC(q, 20, 0.3, n_local_steps=2)
    if name == "MALA-diagonal":
        return lx.MALA(0.3, target_accept=0.574, mass_matrix="diagonal")
    if name == "Ex2MCMC-HMC-diagonal":
        hmc = lx.HMC(0.3, 3, target_accept=0.7, mass_matrix="diagonal")
        return lx.Ex2MCMC(q, 20, local_kernel=hmc)
    flow = lx.proposals.FlowProposal(dim, flow="realnvp", n_blocks=2, hidden_features=16)
    return lx.Ex2MCMC(flow, 20, 0.3, n_local_steps=2)


@pytest.mark.parametrize(
    "name",
    ["ULA", "MALA", "i-SIR", "Ex2MCMC", "FlEx2MCMC", "MALA-diagonal", "Ex2MCMC-HMC-diagonal"],
)
def test_sample_stays_on_the_device_and_is_reproducible(device, name):
    target = lx.targets.Gaussian(torch.tensor([1.0, -1.0, 0.5]), torch.eye(3)).to(device)
    runs = []
    for _ in range(2):  # a fresh kernel each time: FlEx2MCMC's burn-in trains its flow
        torch.manual_seed(0)  # the flow's weights
        kernel = _kernel(name, 3)
        runs.append(
            lx.sample(target, kernel, n_chains=32, n_steps=40, burn_in=30, seed=3, progress=False)
        )
    if name == "FlEx2MCMC":  # trained on the device, then frozen
        assert runs[0].meta["proposal_updates"] == 30
        assert not any(p.requires_grad for p in kernel.proposal.parameters())
    if "diagonal" in name:  # adapted over the burn-in, on the device
        m = runs[0].params.inverse_mass_matrix
        assert m.device.type == device.type and not torch.equal(m, torch.ones_like(m))
    a, b = runs
    assert a.samples.device.type == device.type and a.samples.shape == (32, 40, 3)
    assert torch.isfinite(a.samples).all()
    assert torch.equal(a.samples, b.samples)
    # a sanity check of the draws: the mean is near the target's (loose; 32x40 draws)
    assert (
        a.samples.reshape(-1, 3).mean(0).cpu() - torch.tensor([1.0, -1.0, 0.5])
    ).abs().max() < 0.6


def test_generator_kind_and_draws_on_the_device(device):
    g = make_generator(device)
    assert isinstance(g, StreamGenerator) == (device.type == "cpu")
    g.manual_seed(1)
    like = torch.zeros(1, device=device)

    x = randn((64, 50, 20), like, g)
    assert x.device.type == device.type
    state = g.get_state()
    y = randn((64, 50, 20), like, g)
    g.set_state(state)
    assert torch.equal(randn((64, 50, 20), like, g), y) and not torch.equal(x, y)


@pytest.mark.parametrize(
    "target",
    [
        lx.targets.Funnel(50),
        lx.targets.Banana(51),
        lx.targets.SymmetricMixture(40),
        lx.targets.GridMixture(k=3),
        lx.targets.BayesianLogisticRegression("iris_binary"),
    ],
    ids=["funnel", "banana", "symmetric", "grid", "logistic"],
)
def test_closed_form_targets_on_the_device_match_cpu(device, target):
    x = torch.randn(256, target.dim, generator=torch.Generator().manual_seed(0))
    lp_cpu, grad_cpu = log_prob_and_grad(target, x)
    on_dev = target.to(device)
    lp, grad = log_prob_and_grad(on_dev, x.to(device))
    assert lp.device.type == device.type and grad.device.type == device.type
    torch.testing.assert_close(lp.cpu(), lp_cpu, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(grad.cpu(), grad_cpu, rtol=1e-4, atol=1e-4)
    target.cpu()


def test_module_fit_on_the_device(device, tmp_path):
    from lightning_ex2.lightning import ChainDataModule, MCMCSampler
    from lightning_ex2.lightning.trainer import Ex2Trainer

    target = lx.targets.Gaussian(torch.zeros(4), torch.eye(4))
    kernel = lx.Ex2MCMC(lx.proposals.GaussianProposal(4, scale=2.0), 10, 0.3)
    model = MCMCSampler(target, kernel, n_chains=16, seed=0)
    accel = "gpu" if device.type == "cuda" else "cpu"
    devices = [device.index or 0] if device.type == "cuda" else 1
    trainer = Ex2Trainer(
        accelerator=accel, devices=devices, max_steps=5, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(model, datamodule=ChainDataModule(n_chains=16))
    assert model.chain_x.device.type == device.type
    assert bool(model.chain_ready.all()) and torch.isfinite(model.chain_x).all()
