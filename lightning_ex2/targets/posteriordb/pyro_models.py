"""Posteriors of the suite written as Pyro models, for :class:`~lightning_ex2.targets.PyroModel`.

Each is short and close to its Stan program (the same parameters in the same order, so
the same unconstrained space as the torch port), written to broadcast over a leading
batch dimension: latent vectors are Pyro events (``beta[..., k]``, ``(X * beta).sum(-1)``)
or sit in a plate, never ``X @ beta``. Stan's flat priors are a distribution on the
support with its density masked out; a prior Stan puts on a constrained vector (``ordered``) is a
``pyro.factor``. :data:`MODELS` maps a posteriordb name to ``(model, args(data))``.

Example:
    >>> from lightning_ex2.targets import PyroModel, posteriordb
    >>> from lightning_ex2.targets.posteriordb.pyro_models import MODELS, model_args
    >>> name = "eight_schools-eight_schools_noncentered"
    >>> data = posteriordb.load_data(name, "tests/fixtures/posteriordb")
    >>> target = PyroModel(MODELS[name], *model_args(name, data), verbose=False)
    >>> target.dim, target.evaluation
    (10, 'plate')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyro
import pyro.distributions as dist
import torch

__all__ = ["MODELS", "model_args"]


def _t(value: Any) -> torch.Tensor:
    return torch.as_tensor(value, dtype=torch.float64)


def _flat(d: dist.Distribution) -> dist.Distribution:
    """Stan's implicit flat prior on ``d``'s support: ``d`` with its log density masked
    to 0 (``ImproperUniform`` would do, but Pyro's initialisation samples the site)."""
    return d.mask(False)


def eight_schools_noncentered(J: int, y: torch.Tensor, sigma: torch.Tensor) -> None:
    schools = pyro.plate("schools", J)
    with schools:
        theta_trans = pyro.sample("theta_trans", dist.Normal(0.0, 1.0))
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(5.0))
    with schools:
        pyro.sample("y", dist.Normal(theta_trans * tau + mu, sigma), obs=y)


def _regression4(x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor, y: torch.Tensor) -> None:
    """``y ~ normal(beta[1] + beta[2] x1 + beta[3] x2 + beta[4] x3, sigma)``, flat priors."""
    beta = pyro.sample("beta", _flat(dist.Normal(0.0, 1.0).expand([4]).to_event(1)))
    sigma = pyro.sample("sigma", _flat(dist.LogNormal(0.0, 1.0)))
    mean = beta[..., 0] + beta[..., 1] * x1 + beta[..., 2] * x2 + beta[..., 3] * x3
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Normal(mean, sigma), obs=y)


def kidscore_interaction_c(kid_score, mom_hs, mom_iq) -> None:  # type: ignore[no-untyped-def]
    c_hs, c_iq = mom_hs - mom_hs.mean(), mom_iq - mom_iq.mean()
    _regression4(c_hs, c_iq, c_hs * c_iq, kid_score)


def logearn_interaction_z(earn, height, male) -> None:  # type: ignore[no-untyped-def]
    z_height = (height - height.mean()) / height.std()
    _regression4(z_height, male, z_height * male, earn.log())


def low_dim_gauss_mix(y: torch.Tensor) -> None:
    ordered = dist.TransformedDistribution(
        dist.Normal(0.0, 1.0).expand([2]).to_event(1), dist.transforms.OrderedTransform()
    )
    mu = pyro.sample("mu", _flat(ordered))
    sigma = pyro.sample("sigma", dist.HalfNormal(2.0).expand([2]).to_event(1))
    theta = pyro.sample("theta", dist.Beta(5.0, 5.0))
    pyro.factor("mu_prior", dist.Normal(0.0, 2.0).log_prob(mu).sum(-1))
    mix = dist.Categorical(probs=torch.stack([theta, 1 - theta], -1))
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.MixtureSameFamily(mix, dist.Normal(mu, sigma)), obs=y)


def ark(K: int, y: torch.Tensor) -> None:
    alpha = pyro.sample("alpha", dist.Normal(0.0, 10.0))
    beta = pyro.sample("beta", dist.Normal(0.0, 10.0).expand([K]).to_event(1))
    sigma = pyro.sample("sigma", dist.HalfCauchy(2.5))
    T = len(y)
    lags = torch.stack([y[K - k - 1 : T - k - 1] for k in range(K)], -1)  # [T-K, K]: y[t-k]
    with pyro.plate("time", T - K):
        pyro.sample("y", dist.Normal(alpha + (lags * beta).sum(-1), sigma), obs=y[K:])


def blr(X: torch.Tensor, y: torch.Tensor) -> None:
    beta = pyro.sample("beta", dist.Normal(0.0, 10.0).expand([X.shape[1]]).to_event(1))
    sigma = pyro.sample("sigma", dist.HalfNormal(10.0))
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Normal((X * beta).sum(-1), sigma), obs=y)


#: posteriordb name -> the Pyro model
MODELS: dict[str, Callable[..., None]] = {
    "eight_schools-eight_schools_noncentered": eight_schools_noncentered,
    "kidiq_with_mom_work-kidscore_interaction_c": kidscore_interaction_c,
    "earnings-logearn_interaction_z": logearn_interaction_z,
    "low_dim_gauss_mix-low_dim_gauss_mix": low_dim_gauss_mix,
    "arK-arK": ark,
    "sblrc-blr": blr,
}


def model_args(name: str, data: dict) -> tuple:
    """The model's arguments from posteriordb's data dict (float64 tensors)."""
    if name == "eight_schools-eight_schools_noncentered":
        return int(data["J"]), _t(data["y"]), _t(data["sigma"])
    if name == "kidiq_with_mom_work-kidscore_interaction_c":
        return _t(data["kid_score"]), _t(data["mom_hs"]), _t(data["mom_iq"])
    if name == "earnings-logearn_interaction_z":
        return _t(data["earn"]), _t(data["height"]), _t(data["male"])
    if name == "low_dim_gauss_mix-low_dim_gauss_mix":
        return (_t(data["y"]),)
    if name == "arK-arK":
        return int(data["K"]), _t(data["y"])
    if name == "sblrc-blr":
        return _t(data["X"]), _t(data["y"])
    raise KeyError(f"no Pyro model for {name!r}; known: {', '.join(MODELS)}")
