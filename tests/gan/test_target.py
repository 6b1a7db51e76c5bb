"""The GAN latent-space target: its energy, chunking and gradient, and sampling it with Lightning."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
import torch
from torch import nn

import lightning_ex2 as lx
from lightning_ex2.gan import (
    DigitsDiscriminator,
    DigitsGenerator,
    GANLatentTarget,
    SNGANDiscriminator32,
    SNGANGenerator32,
)
from lightning_ex2.lightning import ChainDataModule, MCMCSampler
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


# ---------------------------------------------------------------------- tempering (beta)
class _Images:
    """A held-out image source: ``real_images(n)`` pushed toward the discriminator's 'real'."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def real_images(self, n: int) -> torch.Tensor:
        return self.images[:n]


def test_beta_scales_the_tilt_and_zero_is_the_prior():
    z = torch.randn(4, 3, 2, dtype=torch.float64)
    plain, hot, flat = (_tiny_target(beta=b) for b in (1.0, 2.5, 0))
    tilt = plain.log_prob(z) - plain.prior_log_prob(z)
    torch.testing.assert_close(hot.log_prob(z) - hot.prior_log_prob(z), 2.5 * tilt)
    torch.testing.assert_close(hot.tilt(z), 2.5 * tilt)
    torch.testing.assert_close(flat.log_prob(z), flat.prior_log_prob(z))
    assert (plain.beta, plain.beta_rule, _tiny_target(beta="3").beta) == (1.0, "fixed", 3.0)
    zg = torch.randn(3, 2, requires_grad=True)
    (grad,) = torch.autograd.grad(flat.log_prob(zg).sum(), zg)
    torch.testing.assert_close(grad, -zg.detach())
    for bad in (-1.0, float("nan"), "hot", True):
        with pytest.raises(ValueError, match="beta"):
            _tiny_target(beta=bad)
    with pytest.raises(ValueError, match="calibration_data"):
        _tiny_target(beta="platt")


def test_beta_platt_is_the_held_out_logistic_scale():
    from lightning_ex2.gan.platt import fit_logistic_scale, held_out_splits

    w = _tiny_target().discriminator[1].weight.detach().reshape(1, 1, 2, 2)
    noise = torch.randn(40, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    real = torch.tanh(w.sign() + noise)  # images the discriminator tends to rate real
    target = _tiny_target(beta="platt", calibration_data=_Images(real), n_calibration=20)
    images, labels = held_out_splits(target.generator, _Images(real), 20, 0, 2)["calib"]
    a, _ = fit_logistic_scale(target.discriminator(images).reshape(-1), labels)
    assert target.beta_rule == "platt" and target.beta == round(a, 4) > 0
    z = torch.randn(5, 2)
    torch.testing.assert_close(target.tilt(z), target.beta * _tiny_target().discriminator_logit(z))


def test_beta_is_a_setting_the_checkpoint_records_and_a_resume_compares():
    from lightning_ex2 import checks as runcheck

    def model(beta):
        target = _tiny_target(beta=beta)
        return MCMCSampler(target, lx.MALA(step_size=0.1), n_chains=2)

    one, two = model(1.0), model(2.0)
    spec = runcheck.model_spec(one)
    assert spec["target.beta"] == "1.0" and spec["target.beta_rule"] == "'fixed'"
    ckpt = {"state_dict": one.state_dict(), runcheck.SPEC_KEY: spec}
    assert runcheck.spec_differences(one, ckpt, spec) == []
    diffs = runcheck.spec_differences(two, ckpt, runcheck.model_spec(two))
    assert diffs == ["target.beta: checkpoint 1.0, config 2.0"]
    # a checkpoint written before beta existed holds the beta = 1 target
    old = {k: v for k, v in spec.items() if not k.startswith("target.beta")}
    old_ckpt = {"state_dict": one.state_dict(), runcheck.SPEC_KEY: old}
    assert runcheck.spec_differences(one, old_ckpt, spec) == []
    assert runcheck.spec_differences(two, old_ckpt, runcheck.model_spec(two))
