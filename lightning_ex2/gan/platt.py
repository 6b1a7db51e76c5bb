"""Platt scaling of a GAN discriminator on held-out data: plain torch, no Lightning.

:func:`fit_logistic_scale` fits ``a, b`` of ``sigmoid(a d + b)`` by Newton's method;
:func:`held_out_splits` builds the held-out validation and calibration splits (real images,
fresh fakes) that :class:`~lightning_ex2.gan.DiscriminatorCalibration` trains and fits
on; :func:`held_out_platt` fits the scale of a discriminator as it is on the calibration
split (``GANLatentTarget(beta="platt")``).

Example:
    >>> d = torch.tensor([2.0, 1.0, -1.0, -2.0]); y = torch.tensor([1.0, 1.0, 0.0, 0.0])
    >>> a, b = fit_logistic_scale(d, y)
    >>> bool(a > 1), round(log_loss(d, y), 3), bool(log_loss(a * d + b, y) < log_loss(d, y))
    (True, 0.22, True)
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["accuracy", "fit_logistic_scale", "held_out_platt", "held_out_splits", "log_loss"]


def log_loss(logits: Tensor, labels: Tensor) -> float:
    """Mean binary cross-entropy of ``sigmoid(logits)`` against ``labels`` in {0, 1}."""
    return float(F.binary_cross_entropy_with_logits(logits.double(), labels.double()))


def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Share of ``logits > 0`` that agree with ``labels``."""
    return float(((logits > 0).double() == labels.double()).double().mean())


def fit_logistic_scale(
    logits: Tensor, labels: Tensor, iters: int = 100, ridge: float = 1e-6
) -> tuple[float, float]:
    """``(a, b)`` minimising the log-loss of ``sigmoid(a * logits + b)`` (Newton's method).

    The problem is a 2-parameter logistic regression, convex; Newton steps converge in a few
    iterations. A ridge ``ridge (a - 1)^2 / 2`` keeps ``a`` finite on perfectly separated
    splits. Raises ``ValueError`` unless ``a`` comes out positive (a discriminator that ranks
    fakes above reals cannot be calibrated).
    """
    x = logits.detach().double().reshape(-1)
    y = labels.detach().double().reshape(-1)
    X = torch.stack([x, torch.ones_like(x)], 1)
    w = torch.tensor([1.0, 0.0], dtype=torch.float64)
    for _ in range(iters):
        p = torch.sigmoid(X @ w)
        penalty = torch.tensor([ridge * (float(w[0]) - 1.0), 0.0], dtype=torch.float64)
        grad = X.T @ (p - y) / len(y) + penalty
        hess = (X.T * (p * (1 - p))) @ X / len(y) + torch.diag(
            torch.tensor([ridge, 1e-9], dtype=torch.float64)
        )
        step = torch.linalg.solve(hess, grad)
        w = w - step
        if float(step.abs().max()) < 1e-10:
            break
    a, b = float(w[0]), float(w[1])
    if not a > 0:
        raise ValueError(f"logistic scale {a:.4g} <= 0: the discriminator ranks fakes above reals")
    return a, b


@torch.no_grad()
def held_out_splits(
    generator: nn.Module,
    held_out: Any,
    n: int,
    seed: int,
    latent_dim: int,
    device: torch.device | str = "cpu",
    batch_size: int = 1000,
) -> dict[str, tuple[Tensor, Tensor]]:
    """The held-out ``"val"`` and ``"calib"`` splits: ``(images [2n, C, H, W], labels [2n])``.

    Real images are ``held_out.real_images(2 n)`` (the first ``n`` for ``val``, the next ``n``
    for ``calib``, label 1), fakes ``G(z)`` of ``2 n`` latents drawn with a generator seeded
    ``seed + 1`` (label 0), ``G`` in eval mode. :class:`DiscriminatorCalibration` and
    :func:`held_out_platt` use the same splits.
    """
    real = torch.as_tensor(held_out.real_images(2 * n)).float().to(device)
    g = torch.Generator(device=device).manual_seed(seed + 1)
    z = torch.randn(2 * n, latent_dim, generator=g, device=device)
    was = generator.training
    generator.eval()
    try:
        fake = torch.cat([generator(c) for c in z.split(batch_size)])
    finally:
        generator.train(was)
    ones, zeros = torch.ones(n, device=device), torch.zeros(n, device=device)
    return {
        name: (
            torch.cat([real[i * n : (i + 1) * n], fake[i * n : (i + 1) * n]]),
            torch.cat([ones, zeros]),
        )
        for i, name in enumerate(("val", "calib"))
    }


@torch.no_grad()
def held_out_platt(
    generator: nn.Module,
    logit: Any,
    held_out: Any,
    n: int = 2000,
    seed: int = 0,
    latent_dim: int | None = None,
    batch_size: int = 1000,
) -> dict[str, float]:
    """Platt scaling of a discriminator as it is (no training): ``a, b`` of
    :func:`fit_logistic_scale` on the calibration split of :func:`held_out_splits`.

    Args:
        generator: the GAN's generator.
        logit: ``images [B, C, H, W] -> [B]`` (a discriminator, or its calibrated logit).
        held_out: an image DataModule with ``real_images(n)``.
        n, seed: the split's size (real images, as many fakes) and the fakes' seed.

    Returns:
        ``logit_scale``, ``logit_bias``, the split's ``log_loss`` and ``log_loss_scaled``
        and ``accuracy`` of the raw logit, and ``n``. With the defaults this is the
        ``before`` entry of :class:`DiscriminatorCalibration`'s report.
    """
    if latent_dim is None:
        latent_dim = getattr(generator, "latent_dim", getattr(generator, "nz", None))
    if latent_dim is None:
        raise ValueError("held_out_platt: give latent_dim (the generator has no `latent_dim`)")
    device = next((p.device for p in generator.parameters()), torch.device("cpu"))
    images, labels = held_out_splits(generator, held_out, n, seed, latent_dim, device, batch_size)[
        "calib"
    ]
    d = torch.cat([logit(c).reshape(-1) for c in images.split(batch_size)])
    a, b = fit_logistic_scale(d, labels)
    return {
        "logit_scale": a,
        "logit_bias": b,
        "log_loss": log_loss(d, labels),
        "log_loss_scaled": log_loss(a * d + b, labels),
        "accuracy": accuracy(d, labels),
        "n": int(n),
    }
