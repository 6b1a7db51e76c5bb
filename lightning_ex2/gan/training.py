"""``GANModule``: train the GANs whose latent spaces the samplers explore.

Manual optimization with two Adam optimizers (Lightning's GAN template): every
training step takes one discriminator step on a real batch and, every
``n_critic``-th step, one generator step. Losses (``D`` logits ``d``):

* ``"ns"`` — non-saturating (Goodfellow et al. 2014): ``D: softplus(-d_real) + softplus(d_fake)``,
  ``G: softplus(-d_fake)``; DCGAN and the paper's vanilla MNIST GAN.
* ``"hinge"`` (Miyato et al. 2018): ``D: relu(1 - d_real) + relu(1 + d_fake)``, ``G: -d_fake``; SNGAN.
* ``"wgan-gp"`` (Gulrajani et al. 2017): ``D: d_fake - d_real + gp_weight (|grad D(x_hat)| - 1)^2``,
  ``G: -d_fake``.
* ``"wgan"`` (Arjovsky et al. 2017): ``D: d_fake - d_real`` with the critic's weights
  clipped to ``[-weight_clip, weight_clip]`` after each step (the paper's MNIST WGAN).

Adam betas default to mimicry's: ``(0.0, 0.9)`` for hinge/WGAN-GP, ``(0.5, 0.999)``
otherwise. Logs ``loss/d`` and ``loss/g``, and every ``image_every_n_epochs`` epochs a
grid of ``G`` on fixed latents (``samples``) to TensorBoard.

Note: with two optimizers Lightning's ``global_step`` counts both optimizers' steps;
the configs bound training with ``max_epochs``.

Run it with::

    lightning-ex2 fit --config configs/gan/digits_gan_train.yaml

and sample its latent space with ``GANLatentTarget(generator_ckpt=..., discriminator_ckpt=...)``
pointing at the Lightning checkpoint itself, or at the ``generator.pt``/``discriminator.pt``
that :meth:`GANModule.save_generator_discriminator` (or ``export_dir``) writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import rank_zero_only
from torch import Tensor, nn

from lightning_ex2.gan.image_grid import image_grid
from lightning_ex2.lightning.compat import SafeLoadingModule
from lightning_ex2.output.files import save_torch
from lightning_ex2.validation import check_int

__all__ = [
    "LOSSES",
    "GANModule",
    "check_loss",
    "clip_weights",
    "default_betas",
    "discriminator_loss",
    "generator_latent_dim",
    "generator_loss",
]

#: Valid values of ``GANModule(loss=...)``.
LOSSES = ("ns", "hinge", "wgan", "wgan-gp")


def check_loss(loss: str, weight_clip: float | None) -> None:
    """Raise ``ValueError`` (naming ``model.loss``/``model.weight_clip``) unless ``loss`` is
    one of :data:`LOSSES` and, for ``"wgan"``, ``weight_clip > 0``."""
    if loss not in LOSSES:
        raise ValueError(f"model.loss must be one of {LOSSES}, got {loss!r}")
    if loss == "wgan" and not (weight_clip and weight_clip > 0):
        raise ValueError("model.weight_clip: loss 'wgan' needs weight_clip > 0 (e.g. 0.01)")


def default_betas(loss: str) -> tuple[float, float]:
    """mimicry's Adam betas: ``(0.0, 0.9)`` for hinge/WGAN-GP, ``(0.5, 0.999)`` otherwise."""
    return (0.0, 0.9) if loss in ("hinge", "wgan-gp") else (0.5, 0.999)


def generator_latent_dim(generator: nn.Module, latent_dim: int | None) -> int | None:
    """``latent_dim`` if given, else ``generator.latent_dim`` (or mimicry's ``generator.nz``)."""
    if latent_dim is not None:
        return latent_dim
    return getattr(generator, "latent_dim", getattr(generator, "nz", None))


@torch.no_grad()
def clip_weights(module: nn.Module, clip: float) -> None:
    """Clamp every parameter of ``module`` to ``[-clip, clip]`` in place (the WGAN critic)."""
    for p in module.parameters():
        p.clamp_(-clip, clip)


