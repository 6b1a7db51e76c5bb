"""PyroModel: Pyro models as batched targets, checked against Pyro and the torch ports."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pyro = pytest.importorskip("pyro")
dist = pytest.importorskip("pyro.distributions")

import lightning_ex2 as lx  # noqa: E402
from lightning_ex2.targets import PyroModel, PyroModelError, posteriordb  # noqa: E402
from lightning_ex2.targets.posteriordb.pyro_models import MODELS, model_args  # noqa: E402

FIXTURE = "tests/fixtures/posteriordb"


def _pyro_target(name: str, **kw) -> PyroModel:
    return PyroModel(MODELS[name], *model_args(name, posteriordb.load_data(name, FIXTURE)),
                     verbose=False, **kw)  # fmt: skip


@pytest.mark.parametrize("name", sorted(MODELS))
def test_suite_models_equal_the_torch_ports_up_to_a_constant(name):
    """Same unconstrained space as the port (checked against Stan itself): the log
    densities differ by one constant and the gradients agree, at random points."""
    target, port = _pyro_target(name), posteriordb.load(name, FIXTURE)
    assert target.dim == port.dim
    assert target.evaluation == "plate"  # written to broadcast: one batched pass
    x = torch.randn(32, port.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x.requires_grad_(True)
    ours, theirs = target.log_prob(x), port.log_prob(x)
    scale = theirs.detach().abs().clamp_min(1.0)
    diff = (ours - theirs).detach()
    assert float(((diff - diff[0]).abs() / scale).max()) < 1e-8
    (g_ours,) = torch.autograd.grad(ours.sum(), x)
    (g_port,) = torch.autograd.grad(theirs.sum(), x)
    gscale = g_port.abs().amax(-1, keepdim=True).clamp_min(1.0)
    assert float(((g_ours - g_port).abs() / gscale).max()) < 1e-8


def test_batched_path_equals_pyro_s_own_potential():
    """The ``plate`` path against Pyro's scalar ``potential_fn`` point by point, at
    batch shape ``[3, 5]``; a changed log-Jacobian would show here."""
    target = _pyro_target("eight_schools-eight_schools_noncentered")
    x = torch.randn(
        3, 5, target.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(2)
    )
    got = target.log_prob(x)
    assert got.shape == (3, 5)
    want = target._evaluate(x.reshape(-1, target.dim), "loop").reshape(3, 5)
    torch.testing.assert_close(got, want.to(got.dtype), rtol=1e-10, atol=1e-9)


def _matmul_regression(X, y):  # type: ignore[no-untyped-def]
    beta = pyro.sample("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Normal(X @ beta, 1.0), obs=y)


def test_a_model_that_does_not_broadcast_is_vmapped_and_says_so(capsys):
    """``X @ beta`` breaks the batched pass; ``torch.func.vmap`` over the model's trace
    agrees with Pyro and is used, and one line says so."""
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(20, 3, generator=g), torch.randn(20, generator=g)
    target = PyroModel(_matmul_regression, X, y)
    assert target.evaluation == "vmap"
    line = capsys.readouterr().err.strip()
    assert line.count("\n") == 0 and "PyroModel(_matmul_regression): D=3" in line
    assert "torch.func.vmap" in line
    x = torch.randn(4, 3)
    beta_lp = torch.distributions.Normal(0.0, 1.0).log_prob(x).sum(-1)
    lik = torch.distributions.Normal(x @ X.T, 1.0).log_prob(y).sum(-1)
    torch.testing.assert_close(target.log_prob(x), beta_lp + lik, rtol=1e-5, atol=1e-4)


def _python_value_regression(X, y):  # type: ignore[no-untyped-def]
    beta = pyro.sample("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
    noise = 1.0 if float(beta.detach()[0]) < 100.0 else 2.0  # a Python value of a latent
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Normal(X @ beta, noise), obs=y)


def test_vmap_and_loop_paths_agree_with_the_plate_path_and_each_other():
    """Forced paths on a model that broadcasts give one answer (value and gradient); a
    model that reads a Python value of a latent cannot be vmapped and falls to the loop."""
    target = _pyro_target("eight_schools-eight_schools_noncentered")
    x = torch.randn(6, target.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    values, grads = [], []
    for path in ("plate", "vmap", "loop"):
        t = _pyro_target("eight_schools-eight_schools_noncentered", path=path)
        assert t.evaluation == path
        xi = x.clone().requires_grad_(True)
        lp = t.log_prob(xi)
        values.append(lp.detach())
        grads.append(torch.autograd.grad(lp.sum(), xi)[0])
    for v, g in zip(values[1:], grads[1:], strict=True):
        torch.testing.assert_close(v, values[0], rtol=1e-10, atol=1e-9)
        torch.testing.assert_close(g, grads[0], rtol=1e-10, atol=1e-9)
    gen = torch.Generator().manual_seed(0)
    X, y = torch.randn(20, 3, generator=gen), torch.randn(20, generator=gen)
    assert PyroModel(_python_value_regression, X, y, verbose=False).evaluation == "loop"


def test_moving_the_target_moves_its_data_and_pyro_s_potential():
    """``.to(dtype)`` (and so ``.to(device)``) carries the model's tensor arguments, and
    the fallback paths' Pyro potential is rebuilt over them."""
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(20, 3, generator=g), torch.randn(20, generator=g)
    target = PyroModel(_matmul_regression, X, y, path="loop", verbose=False)
    assert target._dtype.dtype == torch.float32
    target = target.to(torch.float64)
    assert target._dtype.dtype == torch.float64 and target.args[0].dtype == torch.float64
    x = torch.randn(4, 3, dtype=torch.float64)
    beta_lp = torch.distributions.Normal(0.0, 1.0).log_prob(x).sum(-1)
    lik = torch.distributions.Normal(x @ X.double().T, 1.0).log_prob(y.double()).sum(-1)
    got = target.log_prob(x)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, beta_lp + lik, rtol=1e-10, atol=1e-9)


