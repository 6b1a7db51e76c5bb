"""Tests for lightning_ex2.targets: densities, normalization, exact samplers, helpers."""

from __future__ import annotations

import math
import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

import lightning_ex2
from lightning_ex2.targets import (
    DATASETS,
    Banana,
    BayesianLogisticRegression,
    Funnel,
    Gaussian,
    GaussianMixture,
    Target,
    TargetBase,
    check_target,
    has_sampler,
    target_dim,
)

Z = 3.3  # z-score for Monte Carlo tolerances


@contextmanager
def float64_default():
    """Build targets with float64 buffers (exact comparisons with scipy)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


COV2 = [[2.0, 0.6], [0.6, 1.0]]


def _gaussian():
    return Gaussian(
        torch.tensor([1.0, -2.0, 0.5]),
        torch.tensor([[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 0.5]]),
    )


def _mixture():
    means = torch.tensor([[-4.0, 0.0, 1.0], [3.0, 2.0, -1.0], [0.0, -5.0, 0.0]])
    covs = torch.stack(
        [
            torch.eye(3),
            torch.tensor([[1.5, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.7]]),
            0.5 * torch.eye(3),
        ]
    )
    return GaussianMixture(means, covs=covs, weights=torch.tensor([0.2, 0.5, 0.3]))


FACTORIES = {
    "gaussian": _gaussian,
    "mixture": _mixture,
    "grid": lambda: GaussianMixture.grid(k=3, spacing=4.0, scale=0.8, dim=3),
    "symmetric": lambda: GaussianMixture.symmetric(dim=6, n_modes=3, distance=6.0),
    "banana": lambda: Banana(dim=5, b=0.1, sigma=2.0),
    "funnel": lambda: Funnel(dim=4, a=1.0, b=0.5),
}


@pytest.fixture(params=sorted(FACTORIES))
def target(request):
    return FACTORIES[request.param]()


# ------------------------------------------------------------------ generic
@pytest.mark.parametrize("batch", [(), (3,), (2, 3)])
def test_log_prob_shape_and_dtype(target, batch):
    x = torch.randn(*batch, target.dim)
    out = target.log_prob(x)
    assert out.shape == batch
    assert out.dtype == x.dtype
    assert torch.isfinite(out).all()
    assert torch.equal(target(x), out)  # forward is log_prob


def test_protocol(target):
    assert isinstance(target, Target)  # the contract, lightning_ex2.protocols.Target
    assert isinstance(target, TargetBase)
    assert has_sampler(target)
    assert check_target(target) is target
    assert target_dim(target) == target.dim
    assert not list(target.parameters())  # only buffers
    assert len(list(target.buffers())) > 0


def test_sample_shape_and_generator(target):
    x1 = target.sample(50, generator=torch.Generator().manual_seed(7))
    x2 = target.sample(50, generator=torch.Generator().manual_seed(7))
    x3 = target.sample(50, generator=torch.Generator().manual_seed(8))
    assert x1.shape == (50, target.dim)
    assert x1.dtype == torch.get_default_dtype()
    assert torch.equal(x1, x2)
    assert not torch.equal(x1, x3)
    assert target.sample(0).shape == (0, target.dim)


def test_to_float64(target):
    t64 = target.to(torch.float64)
    assert all(b.dtype == torch.float64 for b in t64.buffers() if b.is_floating_point())
    x = t64.sample(4, generator=torch.Generator().manual_seed(0))
    assert x.dtype == torch.float64
    assert t64.log_prob(x).dtype == torch.float64
    assert t64.mean.dtype == torch.float64


def test_gradients(target):
    x = torch.randn(2, 3, target.dim, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(target.log_prob(x).sum(), x)
    assert grad.shape == x.shape and torch.isfinite(grad).all()
    t64 = target.to(torch.float64)
    xs = torch.randn(3, target.dim, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(t64.log_prob, (xs,))


def test_sample_moments(target):
    """Sample mean/variance within Z * MCSE of the analytic ones."""
    n = 200_000
    t = target.to(torch.float64)
    x = t.sample(n, generator=torch.Generator().manual_seed(123))
    mean, var = t.mean, t.variance
    assert torch.allclose(t.covariance.diagonal(), var)
    assert (x.mean(0) - mean).abs().le(Z * (var / n).sqrt()).all(), (x.mean(0), mean)
    centered = x - mean
    m4 = centered.pow(4).mean(0)
    mcse_var = ((m4 - var.square()).clamp_min(0) / n).sqrt()
    assert (centered.square().mean(0) - var).abs().le(Z * mcse_var).all(), (x.var(0), var)


def test_sample_matches_log_prob(target):
    """Samples and density agree: E_p[log p(x) - log p(x + 0.5)] = KL > 0 (Gibbs)."""
    t = target.to(torch.float64)
    x = t.sample(20_000, generator=torch.Generator().manual_seed(5))
    lp = t.log_prob(x)
    shifted = t.log_prob(x + 0.5)
    diff = lp - shifted
    assert diff.mean() > Z * diff.std() / math.sqrt(len(diff))


# --------------------------------------------------------- reference values
def test_gaussian_matches_scipy():
    with float64_default():
        g = _gaussian()
    assert g.scale_tril.dtype == torch.float64
    x = torch.randn(10, 3, dtype=torch.float64)
    ref = stats.multivariate_normal(g.mean.numpy(), g.covariance.numpy()).logpdf(x.numpy())
    np.testing.assert_allclose(g.log_prob(x).numpy(), ref, rtol=1e-10)
    iso = Gaussian(torch.zeros(2), 4.0)
    np.testing.assert_allclose(iso.covariance.numpy(), 4.0 * np.eye(2))
    diag = Gaussian(torch.zeros(2), torch.tensor([1.0, 9.0]))
    np.testing.assert_allclose(diag.variance.numpy(), [1.0, 9.0])


def test_mixture_matches_scipy():
    with float64_default():
        gm = _mixture()
    x = torch.randn(10, 3, dtype=torch.float64) * 3
    comps = [
        np.log(w) + stats.multivariate_normal(m, c).logpdf(x.numpy())
        for w, m, c in zip(
            gm.weights.numpy(), gm.loc.numpy(), (gm.scale_tril @ gm.scale_tril.mT).numpy()
        )
    ]
    ref = logsumexp(np.stack(comps), axis=0)
    np.testing.assert_allclose(gm.log_prob(x).numpy(), ref, rtol=1e-10)


def test_banana_matches_scipy():
    with float64_default():
        t = Banana(dim=5, b=0.1, sigma=2.0)
    x = torch.randn(7, 5, dtype=torch.float64) * 2
    xn = x.numpy()
    ref = stats.norm.logpdf(xn[:, [0, 2, 4]], scale=2.0).sum(1)
    for k in range(2):
        ref += stats.norm.logpdf(xn[:, 2 * k + 1], loc=0.1 * (xn[:, 2 * k] ** 2 - 4.0))
    np.testing.assert_allclose(t.log_prob(x).numpy(), ref, rtol=1e-10)


def test_funnel_matches_scipy():
    with float64_default():
        t = Funnel(dim=4, a=2.0, b=0.5)
    x = torch.randn(7, 4, dtype=torch.float64)
    xn = x.numpy()
    ref = stats.norm.logpdf(xn[:, 0], scale=2.0)
    ref += stats.norm.logpdf(xn[:, 1:], scale=np.exp(0.5 * xn[:, :1])).sum(1)
    np.testing.assert_allclose(t.log_prob(x).numpy(), ref, rtol=1e-10)


def _integrate_2d(log_prob, u, v):
    xx, yy = torch.meshgrid(u, v, indexing="ij")
    dens = log_prob(torch.stack([xx, yy], -1)).exp()
    return torch.trapezoid(torch.trapezoid(dens, v, dim=1), u).item()


@pytest.mark.parametrize(
    ("name", "make", "u", "v"),
    [
        (
            "gaussian",
            lambda: Gaussian(torch.tensor([1.0, -1.0]), COV2),
            (-12, 14, 801),
            (-10, 8, 801),
        ),
        ("grid", lambda: GaussianMixture.grid(), (-18, 18, 901), (-18, 18, 901)),
        ("banana", lambda: Banana(dim=2), (-40, 40, 1001), (-10, 45, 1001)),
    ],
)
def test_normalization_uniform_grid(name, make, u, v):
    t = make().to(torch.float64)
    total = _integrate_2d(
        t.log_prob, torch.linspace(*u, dtype=torch.float64), torch.linspace(*v, dtype=torch.float64)
    )
    assert total == pytest.approx(1.0, abs=1e-3), name


def test_funnel_normalization():
    t = Funnel(dim=2, a=1.0, b=0.5).to(torch.float64)
    u = torch.linspace(-8, 8, 801, dtype=torch.float64)
    v = 0.01 * torch.sinh(
        torch.linspace(-10, 10, 4001, dtype=torch.float64)
    )  # fine near 0, wide tails
    assert _integrate_2d(t.log_prob, u, v) == pytest.approx(1.0, abs=1e-3)


# ------------------------------------------------------------------ mixture
def test_component_probs_and_assign():
    gm = GaussianMixture.grid(k=3, spacing=10.0, scale=1.0)
    x, comp = gm.sample(2000, generator=torch.Generator().manual_seed(3), return_components=True)
    probs = gm.component_probs(x.view(40, 50, 2))
    assert probs.shape == (40, 50, 9)
    torch.testing.assert_close(probs.sum(-1), torch.ones(40, 50))
    assert gm.assign(x.view(40, 50, 2)).shape == (40, 50)
    assert (gm.assign(x) == comp).float().mean() > 0.999
    counts = torch.bincount(comp, minlength=9).double() / 2000
    assert (counts - 1 / 9).abs().max() < Z * math.sqrt((1 / 9) * (8 / 9) / 2000)


def test_mixture_weights_sampling():
    gm = GaussianMixture(torch.tensor([[-10.0], [10.0]]), scales=[1.0, 2.0], weights=[1.0, 3.0])
    torch.testing.assert_close(gm.weights, torch.tensor([0.25, 0.75]))
    x = gm.sample(20_000, generator=torch.Generator().manual_seed(1))
    frac = (x[:, 0] > 0).double().mean().item()
    assert abs(frac - 0.75) < Z * math.sqrt(0.75 * 0.25 / 20_000)


def test_grid_and_symmetric_layout():
    gm = GaussianMixture.grid(k=5, spacing=5.0, scale=1.0, dim=4)
    assert gm.n_components == 25 and gm.dim == 4
    assert set(gm.loc[:, 0].tolist()) == {-10.0, -5.0, 0.0, 5.0, 10.0}
    assert torch.equal(gm.loc[:, 2:], torch.zeros(25, 2))
    torch.testing.assert_close(gm.variance, torch.tensor([51.0, 51.0, 1.0, 1.0]))
    sym = GaussianMixture.symmetric(dim=16, n_modes=2, distance=8.0)
    torch.testing.assert_close(sym.loc, torch.tensor([[-1.0] * 16, [1.0] * 16]))
    assert torch.linalg.vector_norm(sym.loc[1] - sym.loc[0]).item() == pytest.approx(8.0)


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("make", "arg"),
    [
        (lambda: Gaussian(torch.zeros(2), [[1.0, 2.0], [2.0, 1.0]]), "cov"),
        (lambda: Gaussian(torch.zeros(2), torch.eye(3)), "cov"),
        (lambda: Gaussian(torch.zeros(2), -1.0), "cov"),
        (lambda: Gaussian(torch.zeros(2, 2), 1.0), "mean"),
        (lambda: GaussianMixture(torch.zeros(2, 2)), "covs"),
        (
            lambda: GaussianMixture(
                torch.zeros(2, 2), covs=torch.eye(2).expand(2, 2, 2), scales=1.0
            ),
            "scales",
        ),
        (lambda: GaussianMixture(torch.zeros(2), scales=1.0), "means"),
        (lambda: GaussianMixture(torch.zeros(2, 2), covs=-torch.eye(2).expand(2, 2, 2)), "covs"),
        (lambda: GaussianMixture(torch.zeros(2, 2), scales=[1.0, 2.0, 3.0]), "scales"),
        (lambda: GaussianMixture(torch.zeros(2, 2), scales=0.0), "scales"),
        (lambda: GaussianMixture(torch.zeros(2, 2), scales=1.0, weights=[1.0, -1.0]), "weights"),
        (lambda: GaussianMixture(torch.zeros(2, 2), scales=1.0, weights=[1.0]), "weights"),
        (lambda: GaussianMixture.grid(k=0), "k"),
        (lambda: GaussianMixture.grid(dim=1), "dim"),
        (lambda: GaussianMixture.symmetric(dim=3, distance=-1.0), "distance"),
        (lambda: Banana(dim=1), "dim"),
        (lambda: Banana(dim=2.5), "dim"),
        (lambda: Banana(dim=2, sigma=0.0), "sigma"),
        (lambda: Banana(dim=2, b=float("nan")), "b"),
        (lambda: Funnel(dim=1), "dim"),
        (lambda: Funnel(dim=3, a=-1.0), "a"),
        (lambda: BayesianLogisticRegression(prior_scale=0.0), "prior_scale"),
        (lambda: BayesianLogisticRegression("iris_binary", n_data=1000), "n_data"),
    ],
)
def test_validation_names_argument(make, arg):
    with pytest.raises(ValueError, match=f"`{arg}`"):
        make()


def test_sample_n_validation():
    with pytest.raises(ValueError, match="`n`"):
        Banana(dim=2).sample(-1)
    with pytest.raises(TypeError, match="`n`"):
        Funnel(dim=2).sample(2.5)


# ---------------------------------------------------------------------- BLR
@pytest.mark.parametrize(
    ("dataset", "dim"), [("breast_cancer", 31), ("digits_binary", 65), ("iris_binary", 5)]
)
def test_blr_datasets(dataset, dim):
    t = BayesianLogisticRegression(dataset)
    assert t.dim == dim and not has_sampler(t) and check_target(t) is t
    assert not list(t.parameters())
    assert torch.isfinite(t.features).all()
    no_icpt = BayesianLogisticRegression(dataset, include_intercept=False, standardize=False)
    assert no_icpt.dim == dim - 1


@pytest.mark.parametrize("batch", [(), (4,), (2, 3)])
def test_blr_log_prob_shape_grad(batch):
    t = BayesianLogisticRegression("breast_cancer")
    x = (0.1 * torch.randn(*batch, t.dim)).requires_grad_()
    out = t.log_prob(x)
    assert out.shape == batch and out.dtype == x.dtype
    (g,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_blr_matches_numpy():
    with float64_default():
        t = BayesianLogisticRegression("iris_binary", prior_scale=2.0)
    theta = torch.randn(6, t.dim, dtype=torch.float64)
    X, y = t.features.numpy(), t.labels.numpy()
    assert (
        np.allclose(X[:, 1:].mean(0), 0)
        and np.allclose(X[:, 1:].std(0), 1)
        and np.all(X[:, 0] == 1)
    )
    p = 1 / (1 + np.exp(-(theta.numpy() @ X.T)))
    loglik = (y * np.log(p) + (1 - y) * np.log1p(-p)).sum(1)
    logprior = stats.norm.logpdf(theta.numpy(), scale=2.0).sum(1)
    np.testing.assert_allclose(t.log_prob(theta).numpy(), loglik + logprior, rtol=1e-9)
    assert t.log_likelihood(torch.zeros(t.dim, dtype=torch.float64)).item() == pytest.approx(
        -t.n_data * math.log(2)
    )


def test_blr_prior_dominated_limit():
    """With a tiny prior scale the posterior gradient is the prior's, -theta / s^2."""
    s = 1e-4
    t = BayesianLogisticRegression("breast_cancer", prior_scale=s, n_data=50).to(torch.float64)
    assert t.n_data == 50 and t.features.shape == (50, 31)
    theta = (s * torch.randn(5, t.dim, dtype=torch.float64)).requires_grad_()
    (g,) = torch.autograd.grad(t.log_prob(theta).sum(), theta)
    prior_g = -theta.detach() / s**2
    rel = (g - prior_g).norm(dim=-1) / prior_g.norm(dim=-1)
    assert (rel < 0.02).all(), rel
    # ... and much smaller than with a unit prior, where the data dominate.
    t1 = BayesianLogisticRegression("breast_cancer", prior_scale=1.0, n_data=50).to(torch.float64)
    (g1,) = torch.autograd.grad(t1.log_prob(theta).sum(), theta)
    assert ((g1 + theta.detach()).norm(dim=-1) / theta.detach().norm(dim=-1) > 1.0).all()


