"""ULA refuses moves to a non-finite gradient or point even when the log-density is finite
(the per-chain checks of its fast step)."""

from __future__ import annotations

import torch
from torch import nn

import lightning_ex2 as lx


class Controlled(nn.Module):
    """Flat log-density 0 with a closed-form "gradient" chosen per region (float32):

    * ``1 < x_1 < 1e30``: NaN gradient (finite log-density);
    * ``x_0 < -5``: gradient ``1e38`` in every coordinate, so a step of size 10 overflows
      the proposed point to ``+inf`` while its log-density and gradient stay finite.
    """

    dim = 3

    def log_prob(self, x):
        return torch.zeros(x.shape[:-1], dtype=x.dtype)

    def log_prob_and_grad(self, x):
        grad = torch.zeros_like(x)
        grad = torch.where(x[..., :1] < -5.0, torch.full_like(x, 1e38), grad)
        nan_region = (x[..., 1:2] > 1.0) & (x[..., 1:2] < 1e30)
        grad = torch.where(nan_region, torch.full_like(x, torch.nan), grad)
        return self.log_prob(x), grad


def _step(x, h):
    target, kernel = Controlled(), lx.ULA(step_size=h)
    state = kernel.init(x, target)
    return kernel.step(state, target, torch.Generator().manual_seed(0))


def test_nan_gradient_refused():
    x = torch.zeros(200, 3)
    new, info = _step(x, 1.0)
    moved_into_nan = new.x[:, 1] > 1.0
    assert not moved_into_nan.any()
    refused = info.accept_local == 0
    assert refused.any() and (~refused).any()  # some proposals landed there, some did not
    assert torch.equal(new.x[refused], x[refused])
    assert torch.isfinite(new.grad).all() and torch.isfinite(new.log_prob).all()


def test_overflowing_point_refused():
    x = torch.full((4, 3), -6.0)
    x[:, 1] = 0.0  # finite gradient 1e38 at the start
    new, info = _step(x, 10.0)
    assert torch.equal(info.accept_local, torch.zeros(4))
    assert torch.equal(new.x, x) and torch.isfinite(new.x).all()
