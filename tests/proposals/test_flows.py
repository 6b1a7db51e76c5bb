"""Tests of the normalizing-flow proposals (lightning_ex2.proposals.flows)."""

from __future__ import annotations

import pytest
import torch
from torch.autograd.functional import jacobian

from lightning_ex2.proposals.flows import FLOW_TYPES, FlowProposal, build_flow_transform
from lightning_ex2.proposals.gaussian import GaussianProposal, standard_normal_log_prob

SMALL = {"n_blocks": 3, "hidden_features": 16, "n_hidden_layers": 2, "num_bins": 6}
DIMS = [3, 5]


def make(flow: str, dim: int, seed: int = 0, randomize: bool = True, **kwargs) -> FlowProposal:
    """A small flow; with ``randomize`` every parameter is perturbed (not the identity)."""
    torch.manual_seed(seed)
    kw = {**SMALL, "loc": 0.5, "scale": 2.0, **kwargs}
    q = FlowProposal(dim, flow=flow, **kw)
    if randomize:
        with torch.no_grad():
            for p in q.parameters():
                p.add_(0.2 * torch.randn_like(p))
    return q


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("flow", FLOW_TYPES)
def test_shapes(flow, dim):
    q = make(flow, dim)
    for shape, batch in [(7, (7,)), ((2, 3), (2, 3))]:
        x, log_q = q.sample_and_log_prob(shape)
        assert x.shape == (*batch, dim)
        assert log_q.shape == batch
        assert q.log_prob(x).shape == batch
        assert q.sample(shape).shape == (*batch, dim)
        assert q.standardize(x).shape == (*batch, dim)
        x2, lq2 = q.unstandardize(torch.randn(*batch, dim))
        assert x2.shape == (*batch, dim) and lq2.shape == batch
    assert q.log_prob(torch.zeros(dim)).shape == ()


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("flow", FLOW_TYPES)
def test_log_prob_matches_sampled_log_q_and_invertibility(flow, dim):
    q = make(flow, dim, seed=1)
    x, log_q = q.sample_and_log_prob(64, generator=torch.Generator().manual_seed(3))
    assert torch.isfinite(x).all() and torch.isfinite(log_q).all()
    # The randomised flow is not the identity.
    gauss = GaussianProposal(dim, loc=0.5, scale=2.0)
    assert (gauss.log_prob(x) - log_q).abs().max() > 1e-2
    torch.testing.assert_close(q.log_prob(x), log_q, atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        y = 0.5 + 2.0 * torch.randn(64, dim)
        y_back, lq = q.unstandardize(q.standardize(y))
        torch.testing.assert_close(y_back, y, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(lq, q.log_prob(y), atol=1e-4, rtol=1e-4)
        z = torch.randn(64, dim)
        torch.testing.assert_close(q.standardize(q.unstandardize(z)[0]), z, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("flow", FLOW_TYPES)
def test_log_det_matches_autograd_jacobian(flow):
    dim = 4
    q = make(flow, dim, seed=2).double()
    torch.manual_seed(5)
    for x in 0.5 + 2.0 * torch.randn(4, dim, dtype=torch.float64):
        jac = jacobian(q.standardize, x)  # dz/dx, [D, D]
        expected = standard_normal_log_prob(q.standardize(x)) + torch.linalg.slogdet(jac)[1]
        torch.testing.assert_close(q.log_prob(x), expected, atol=1e-8, rtol=1e-8)
        # And the sampling direction: dx/dz.
        z = q.standardize(x)
        jac_inv = jacobian(lambda z_: q.unstandardize(z_)[0], z)
        log_q = q.unstandardize(z)[1]
        expected = standard_normal_log_prob(z) - torch.linalg.slogdet(jac_inv)[1]
        torch.testing.assert_close(log_q, expected, atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("flow", FLOW_TYPES)
def test_identity_at_init(flow, dim):
    torch.manual_seed(0)
    q = FlowProposal(dim, flow=flow, loc=[0.5] * dim, scale=3.0)  # default sizes
    z = 3.0 * torch.randn(256, dim)  # also well into the spline tails
    with torch.no_grad():
        y, logabsdet = q.transform.inverse(z)
        assert (y - z).abs().max() < 1e-5
        assert logabsdet.abs().max() < 1e-5
        x, log_q = q.sample_and_log_prob(256, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(x).all() and torch.isfinite(log_q).all()
    gauss = GaussianProposal(dim, loc=0.5, scale=3.0)
    torch.testing.assert_close(log_q, gauss.log_prob(x), atol=1e-5, rtol=1e-6)
    x_g, _ = gauss.sample_and_log_prob(256, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(x, x_g, atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(q.standardize(x), gauss.standardize(x), atol=1e-5, rtol=1e-6)


@pytest.mark.parametrize("flow", FLOW_TYPES)
def test_gradients_reach_every_parameter(flow):
    dim = 3
    q = make(flow, dim, seed=4)
    params = dict(q.named_parameters())
    assert params

    loss = -q.log_prob(0.5 + 2.0 * torch.randn(32, dim)).mean()
    loss.backward()
    for name, p in params.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"log_prob: no grad for {name}"

    q.zero_grad(set_to_none=True)
    x, log_q = q.sample_and_log_prob(32)
    assert x.requires_grad and log_q.requires_grad  # reparameterised, no no_grad inside
    log_q.mean().backward()
    for name, p in params.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"sample: no grad for {name}"

    q.zero_grad(set_to_none=True)
    q.sample(32).square().sum().backward()
    for name, p in params.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"x: no grad for {name}"


@pytest.mark.parametrize("flow", FLOW_TYPES)
def test_state_dict_round_trip(flow):
    q = make(flow, 5, seed=6)
    fresh = make(flow, 5, seed=7, randomize=False, loc=0.0, scale=1.0)
    x = q.sample(16).detach()
    assert not torch.allclose(fresh.log_prob(x), q.log_prob(x))
    fresh.load_state_dict(q.state_dict())
    torch.testing.assert_close(fresh.log_prob(x), q.log_prob(x), atol=0, rtol=0)
    torch.testing.assert_close(fresh.loc, q.loc)
    torch.testing.assert_close(fresh.scale, q.scale)


@pytest.mark.parametrize("flow", FLOW_TYPES)
def test_generator_reproducibility(flow):
    q = make(flow, 3, seed=8)
    a = q.sample((4, 2), generator=torch.Generator().manual_seed(11))
    b = q.sample((4, 2), generator=torch.Generator().manual_seed(11))
    c = q.sample((4, 2), generator=torch.Generator().manual_seed(12))
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("flow", FLOW_TYPES)
def test_float64(flow):
    q = make(flow, 3, seed=9).double()
    x, log_q = q.sample_and_log_prob(10, generator=torch.Generator().manual_seed(0))
    assert x.dtype == torch.float64 and log_q.dtype == torch.float64
    assert q.log_prob(x).dtype == torch.float64
    torch.testing.assert_close(q.log_prob(x), log_q, atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(q.unstandardize(q.standardize(x))[0], x, atol=1e-10, rtol=1e-10)


def test_bad_flow_name():
    with pytest.raises(ValueError, match="realnvp, spline, maf"):
        FlowProposal(3, flow="glow")
    with pytest.raises(ValueError, match="activation"):
        FlowProposal(3, activation="swish")
    with pytest.raises(ValueError, match="scale"):
        FlowProposal(3, scale=-1.0)
    with pytest.raises(ValueError, match="n_blocks"):
        build_flow_transform(3, n_blocks=0)
    with pytest.raises(TypeError, match="n_block"):
        build_flow_transform(3, n_block=2)  # a misspelled architecture argument


def test_build_flow_transform_takes_flow_proposal_defaults():
    torch.manual_seed(0)
    default = build_flow_transform(3)
    assert len(list(default.parameters())) == len(list(FlowProposal(3).transform.parameters()))
    assert sum(p.numel() for p in build_flow_transform(3, n_blocks=2).parameters()) < sum(
        p.numel() for p in default.parameters()
    )


@pytest.mark.parametrize("flow", ["realnvp", "spline"])
def test_dim_one_coupling_raises(flow):
    with pytest.raises(ValueError, match="dim >= 2"):
        FlowProposal(1, flow=flow)


def test_dim_one_maf():
    q = make("maf", 1, seed=10)
    x, log_q = q.sample_and_log_prob(20)
    assert x.shape == (20, 1)
    torch.testing.assert_close(q.log_prob(x), log_q, atol=1e-5, rtol=1e-5)
    fresh = FlowProposal(1, flow="maf", scale=2.0)
    x = torch.randn(8, 1)
    torch.testing.assert_close(
        fresh.log_prob(x), GaussianProposal(1, scale=2.0).log_prob(x), atol=1e-5, rtol=1e-6
    )


def test_from_gaussian_and_input_check():
    gauss = GaussianProposal(2, loc=[1.0, -1.0], scale=[0.5, 2.0])
    q = FlowProposal.from_gaussian(gauss, flow="realnvp")
    x = torch.randn(5, 2)
    torch.testing.assert_close(q.log_prob(x), gauss.log_prob(x))
    with pytest.raises(ValueError, match="last dimension"):
        q.log_prob(torch.randn(5, 3))