def test_constrain_names_and_flatten():
    target = _pyro_target("low_dim_gauss_mix-low_dim_gauss_mix")
    x = torch.randn(4, 2, target.dim, dtype=torch.float64)
    values = target.constrain(x)
    assert {k: tuple(v.shape) for k, v in values.items()} == {
        "mu": (4, 2, 2), "sigma": (4, 2, 2), "theta": (4, 2),
    }  # fmt: skip
    assert (values["mu"][..., 1] > values["mu"][..., 0]).all()  # ordered
    assert (values["sigma"] > 0).all() and ((values["theta"] > 0) & (values["theta"] < 1)).all()
    assert target.flat_names() == ["mu[1]", "mu[2]", "sigma[1]", "sigma[2]", "theta"]
    assert target.flatten(values).shape == (4, 2, 5)
    torch.testing.assert_close(target.unconstrain(values), x)  # the inverse of constrain
    # the names the torch port (and posteriordb's reference draws) use
    port = posteriordb.load("low_dim_gauss_mix-low_dim_gauss_mix", FIXTURE)
    assert target.flat_names() == port.flat_names()
    torch.testing.assert_close(target.flatten(values), port.flatten(port.constrain(x)))


# ------------------------------------------------------------------------ refusals
def _discrete(y):  # type: ignore[no-untyped-def]
    z = pyro.sample("z", dist.Bernoulli(0.5))
    pyro.sample("y", dist.Normal(z, 1.0), obs=y)


def _subsampled(y):  # type: ignore[no-untyped-def]
    mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
    with pyro.plate("data", len(y), subsample_size=2) as idx:
        pyro.sample("y", dist.Normal(mu, 1.0), obs=y[idx])


def _dynamic(y):  # type: ignore[no-untyped-def]
    n = pyro.sample("n", dist.Normal(0.0, 1.0))
    k = 1 + int(n.detach().abs() * 1000) % 3  # a shape that follows the value
    pyro.sample("w", dist.Normal(0.0, 1.0).expand([k]).to_event(1))
    pyro.sample("y", dist.Normal(n, 1.0), obs=y)


