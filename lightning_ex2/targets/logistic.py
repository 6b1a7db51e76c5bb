"""Bayesian logistic regression posterior on small data sets shipped with scikit-learn."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .base import LOG_2PI, TargetBase, check_int, check_positive


def _breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    return data.data, data.target


def _digits_binary() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    keep = data.target <= 1  # digit 0 vs digit 1
    return data.data[keep], data.target[keep]


def _iris_binary() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    data = load_iris()
    keep = data.target >= 1  # versicolor (0) vs virginica (1): not linearly separable
    return data.data[keep], data.target[keep] - 1


DATASETS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {
    "breast_cancer": _breast_cancer,
    "digits_binary": _digits_binary,
    "iris_binary": _iris_binary,
}


class BayesianLogisticRegression(TargetBase):
    """Posterior of Bayesian logistic regression, a real-data benchmark of Ex2MCMC.

    Model: ``theta ~ N(0, prior_scale^2 I)``, ``y_i | theta ~ Bernoulli(sigmoid(<theta, x_i>))``
    where ``x_i`` are the (standardized) features, with a leading 1 when
    ``include_intercept`` (``theta[0]`` is then the intercept). ``log_prob`` is the
    *unnormalized* log posterior ``log N(theta; 0, s^2 I) + sum_i log p(y_i | theta)``.
    No exact sampler. Data ship with scikit-learn (no download):

    * ``"breast_cancer"``: 569 x 30 (Wisconsin diagnostic);
    * ``"digits_binary"``: 8x8 digits 0 vs 1, 360 x 64;
    * ``"iris_binary"``: iris versicolor vs virginica, 100 x 4.

    Args:
        dataset: one of :data:`DATASETS`.
        prior_scale: prior standard deviation ``s``.
        standardize: center/scale every feature to mean 0, std 1 (constant features
            are only centered).
        n_data: use only the first ``n_data`` rows (all when ``None``).
        include_intercept: prepend a constant-1 feature.

    Shapes:
        ``log_prob``: ``[..., D] -> [...]`` with ``D = n_features (+ 1)``; the
        likelihood is one matmul ``theta [..., D] @ X^T [D, N]``.

    Example:
        >>> t = BayesianLogisticRegression("iris_binary")
        >>> t.dim, t.log_prob(torch.zeros(2, t.dim)).shape
        (5, torch.Size([2]))
    """

    def __init__(
        self,
        dataset: str = "breast_cancer",
        prior_scale: float = 1.0,
        standardize: bool = True,
        n_data: int | None = None,
        include_intercept: bool = True,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if dataset not in DATASETS:
            raise ValueError(
                f"{name}: unknown `dataset` {dataset!r}; valid names: {', '.join(sorted(DATASETS))}"
            )
        self.prior_scale = check_positive(prior_scale, "prior_scale", name)
        features, labels = DATASETS[dataset]()
        features = np.asarray(features, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.float64)
        if n_data is not None:
            n_data = check_int(n_data, "n_data", name, 1)
            if n_data > len(labels):
                raise ValueError(
                    f"{name}: `n_data` must be <= {len(labels)} for {dataset!r}, got {n_data}"
                )
            features, labels = features[:n_data], labels[:n_data]
        if standardize:
            std = features.std(axis=0)
            features = (features - features.mean(axis=0)) / np.where(std > 0, std, 1.0)
        if include_intercept:
            features = np.concatenate([np.ones((len(features), 1)), features], axis=1)
        dtype = torch.get_default_dtype()
        self.dataset = dataset
        self.include_intercept = bool(include_intercept)
        self.dim = features.shape[1]
        self.n_data = len(labels)
        self.register_buffer("features", torch.as_tensor(features, dtype=dtype))
        self.register_buffer("labels", torch.as_tensor(labels, dtype=dtype))

    def log_prior(self, theta: Tensor) -> Tensor:
        """``log N(theta; 0, s^2 I)``: ``[..., D] -> [...]``."""
        s = self.prior_scale
        return -0.5 * (theta.square().sum(-1) / s**2 + self.dim * LOG_2PI) - self.dim * math.log(s)

    def _signed_features(self, theta: Tensor) -> Tensor:
        """``(2 y_i - 1) x_i`` ``[N, D]``: the margin ``<theta, .>`` is then one matmul."""
        signs = 2.0 * self.labels.to(theta) - 1.0  # y=1 -> +1, y=0 -> -1
        return self.features.to(theta) * signs.unsqueeze(-1)

    def log_likelihood(self, theta: Tensor) -> Tensor:
        """``sum_i log p(y_i | theta)``: ``[..., D] -> [...]``."""
        margins = theta @ self._signed_features(theta).mT  # [..., N]
        return F.logsigmoid(margins).sum(-1)

    def log_prob(self, x: Tensor) -> Tensor:
        """Unnormalized log posterior ``[..., D] -> [...]``; differentiable in ``x``."""
        return self.log_prior(x) + self.log_likelihood(x)

    @torch.no_grad()
    def log_prob_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(log pi(x) [...], grad log pi(x) [..., D])`` in closed form, no autograd graph.

        ``grad = -x / s^2 + sum_i sigmoid(-m_i) (2 y_i - 1) x_i`` with margins ``m_i``;
        ``sigmoid(-m) = -expm1(logsigmoid(m))`` reuses the likelihood's pass.
        """
        signed = self._signed_features(x)
        log_sig = F.logsigmoid(x @ signed.mT)  # [..., N]
        log_prob = self.log_prior(x) + log_sig.sum(-1)
        grad = torch.expm1(log_sig).neg_() @ signed - x / self.prior_scale**2
        return log_prob, grad

    def extra_repr(self) -> str:
        return f"dataset={self.dataset!r}, dim={self.dim}, n_data={self.n_data}, prior_scale={self.prior_scale:g}"