def test_blr_unknown_dataset():
    with pytest.raises(ValueError, match="dataset") as err:
        BayesianLogisticRegression("mnist")
    for name in DATASETS:
        assert name in str(err.value)


# ------------------------------------------------------------------ helpers
class _UserTarget(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.dim = 2

    def log_prob(self, x):
        return -0.5 * x.square().sum(-1)


class _NoLogProb(torch.nn.Module):
    dim = 2


class _WithSampler(_UserTarget):
    def sample(self, n, generator=None):
        return torch.randn(n, self.dim, generator=generator)


def test_helpers_duck_typing():
    user = _UserTarget()
    assert check_target(user) is user
    assert target_dim(user) == 2
    assert not has_sampler(user)
    assert has_sampler(_WithSampler())
    assert not has_sampler(BayesianLogisticRegression("iris_binary"))
    assert not hasattr(TargetBase, "sample")
    assert not hasattr(Target, "sample")  # an optional hook, not a member of the protocol


def test_helpers_errors():
    with pytest.raises(TypeError, match="_NoLogProb"):
        check_target(_NoLogProb())
    with pytest.raises(TypeError, match="dim"):
        target_dim(torch.nn.Linear(2, 2))
    bad = _UserTarget()
    bad.dim = 2.5
    with pytest.raises(TypeError, match="dim"):
        target_dim(bad)
    bad.dim = 0
    with pytest.raises(ValueError, match="dim"):
        target_dim(bad)
    with pytest.raises(TypeError):
        TargetBase()  # abstract


def test_target_hooks_are_read_in_one_place():
    from lightning_ex2.protocols import TARGET_HOOKS, target_hook

    user = _UserTarget()
    assert isinstance(user, Target) and not isinstance(user, TargetBase)
    assert all(target_hook(user, name) is None for name in TARGET_HOOKS)
    assert target_hook(_WithSampler(), "sample") is not None
    user.sample = 3  # not callable: no sampler
    assert target_hook(user, "sample") is None and not has_sampler(user)
    user.dim_names = ["a", "b"]
    assert target_hook(user, "dim_names") == ["a", "b"]
    with pytest.raises(ValueError, match="not a target hook"):
        target_hook(user, "decode")
    package = Path(lightning_ex2.__file__).parent
    hooks = "|".join(TARGET_HOOKS)
    pattern = re.compile(rf"""getattr\([^,]+,\s*["']({hooks})["']""")
    found = [
        f"{path.relative_to(package)}: {m.group(0)}"
        for path in package.rglob("*.py")
        if path.name != "protocols.py"
        for m in pattern.finditer(path.read_text())
    ]
    assert not found, f"optional target hooks read outside protocols.target_hook: {found}"
