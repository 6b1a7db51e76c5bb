"""The Fashion-MNIST GAN networks."""

from __future__ import annotations

import pytest
import torch

from lightning_ex2.gan import FashionDiscriminator, FashionGenerator


def test_gan_shapes_and_gradient_in_z() -> None:
    g, d = FashionGenerator(latent_dim=16, ngf=8).eval(), FashionDiscriminator(ndf=8)
    z = torch.randn(5, 16, requires_grad=True)
    x = g(z)
    assert x.shape == (5, 1, 28, 28) and x.abs().max() <= 1
    out = d(x)
    assert out.shape == (5, 1)
    (grad,) = torch.autograd.grad(out.sum(), z)
    assert grad.shape == (5, 16) and grad.abs().sum() > 0
    with pytest.raises(ValueError, match="ngf"):
        FashionGenerator(ngf=0)
