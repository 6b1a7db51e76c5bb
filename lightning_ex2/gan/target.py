"""A GAN seen as an energy-based model in its latent space (DDLS).

Che et al. 2020 ("Your GAN is secretly an energy-based model", DDLS) and
Samsonov et al. 2022 (arXiv 2111.02702, Sec. 5) sample the latent density

    log pi(z) = log N(z; 0, s^2 I) + beta (a d(G(z)) + b) / T,

``beta`` the logit scale (inverse temperature of the tilt: 1 is the DDLS target, 0 the prior;
``beta="platt"`` takes the Platt scale of a held-out logistic fit of the discriminator, see
:func:`~lightning_ex2.gan.platt.held_out_platt`), ``d`` the discriminator's logit (``a``, ``b`` its logistic calibration, 1 and 0 unless the
discriminator checkpoint was written by :class:`~lightning_ex2.gan.DiscriminatorCalibration`), ``G`` the generator, ``s`` the prior scale and ``T``
a temperature; pushing pi through ``G`` corrects the generator's distribution toward
the data. :class:`GANLatentTarget` is a target like any other (``dim``, ``log_prob``),
so every kernel and LightningModule of this package samples it.

YAML (``class_path`` as for any target)::

    target:
      class_path: lightning_ex2.gan.GANLatentTarget
      init_args:
        generator: {class_path: lightning_ex2.gan.SNGANGenerator32}
        discriminator: {class_path: lightning_ex2.gan.SNGANDiscriminator32}
        generator_ckpt: /path/to/netG.pth
        discriminator_ckpt: /path/to/netD.pth

Example:
    >>> import torch
    >>> from lightning_ex2.gan import DigitsDiscriminator, DigitsGenerator
    >>> target = GANLatentTarget(DigitsGenerator(latent_dim=2), DigitsDiscriminator())
    >>> z = torch.randn(5, 10, 2, requires_grad=True)
    >>> target.log_prob(z).shape, target.decode(z).shape
    (torch.Size([5, 10]), torch.Size([5, 10, 1, 8, 8]))
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lightning_ex2.gan.checkpoints import load_gan_checkpoint
from lightning_ex2.targets.base import LOG_2PI, TargetBase, check_int, check_positive

__all__ = ["GANLatentTarget"]


class GANLatentTarget(TargetBase):
    """``log pi(z) = log N(z; 0, prior_scale^2 I) + beta (a d(G(z)) + b) / temperature`` on ``z [..., D]``.

    Args:
        generator: ``z [B, D] -> images [B, C, H, W]`` in ``[-1, 1]``.
        discriminator: ``images -> logits [B, 1]`` (or ``[B]``).
        latent_dim: ``D``; default ``generator.latent_dim`` (or mimicry's ``generator.nz``).
        prior_scale: standard deviation ``s`` of the Gaussian prior on ``z``.
        temperature: ``T``, divides the discriminator logit.
        batch_size: largest number of latents pushed through G and D at once;
            ``log_prob`` evaluates ``[..., D]`` in chunks of this size along the
            flattened leading dims (i-SIR calls it on ``[chains * particles, D]``).
        generator_ckpt, discriminator_ckpt: checkpoint files loaded into the networks
            (see :func:`~lightning_ex2.gan.load_gan_checkpoint`).
        logit_scale, logit_bias: the calibration ``a``, ``b`` of the logit; default: the
            ``logit_scale``/``logit_bias`` stored in ``discriminator_ckpt`` by
            :class:`~lightning_ex2.gan.DiscriminatorCalibration` (``lightning-ex2 fit
            --config configs/gan/<data>_calibrate.yaml``), else 1 and 0. ``b`` only shifts
            ``log pi`` by a constant; it makes ``sigmoid(discriminator_logit)`` a probability.
        beta: the logit scale (inverse temperature) of the tilt, ``>= 0``: a number, or
            ``"platt"``: the Platt scale ``a'`` of a logistic fit ``sigmoid(a' l + b')`` of the
            calibrated logit ``l = a d + b`` on a held-out split of ``calibration_data`` (real
            images) and as many fresh fakes (the calibration split of
            :class:`~lightning_ex2.gan.DiscriminatorCalibration`, no retraining), rounded
            to 4 decimals. The number used is ``self.beta``; ``self.beta_rule`` says how it
            was set. Both are settings a checkpoint records and a resume compares.
        calibration_data: an image DataModule with ``real_images(n)`` (e.g.
            ``FashionMNISTDataModule(split="test")``); needed by ``beta="platt"`` only.
        n_calibration: real images (and as many fakes) of that held-out split.
        calibration_seed: seeds the held-out fakes.
        trust_checkpoint: unpickle checkpoint files that need more than tensors and
            plain values (they can run any code they hold: only files you trust);
            without it such a file is refused in one line.

    Both networks are frozen (``requires_grad_(False)``) and stay in eval mode whatever
    ``train()`` is called with, so BatchNorm uses its running statistics, spectral norm
    runs no power iteration and ``log_prob`` of a point never depends on the other
    points of its batch. ``log_prob`` is differentiable in ``z``. There is no exact
    ``sample`` (``has_sampler`` is False); :meth:`prior_sample` draws from the prior,
    i.e. the plain generator's latents, the "no MCMC" baseline.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        latent_dim: int | None = None,
        prior_scale: float = 1.0,
        temperature: float = 1.0,
        batch_size: int = 4096,
        generator_ckpt: str | None = None,
        discriminator_ckpt: str | None = None,
        logit_scale: float | None = None,
        logit_bias: float | None = None,
        beta: float | str = 1.0,
        calibration_data: Any = None,
        n_calibration: int = 2000,
        calibration_seed: int = 0,
        trust_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        cls = type(self).__name__
        if latent_dim is None:
            latent_dim = getattr(generator, "latent_dim", getattr(generator, "nz", None))
        if latent_dim is None:
            raise ValueError(
                f"{cls}: `latent_dim` not given and {type(generator).__name__} has no "
                "`latent_dim` (or `nz`) attribute"
            )
        self.dim = check_int(latent_dim, "latent_dim", cls, 1)
        self.prior_scale = check_positive(prior_scale, "prior_scale", cls)
        self.temperature = check_positive(temperature, "temperature", cls)
        self.batch_size = check_int(batch_size, "batch_size", cls, 1)
        if generator_ckpt is not None:
            load_gan_checkpoint(generator, generator_ckpt, None, trust_checkpoint)
        stored: dict[str, float] = {}
        if discriminator_ckpt is not None:
            load_gan_checkpoint(discriminator, discriminator_ckpt, None, trust_checkpoint)
            stored = read_calibration(discriminator_ckpt, trust_checkpoint)
        scale = stored.get("logit_scale", 1.0) if logit_scale is None else logit_scale
        bias = stored.get("logit_bias", 0.0) if logit_bias is None else logit_bias
        self.logit_scale = check_positive(float(scale), "logit_scale", cls)
        self.logit_bias = float(bias)
        if not math.isfinite(self.logit_bias):
            raise ValueError(f"{cls}: logit_bias must be finite, got {bias!r}")
        self.generator = generator.requires_grad_(False)
        self.discriminator = discriminator.requires_grad_(False)
        self.train(False)
        self.beta_rule, self.beta = self._resolve_beta(
            beta, calibration_data, n_calibration, calibration_seed
        )

    def _resolve_beta(self, beta: float | str, data: Any, n: int, seed: int) -> tuple[str, float]:
        """``(rule, value)`` of the ``beta`` argument (see the class docstring)."""
        cls = type(self).__name__
        if isinstance(beta, str) and beta.strip().lower() == "platt":
            if data is None or not callable(getattr(data, "real_images", None)):
                raise ValueError(
                    f"{cls}: beta='platt' needs calibration_data, an image DataModule with "
                    "real_images(n) (e.g. lightning_ex2.gan.FashionMNISTDataModule, split test)"
                )
            from lightning_ex2.gan.platt import held_out_platt

            n = check_int(n, "n_calibration", cls, 2)
            fit = held_out_platt(self.generator, self._image_logit, data, n, seed, self.dim)
            return "platt", round(fit["logit_scale"], 4)
        if isinstance(beta, str):
            try:
                beta = float(beta)
            except ValueError:
                raise ValueError(
                    f"{cls}: beta must be a number >= 0 or 'platt', got {beta!r}"
                ) from None
        if isinstance(beta, bool) or not isinstance(beta, int | float):
            raise ValueError(f"{cls}: beta must be a number >= 0 or 'platt', got {beta!r}")
        if not (math.isfinite(beta) and beta >= 0):
            raise ValueError(f"{cls}: beta must be a finite number >= 0, got {beta!r}")
        return "fixed", float(beta)

    def _image_logit(self, images: Tensor) -> Tensor:
        """The calibrated logit ``a d(x) + b`` of images ``[B, C, H, W]``: ``[B]``."""
        d = self.discriminator(images).reshape(-1)
        return self.logit_scale * d + self.logit_bias

    def train(self, mode: bool = True) -> GANLatentTarget:
        """Sets ``self.training``; the generator and discriminator always stay in eval mode."""
        super().train(mode)
        self.generator.train(False)
        self.discriminator.train(False)
        return self

    # ------------------------------------------------------------------ helpers
    def _net_dtype(self, fallback: torch.dtype) -> torch.dtype:
        param = next(self.generator.parameters(), None)
        return fallback if param is None else param.dtype

    def _chunks(self, z: Tensor) -> tuple[torch.Size, list[Tensor]]:
        if z.shape[-1] != self.dim:
            raise ValueError(
                f"{type(self).__name__}: expected z [..., {self.dim}], got {tuple(z.shape)}"
            )
        lead = z.shape[:-1]
        flat = z.reshape(-1, self.dim).to(self._net_dtype(z.dtype))
        return lead, list(flat.split(self.batch_size))

    # ---------------------------------------------------------------- densities
    def prior_log_prob(self, z: Tensor) -> Tensor:
        """``log N(z; 0, prior_scale^2 I)``: ``[..., D] -> [...]``."""
        s = self.prior_scale
        return -0.5 * (z / s).square().sum(-1) - self.dim * (math.log(s) + 0.5 * LOG_2PI)

    def discriminator_logit(self, z: Tensor) -> Tensor:
        """Calibrated logit ``a d(G(z)) + b``: ``[..., D] -> [...]`` in ``z``'s dtype, chunked,
        differentiable in ``z`` (``a = 1, b = 0`` for an uncalibrated discriminator)."""
        lead, chunks = self._chunks(z)
        if not chunks:
            return z.new_zeros(lead)
        logits = [self.discriminator(self.generator(c)).reshape(-1) for c in chunks]
        d = torch.cat(logits).to(z.dtype).reshape(lead)
        if self.logit_scale == 1.0 and self.logit_bias == 0.0:
            return d
        return self.logit_scale * d + self.logit_bias

    def tilt(self, z: Tensor) -> Tensor:
        """``beta (a d(G(z)) + b) / T = log pi(z) - log N(z; 0, s^2 I)``: ``[..., D] -> [...]``."""
        if self.beta == 0.0:
            return z.new_zeros(z.shape[:-1])
        return self.beta * self.discriminator_logit(z) / self.temperature

    def log_prob(self, z: Tensor) -> Tensor:
        """``log N(z; 0, s^2 I) + beta (a d(G(z)) + b) / T``: ``[..., D] -> [...]``, differentiable in ``z``."""
        return self.prior_log_prob(z) + self.tilt(z)

    # ------------------------------------------------------------------ images
    @torch.no_grad()
    def decode(self, z: Tensor) -> Tensor:
        """Images ``G(z)``: ``[..., D] -> [..., C, H, W]`` in ``[-1, 1]``, chunked, no grad."""
        lead, chunks = self._chunks(z.detach())
        if not chunks:
            shape = getattr(self.generator, "image_shape", None)
            if shape is None:
                raise ValueError("decode: empty z and the generator has no `image_shape`")
            return z.new_zeros((*lead, *shape))
        images = torch.cat([self.generator(c) for c in chunks])
        return images.reshape(*lead, *images.shape[1:])

    def prior_sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` latents from the prior ``N(0, prior_scale^2 I)``: ``[n, D]`` (the "none" baseline)."""
        param = next(self.generator.parameters(), None)
        device = param.device if param is not None else None
        dtype = torch.get_default_dtype()
        if generator is not None:
            device = generator.device
        z = torch.randn(n, self.dim, generator=generator, device=device, dtype=dtype)
        return self.prior_scale * z

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, prior_scale={self.prior_scale}, temperature={self.temperature}, "
            f"batch_size={self.batch_size}, logit_scale={self.logit_scale:.4g}, "
            f"logit_bias={self.logit_bias:.4g}, beta={self.beta:.4g} ({self.beta_rule})"
        )


def read_calibration(path: str, trust_checkpoint: bool = False) -> dict[str, float]:
    """``logit_scale``/``logit_bias`` stored in a discriminator checkpoint (``{}`` if none)."""
    from lightning_ex2.gan.checkpoints import _read

    checkpoint = _read(Path(path).expanduser(), trust_checkpoint)
    if not isinstance(checkpoint, dict):
        return {}
    return {k: float(checkpoint[k]) for k in ("logit_scale", "logit_bias") if k in checkpoint}
