"""The GAN latent-space target: its energy, chunking and gradient, and sampling it with Lightning."""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
from torch import nn

import lightning_ex2 as lx
from lightning_ex2.data import (
    ChainDataModule,
)
from lightning_ex2.gan import (
    DigitsDiscriminator,
    DigitsGenerator,
    GANLatentTarget,
    SNGANDiscriminator32,
    SNGANGenerator32,
)
from lightning_ex2.modules import MCMCSampler
from lightning_ex2.targets.base import has_sampler


# ---------------------------------------------------------------------- target
class _TinyG(nn.Module):
    latent_dim = 2
    image_shape = (1, 2, 2)

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 4)

    def forward(self, z):
        return torch.tanh(self.lin(z)).view(-1, 1, 2, 2)


def _tiny_target(**kwargs) -> GANLatentTarget:
    torch.manual_seed(0)
    return GANLatentTarget(_TinyG(), nn.Sequential(nn.Flatten(), nn.Linear(4, 1)), **kwargs)


def test_energy_matches_hand_computation():
    target = _tiny_target(prior_scale=2.0, temperature=0.5)
    z = torch.randn(5, 7, 2, dtype=torch.float64)
    lin_g, lin_d = target.generator.lin, target.discriminator[1]
    x = torch.tanh(z @ lin_g.weight.double().T + lin_g.bias.double())
    d = (x @ lin_d.weight.double().T + lin_d.bias.double()).squeeze(-1)
    prior = -0.5 * (z / 2.0).square().sum(-1) - 2 * math.log(2.0) - math.log(2 * math.pi)
    expected = prior + d / 0.5
    out = target.log_prob(z)
    assert out.shape == (5, 7) and out.dtype == torch.float64
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert target.dim == 2 and not has_sampler(target)


def test_chunking_gradient_and_eval_mode():
    g, d = SNGANGenerator32(ngf=8), SNGANDiscriminator32(ndf=8)
    big = GANLatentTarget(g, d, batch_size=4096)
    small = GANLatentTarget(g, d, batch_size=3)
    big.train(), small.train()  # what LightningModule.train() does to its children
    assert not any(m.training for m in (g, d, *g.modules(), *d.modules()))
    assert not any(p.requires_grad for p in big.parameters())
    z = torch.randn(2, 5, 128, requires_grad=True)
    lp = small.log_prob(z)
    torch.testing.assert_close(lp, big.log_prob(z), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lp[0, 0], big.log_prob(z[0, :1].detach())[0], rtol=1e-5, atol=1e-5)
    (grad,) = torch.autograd.grad(lp.sum(), z)
    assert grad.shape == z.shape and torch.isfinite(grad).all() and grad.abs().sum() > 0
    images = small.decode(z)
    assert images.shape == (2, 5, 3, 32, 32) and not images.requires_grad
    assert small.discriminator_logit(z).shape == (2, 5)
    zs = small.prior_sample(6, generator=torch.Generator().manual_seed(0))
    assert zs.shape == (6, 128)


def test_target_drives_lightning_sampler():
    target = GANLatentTarget(DigitsGenerator(), DigitsDiscriminator(), batch_size=7)
    kernel = lx.Ex2MCMC(lx.proposals.GaussianProposal(2), n_particles=5, step_size=0.1)
    model = MCMCSampler(target, kernel, n_chains=6)
    trainer = pl.Trainer(
        max_steps=3, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, ChainDataModule(n_chains=6))
    assert bool(model.chain_ready.all()) and torch.isfinite(model.chain_log_prob).all()
    assert not target.generator.training and not target.discriminator.training