def _dependent_support(y):  # type: ignore[no-untyped-def]
    a = pyro.sample("a", dist.Uniform(0.0, 1.0))
    pyro.sample("b", dist.Uniform(0.0, 1.0 - a))  # Stan's real<lower=0, upper=(1 - a)>
    pyro.sample("y", dist.Normal(a, 1.0), obs=y)


@pytest.mark.parametrize(
    "model, words",
    [
        (_discrete, "latent site 'z' is discrete"),
        (_subsampled, "plate 'data' subsamples (2 of 5)"),
        (_dynamic, "latent sites or their shapes change between runs"),
        (_dependent_support, "support of latent site 'b' depends on other latent values"),
    ],
)
def test_refusals_are_one_line(model, words):
    with pytest.raises(PyroModelError) as err:
        PyroModel(model, torch.randn(5), verbose=False)
    message = str(err.value)
    assert words in message and "\n" not in message


def test_refuses_an_unknown_path():
    with pytest.raises(PyroModelError, match="path: must be one of plate, vmap, loop"):
        PyroModel(_discrete, torch.randn(5), path="jit", verbose=False)


# ------------------------------------------------------------------------ sampling
def test_lx_sample_runs_a_pyro_model_to_the_port_s_answer():
    """HMC through ``lx.sample`` on the Pyro eight schools: its means on the shared
    unconstrained space agree with the torch port's run (same kernel and seed) within
    Monte Carlo error, and the port agrees with Stan by the suite's checks."""
    name = "eight_schools-eight_schools_noncentered"
    target, port = _pyro_target(name), posteriordb.load(name, FIXTURE)
    kw = dict(n_chains=16, n_steps=300, burn_in=300, seed=0, progress=False,
              check_convergence=False)  # fmt: skip
    runs = [lx.sample(t, lx.kernels.HMC(n_leapfrog=5), **kw) for t in (target, port)]
    draws = [r.samples.detach().double().numpy() for r in runs]
    assert draws[0].shape == draws[1].shape == (16, 300, port.dim)
    ess = [lx.diagnostics.ess(d) for d in draws]
    means = [d.reshape(-1, d.shape[-1]).mean(0) for d in draws]
    sds = [d.reshape(-1, d.shape[-1]).std(0) for d in draws]
    se = np.sqrt(sds[0] ** 2 / ess[0] + sds[1] ** 2 / ess[1])
    z = np.abs(means[0] - means[1]) / se
    from tests.conftest import z_quantile

    assert z.max() < z_quantile(0.01, len(z)), (z.max(), int(z.argmax()))
    assert math.isfinite(float(runs[0].samples.sum()))


def _matrix_site(y):  # type: ignore[no-untyped-def]
    w = pyro.sample("w", dist.Normal(0.0, 1.0).expand([2, 3]).to_event(2))
    s = pyro.sample("s", dist.LogNormal(0.0, 0.5))
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Normal(w.sum((-1, -2)), s), obs=y)


def test_to_arviz_has_pyro_s_site_names_and_shapes():
    """ArviZ gets Pyro's sites (``w`` ``(chain, draw, 2, 3)``, ``s`` positive), the
    unconstrained draws in ``unconstrained_posterior``."""
    target = PyroModel(_matrix_site, torch.randn(10, dtype=torch.float64), verbose=False)
    run = lx.sample(target, lx.MALA(), n_chains=4, n_steps=20, burn_in=20, seed=0,
                    progress=False, check_convergence=False)  # fmt: skip
    idata = run.to_arviz()
    post = idata.posterior
    assert set(post.data_vars) == {"w", "s"}
    assert post["w"].dims == ("chain", "draw", "w_dim_0", "w_dim_1")
    assert post["w"].shape == (4, 20, 2, 3) and post["s"].shape == (4, 20)
    assert (post["s"].values > 0).all()
    np.testing.assert_array_equal(post["s"].values, target.constrain(run.samples)["s"].numpy())
    assert idata.unconstrained_posterior["x"].shape == (4, 20, 7)
