"""The built-in targets' few-pass ``log_prob`` and closed-form ``log_prob_and_grad`` equal
the previous formulas and their autograd gradients (float64), and the kernels use them."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from lightning_ex2.kernels.base import log_prob_and_grad
from lightning_ex2.targets import (
    Banana,
    BayesianLogisticRegression,
    Funnel,
    Gaussian,
    GaussianMixture,
    GridMixture,
    SymmetricMixture,
)
from lightning_ex2.targets.base import LOG_2PI


# ------------------------------------------------ the formulas before the rewrite
def _normal(x, loc, log_scale):
    if not isinstance(log_scale, torch.Tensor):
        log_scale = torch.tensor(log_scale, dtype=x.dtype)
    z = (x - loc) * torch.exp(-log_scale)
    return -0.5 * (z.square() + LOG_2PI) - log_scale


def old_funnel(t, x):
    a, b = t.a.to(x), t.b.to(x)
    x0 = x[..., 0]
    log_p = _normal(x0, 0.0, a.log())
    return log_p + _normal(x[..., 1:], 0.0, (b * x0).unsqueeze(-1)).sum(-1)


def old_banana(t, x):
    b, sigma = t.b.to(x), t.sigma.to(x)
    even, odd = x[..., 0::2], x[..., 1::2]
    log_p = _normal(even, 0.0, sigma.log()).sum(-1)
    shift = b * (even[..., : t.dim // 2].square() - sigma.square())
    return log_p + _normal(odd, shift, 0.0).sum(-1)


def old_mixture(t, x):
    diff = x.unsqueeze(-2) - t.loc.to(x)
    z = torch.einsum("kij,...kj->...ki", t._inv_tril.to(x), diff)
    half_logdet = t.scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1).to(x)
    comp = t.weights.log().to(x) - half_logdet - 0.5 * (z.square().sum(-1) + t.dim * LOG_2PI)
    return torch.logsumexp(comp, dim=-1)


def old_gaussian(t, x):
    z = (x - t.loc.to(x)) @ t._inv_tril.to(x).mT
    half_logdet = t.scale_tril.diagonal().log().sum().to(x)
    return -0.5 * (z.square().sum(-1) + t.dim * LOG_2PI) - half_logdet


def old_logistic(t, x):
    logits = x @ t.features.to(x).mT
    signs = 2.0 * t.labels.to(x) - 1.0
    return t.log_prior(x) + F.logsigmoid(signs * logits).sum(-1)


def _autograd(f, x):
    x = x.detach().clone().requires_grad_(True)
    y = f(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), g


# ------------------------------------------------ cases (built in float64)
def _cases():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        means = torch.tensor([[-4.0, 0.0, 1.0], [3.0, 2.0, -1.0], [0.0, -5.0, 0.0]])
        covs = torch.stack(
            [
                torch.eye(3),
                torch.tensor([[1.5, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.7]]),
                0.5 * torch.eye(3),
            ]
        )
        return [
            ("funnel2", Funnel(2), old_funnel, 1.5),
            ("funnel7", Funnel(7, a=1.5, b=0.7), old_funnel, 1.5),
            ("banana2", Banana(2), old_banana, 6.0),
            ("banana5", Banana(5, b=0.3, sigma=2.0), old_banana, 3.0),
            ("banana6", Banana(6, b=-0.1, sigma=1.5), old_banana, 3.0),
            ("mixture-full", GaussianMixture(means, covs=covs), old_mixture, 3.0),
            (
                "mixture-diag",
                GaussianMixture(means, scales=torch.tensor([[1.0, 2.0, 0.5]] * 3) * 1.2),
                old_mixture,
                3.0,
            ),
            (
                "mixture-iso",
                GaussianMixture(means, scales=torch.tensor([1.0, 0.7, 2.0])),
                old_mixture,
                3.0,
            ),
            ("grid", GridMixture(k=3, dim=3), old_mixture, 5.0),
            ("grid-far", GridMixture(k=2, spacing=100.0), old_mixture, 60.0),
            ("symmetric", SymmetricMixture(dim=20), old_mixture, 2.0),
            (
                "gaussian",
                Gaussian(torch.tensor([1.0, -2.0]), torch.tensor([[2.0, 0.6], [0.6, 1.0]])),
                old_gaussian,
                2.0,
            ),
            ("logistic", BayesianLogisticRegression("iris_binary"), old_logistic, 1.0),
            (
                "logistic-bc",
                BayesianLogisticRegression("breast_cancer", n_data=200),
                old_logistic,
                0.5,
            ),
        ]
    finally:
        torch.set_default_dtype(old)


CASES = _cases()


@pytest.mark.parametrize("name,target,old,scale", CASES, ids=[c[0] for c in CASES])
def test_values_and_gradients_equal_the_previous_formulas(name, target, old, scale):
    g = torch.Generator().manual_seed(0)
    x = scale * torch.randn(3, 4, target.dim, generator=g, dtype=torch.float64)
    ref_lp, ref_grad = _autograd(lambda y: old(target, y), x)
    # the new log_prob, its autograd gradient, and the closed-form pair
    new_lp, new_grad = _autograd(target.log_prob, x)
    lp, grad = target.log_prob_and_grad(x)
    for got, want in ((new_lp, ref_lp), (lp, ref_lp), (new_grad, ref_grad), (grad, ref_grad)):
        assert got.shape == want.shape and got.dtype == torch.float64
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    assert not lp.requires_grad and not grad.requires_grad
    # an unbatched point [D] -> [] and [D]
    lp1, grad1 = target.log_prob_and_grad(x[0, 0])
    assert lp1.shape == () and grad1.shape == (target.dim,)
    torch.testing.assert_close(lp1, ref_lp[0, 0], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(target.log_prob(x[0, 0]), ref_lp[0, 0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["funnel7", "banana6", "symmetric", "grid", "logistic"])
def test_float32_close_to_float64(name):
    _, target, old, scale = next(c for c in CASES if c[0] == name)
    x = scale * torch.randn(50, target.dim, generator=torch.Generator().manual_seed(1))
    lp64, g64 = _autograd(lambda y: old(target, y), x.double())
    t32 = copy.deepcopy(target).float()
    lp32, g32 = t32.log_prob_and_grad(x)
    assert lp32.dtype == torch.float32
    torch.testing.assert_close(lp32.double(), lp64, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(g32.double(), g64, rtol=1e-4, atol=1e-3)


def test_every_mixture_path_is_covered():
    """full covariances (einsum), diagonal (fused), isotropic near (expansion), far (fused)."""
    paths = {
        name: (t._diagonal, t._expand) for name, t, _, _ in CASES if isinstance(t, GaussianMixture)
    }
    assert paths["mixture-full"] == (False, False)
    assert paths["mixture-diag"] == (True, False)
    assert paths["mixture-iso"] == paths["grid"] == paths["symmetric"] == (True, True)
    assert paths["grid-far"] == (True, False)


def test_mixture_non_finite_points_and_far_components():
    """Non-finite points stay non-finite, far components weigh nothing."""
    for name in ("grid", "mixture-diag", "mixture-full"):
        t = next(c[1] for c in CASES if c[0] == name)
        x = torch.zeros(3, t.dim, dtype=torch.float64)
        x[0, 0], x[1, 0] = torch.inf, torch.nan
        lp, _ = t.log_prob_and_grad(x)
        # an infinite coordinate: -inf, or NaN on the expanded path (inf * 0); both are
        # refused by the kernels like any non-finite log-density
        for v in (lp[0], t.log_prob(x)[0]):
            assert not torch.isfinite(v) and v != torch.inf
        assert torch.isnan(lp[1]) and torch.isfinite(lp[2])
    t = next(c[1] for c in CASES if c[0] == "grid-far").float()
    x = t.loc[:1] + 0.5  # next to one mode, 100 sigma from the others
    lp, grad = t.log_prob_and_grad(x)
    torch.testing.assert_close(grad, torch.full_like(x, -0.5))
    t.double()


def test_funnel_gradient_finite_at_the_axis():
    """x_1..x_{D-1} = 0 (a vector norm of zeros): autograd and closed form agree, finite."""
    t = Funnel(4).double()
    x = torch.zeros(2, 4, dtype=torch.float64)
    x[:, 0] = torch.tensor([0.5, -1.0])
    _, g_auto = _autograd(t.log_prob, x)
    _, g = t.log_prob_and_grad(x)
    _, g_old = _autograd(lambda y: old_funnel(t, y), x)
    assert torch.isfinite(g_auto).all()
    torch.testing.assert_close(g_auto, g_old)
    torch.testing.assert_close(g, g_old)


def test_kernel_helper_uses_the_targets_closed_form():
    class Marked(torch.nn.Module):
        dim = 2

        def log_prob(self, x):
            return -0.5 * x.square().sum(-1)

        def log_prob_and_grad(self, x):
            assert not torch.is_grad_enabled() and not x.requires_grad
            return torch.full(x.shape[:-1], 7.0), torch.full_like(x, 3.0)

    x = torch.zeros(5, 2, requires_grad=True)
    lp, grad = log_prob_and_grad(Marked(), x)
    assert torch.equal(lp, torch.full((5,), 7.0)) and torch.equal(grad, torch.full((5, 2), 3.0))

    class Plain(torch.nn.Module):  # no closed form: autograd as before
        dim = 2

        def log_prob(self, x):
            return -0.5 * x.square().sum(-1)

    y = torch.randn(5, 2)
    lp, grad = log_prob_and_grad(Plain(), y)
    torch.testing.assert_close(grad, -y)
    assert math.isclose(float(lp[0]), float(-0.5 * y[0].square().sum()), rel_tol=1e-6)


def test_banana_cache_follows_its_buffers():
    """The cached coefficients follow load_state_dict, dtype and in-place changes of b/sigma."""
    x = torch.randn(5, 6, generator=torch.Generator().manual_seed(0))
    t = Banana(6, b=0.1, sigma=2.0)
    t.log_prob(x)  # fills the cache
    other = Banana(6, b=-0.3, sigma=1.5)
    t.load_state_dict(other.state_dict())
    torch.testing.assert_close(t.log_prob(x), other.log_prob(x))
    torch.testing.assert_close(t.log_prob(x), old_banana(other, x))
    t.double()
    assert t.log_prob(x.double()).dtype == torch.float64
    with torch.no_grad():
        t.sigma.fill_(3.0)
    ref = Banana(6, b=-0.3, sigma=3.0).double()
    torch.testing.assert_close(t.log_prob_and_grad(x.double()), ref.log_prob_and_grad(x.double()))