def discriminator_loss(loss: str, d_real: Tensor, d_fake: Tensor) -> Tensor:
    """Discriminator loss (without gradient penalty) from logits ``[B]``; see module docstring."""
    if loss == "ns":
        return F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    if loss == "hinge":
        return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    return d_fake.mean() - d_real.mean()  # wgan, wgan-gp


def generator_loss(loss: str, d_fake: Tensor) -> Tensor:
    """Generator loss from the logits ``[B]`` of fakes; see module docstring."""
    if loss == "ns":
        return F.softplus(-d_fake).mean()
    return -d_fake.mean()  # hinge, wgan, wgan-gp


def gradient_penalty(discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP penalty ``mean (|grad_x D(x_hat)|_2 - 1)^2`` on random interpolates."""
    eps = torch.rand(real.shape[0], *([1] * (real.ndim - 1)), device=real.device, dtype=real.dtype)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).square().mean()


class GANModule(SafeLoadingModule):
    """A generator and a discriminator trained adversarially on batches of real images.

    Args:
        generator: ``z [B, latent_dim] -> images [B, C, H, W]`` in ``[-1, 1]``.
        discriminator: ``images -> logits [B, 1]``.
        loss: one of :data:`LOSSES`.
        lr_g, lr_d: Adam learning rates of the generator and the discriminator.
        betas: Adam betas; default by loss (see module docstring).
        n_critic: discriminator steps per generator step.
        gp_weight: gradient-penalty weight of ``"wgan-gp"``.
        weight_clip: clip range of ``"wgan"`` (required there, unused otherwise).
        latent_dim: default ``generator.latent_dim`` (or ``generator.nz``).
        n_grid_images: images in the logged grid (fixed latents, ``seed``).
        image_every_n_epochs: log the grid every so many epochs (0: never).
        export_dir: if set, ``generator.pt``/``discriminator.pt`` are written there
            at the end of ``fit``.
        seed: seed of the fixed grid latents.

    Batches are image tensors ``[B, C, H, W]`` in ``[-1, 1]`` (or tuples/lists whose
    first element is), e.g. from :class:`~lightning_ex2.gan.DigitsDataModule`.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: str = "ns",
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] | None = None,
        n_critic: int = 1,
        gp_weight: float = 10.0,
        weight_clip: float | None = None,
        latent_dim: int | None = None,
        n_grid_images: int = 64,
        image_every_n_epochs: int = 1,
        export_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_loss(loss, weight_clip)
        if not (lr_g > 0 and lr_d > 0):
            raise ValueError(f"model.lr_g and model.lr_d must be > 0, got {lr_g}, {lr_d}")
        check_int(n_critic, "model.n_critic", "GANModule", 1)
        latent_dim = generator_latent_dim(generator, latent_dim)
        if not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(
                "model.latent_dim: give it, or use a generator with a `latent_dim` attribute"
            )
        self.save_hyperparameters(ignore=["generator", "discriminator"])
        self.automatic_optimization = False
        self.generator, self.discriminator = generator, discriminator
        self.loss, self.n_critic, self.latent_dim = loss, n_critic, latent_dim
        self.lr_g, self.lr_d = float(lr_g), float(lr_d)
        self.betas = default_betas(loss) if betas is None else tuple(betas)
        self.gp_weight, self.weight_clip = float(gp_weight), weight_clip
        self.image_every_n_epochs, self.export_dir = image_every_n_epochs, export_dir
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("fixed_z", torch.randn(n_grid_images, latent_dim, generator=g))

    def forward(self, z: Tensor) -> Tensor:
        """``G(z)``: ``[B, latent_dim] -> [B, C, H, W]``."""
        return self.generator(z)

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=self.lr_g, betas=self.betas)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.lr_d, betas=self.betas)
        return [opt_g, opt_d]

    def _latents(self, n: int) -> Tensor:
        return torch.randn(n, self.latent_dim, device=self.device, dtype=self.fixed_z.dtype)

    def _logits(self, x: Tensor) -> Tensor:
        return self.discriminator(x).reshape(-1)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = batch[0] if isinstance(batch, list | tuple) else batch
        n = real.shape[0]
        opt_g, opt_d = self.optimizers()

        # discriminator step
        self.toggle_optimizer(opt_d)
        with torch.no_grad():
            fake = self.generator(self._latents(n))
        loss_d = discriminator_loss(self.loss, self._logits(real), self._logits(fake))
        if self.loss == "wgan-gp":
            gp = gradient_penalty(self.discriminator, real, fake)
            self.log("loss/gp", gp, on_step=True, batch_size=n)
            loss_d = loss_d + self.gp_weight * gp
        opt_d.zero_grad()
        self.manual_backward(loss_d)
        opt_d.step()
        if self.loss == "wgan":
            clip_weights(self.discriminator, self.weight_clip)
        self.untoggle_optimizer(opt_d)
        self.log("loss/d", loss_d.detach(), on_step=True, prog_bar=True, batch_size=n)

        # generator step
        if (batch_idx + 1) % self.n_critic == 0:
            self.toggle_optimizer(opt_g)
            loss_g = generator_loss(self.loss, self._logits(self.generator(self._latents(n))))
            opt_g.zero_grad()
            self.manual_backward(loss_g)
            opt_g.step()
            self.untoggle_optimizer(opt_g)
            self.log("loss/g", loss_g.detach(), on_step=True, prog_bar=True, batch_size=n)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """Mean logits of held-out real images and of fakes (``val/d_real``, ``val/d_fake``).

        A gap between ``val/d_real`` and the training reals' logits flags a memorizing
        discriminator, whose energy ``d(G(z))`` is then a poor guide for sampling.
        """
        real = batch[0] if isinstance(batch, list | tuple) else batch
        n = real.shape[0]
        fake = self.generator(self._latents(n))
        self.log("val/d_real", self._logits(real).mean(), batch_size=n)
        self.log("val/d_fake", self._logits(fake).mean(), batch_size=n)

    # ----------------------------------------------------------------- outputs
    @torch.no_grad()
    def sample_images(self, z: Tensor | None = None) -> Tensor:
        """``G(z)`` in eval mode (default ``z``: the fixed grid latents): ``[N, C, H, W]``."""
        z = self.fixed_z if z is None else z.to(self.fixed_z)
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.generator(z)
        finally:
            self.generator.train(was_training)

    @rank_zero_only
    def _log_grid(self) -> None:
        experiment = getattr(self.logger, "experiment", None)
        if experiment is None or not hasattr(experiment, "add_images"):
            return
        grid = image_grid(self.sample_images(), nrow=int(len(self.fixed_z) ** 0.5) or 1)
        experiment.add_images("samples", grid.unsqueeze(0).cpu(), self.current_epoch)

    def on_train_epoch_end(self) -> None:
        every = self.image_every_n_epochs
        if every and (self.current_epoch + 1) % every == 0:
            self._log_grid()

    def save_generator_discriminator(self, directory: str | Path) -> tuple[Path, Path]:
        """Write ``generator.pt`` and ``discriminator.pt`` (mimicry format) under ``directory``.

        Each file is ``{"model_state_dict": ..., "class_path": ...}``, written atomically,
        and loads with :func:`~lightning_ex2.gan.load_gan_checkpoint` or
        ``GANLatentTarget(generator_ckpt=..., discriminator_ckpt=...)``.
        """
        directory = Path(directory)
        paths = []
        for name, net in (("generator", self.generator), ("discriminator", self.discriminator)):
            payload = {
                "model_state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                "class_path": f"{type(net).__module__}.{type(net).__qualname__}",
            }
            paths.append(save_torch(directory / f"{name}.pt", payload))
        return paths[0], paths[1]

    def on_fit_end(self) -> None:
        if self.export_dir is not None and self.trainer.is_global_zero:
            self.save_generator_discriminator(self.export_dir)
