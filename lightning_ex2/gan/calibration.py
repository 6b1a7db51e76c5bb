"""Calibrate a GAN's discriminator before sampling its latent space.

The DDLS energy ``log N(z; 0, I) + d(G(z))`` (Che et al. 2020) is exact only when ``d`` is the
logit of the *optimal* discriminator between the data and ``G``'s distribution,
``d*(x) = log p_data(x) / p_G(x)``. A discriminator at the end of GAN training is not: it lags
the generator it was trained against (and a hinge or WGAN critic is no logit at all). As
discriminator rejection sampling (Azadi et al. 2019) and MH-GAN (Turner et al. 2019) do,
:class:`DiscriminatorCalibration` trains the discriminator alone against the frozen generator,
then fits a logistic scale:

1. **Train** ``D`` with the GAN's own loss (``loss``: ``ns``, ``hinge``, ``wgan``, ``wgan-gp``;
   Adam) on real training images vs fresh ``G(z)``, ``G`` frozen in eval mode.
2. **Early stopping** on a held-out *validation* split: ``n_held_out`` real images of
   ``held_out`` (e.g. the test split) and as many fresh fakes (fixed latents), scored every
   ``val_every_n_steps`` steps by the log-loss of ``sigmoid(d)``; training stops after
   ``patience`` checks without improvement by ``min_delta`` (or at ``trainer.max_steps``) and
   the best weights are restored.
3. **Logistic scale**: ``a, b`` minimising the log-loss of ``sigmoid(a d + b)`` on a second
   held-out *calibration* split (other real images, other fakes), so that ``a d + b`` estimates
   ``log p_data / p_G`` (Platt scaling).
4. Writes ``out_path``: ``{"model_state_dict", "class_path", "logit_scale", "logit_bias",
   "report"}``, a discriminator checkpoint that
   :class:`~lightning_ex2.gan.GANLatentTarget` loads (``discriminator_ckpt``; it reads the
   scale and bias), and ``report`` (also in ``<out_path stem>.json`` and printed): held-out
   log-loss and accuracy of the loaded discriminator and of the calibrated one, each raw and
   with its own fitted scale, on the calibration split.

Run it with::

    lightning-ex2 fit --config configs/gan/fashion_calibrate.yaml

Example:
    >>> import torch
    >>> d = torch.tensor([2.0, 1.0, -1.0, -2.0]); y = torch.tensor([1.0, 1.0, 0.0, 0.0])
    >>> a, b = fit_logistic_scale(d, y)
    >>> bool(a > 1), round(log_loss(d, y), 3), bool(log_loss(a * d + b, y) < log_loss(d, y))
    (True, 0.22, True)
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lightning_ex2.gan.checkpoints import load_gan_checkpoint
from lightning_ex2.gan.platt import (
    accuracy,
    fit_logistic_scale,
    held_out_platt,
    held_out_splits,
    log_loss,
)
from lightning_ex2.gan.training import (
    check_loss,
    clip_weights,
    discriminator_loss,
    generator_latent_dim,
    gradient_penalty,
)
from lightning_ex2.lightning.compat import SafeLoadingModule
from lightning_ex2.output.files import save_json, save_torch
from lightning_ex2.validation import check_int

__all__ = [
    "DiscriminatorCalibration",
    "accuracy",
    "fit_logistic_scale",
    "held_out_platt",
    "held_out_splits",
    "log_loss",
]


class DiscriminatorCalibration(SafeLoadingModule):
    """Train a GAN's discriminator alone against its frozen generator; see the module docstring.

    Args:
        generator, discriminator: the GAN's networks (built with the checkpoints' sizes).
        generator_ckpt, discriminator_ckpt: their weights
            (:func:`~lightning_ex2.gan.load_gan_checkpoint`: mimicry, state dicts, Lightning).
        held_out: an image DataModule with ``real_images(n)`` (e.g. the test split); its first
            ``n_held_out`` images are the validation split, the next ``n_held_out`` the
            calibration split.
        n_held_out: real images (and as many fakes) in each held-out split.
        out_path: where the calibrated discriminator checkpoint goes.
        loss: the GAN's loss, one of :data:`~lightning_ex2.gan.training.LOSSES`.
        lr, betas: Adam's.
        gp_weight: the ``wgan-gp`` gradient penalty's weight; ``weight_clip``: ``wgan``'s clip.
        val_every_n_steps, patience, min_delta: early stopping (see the module docstring).
        latent_dim: default ``generator.latent_dim`` (or ``generator.nz``).
        eval_batch_size: images per forward pass on the held-out splits.
        seed: seeds the training fakes and the held-out fakes (global RNG untouched).
        trust_checkpoint: unpickle ``generator_ckpt``/``discriminator_ckpt`` if they need
            more than tensors and plain values (only files you trust).

    Batches: image tensors ``[B, C, H, W]`` in ``[-1, 1]`` (or tuples whose first element is).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        held_out: Any,
        out_path: str,
        generator_ckpt: str | None = None,
        discriminator_ckpt: str | None = None,
        n_held_out: int = 2000,
        loss: str = "ns",
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        gp_weight: float = 10.0,
        weight_clip: float | None = None,
        val_every_n_steps: int = 100,
        patience: int = 5,
        min_delta: float = 1e-4,
        latent_dim: int | None = None,
        eval_batch_size: int = 1000,
        seed: int = 0,
        trust_checkpoint: bool = False,
    ) -> None:
        super().__init__()
        cls = "DiscriminatorCalibration"
        check_loss(loss, weight_clip)
        if not lr > 0:
            raise ValueError(f"model.lr must be > 0, got {lr!r}")
        if not callable(getattr(held_out, "real_images", None)):
            raise ValueError("model.held_out must be an image DataModule with real_images(n)")
        latent_dim = generator_latent_dim(generator, latent_dim)
        self.latent_dim = check_int(latent_dim, "model.latent_dim", cls, 1)
        self.n_held_out = check_int(n_held_out, "model.n_held_out", cls, 2)
        self.val_every_n_steps = check_int(val_every_n_steps, "model.val_every_n_steps", cls, 1)
        self.patience = check_int(patience, "model.patience", cls, 1)
        self.eval_batch_size = check_int(eval_batch_size, "model.eval_batch_size", cls, 1)
        if generator_ckpt is not None:
            load_gan_checkpoint(generator, generator_ckpt, trust_checkpoint=trust_checkpoint)
        if discriminator_ckpt is not None:
            load_gan_checkpoint(
                discriminator, discriminator_ckpt, trust_checkpoint=trust_checkpoint
            )
        self.save_hyperparameters(ignore=["generator", "discriminator", "held_out"])
        self.generator = generator.requires_grad_(False).eval()
        self.discriminator = discriminator
        self.held_out = held_out
        self.out_path = Path(out_path)
        self.loss, self.lr, self.betas = loss, float(lr), tuple(betas)
        self.gp_weight, self.weight_clip = float(gp_weight), weight_clip
        self.min_delta = float(min_delta)
        self.seed = int(seed)
        self.report: dict[str, Any] = {}
        self._splits: dict[str, tuple[Tensor, Tensor]] = {}
        self._best: tuple[float, int, dict[str, Tensor]] | None = None
        self._bad = 0
        self._gen: torch.Generator | None = None
        self._start = 0.0

    def train(self, mode: bool = True) -> DiscriminatorCalibration:
        super().train(mode)
        self.generator.train(False)  # frozen: BatchNorm on its running statistics
        return self

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.discriminator.parameters(), lr=self.lr, betas=self.betas)

    # ---------------------------------------------------------------- held-out data
    @torch.no_grad()
    def _fakes(self, n: int, generator: torch.Generator) -> Tensor:
        z = torch.randn(n, self.latent_dim, generator=generator, device=self.device)
        return torch.cat([self.generator(c) for c in z.split(self.eval_batch_size)])

    @torch.no_grad()
    def logits(self, images: Tensor) -> Tensor:
        """``d(images)`` ``[n]`` in eval mode, in chunks."""
        was = self.discriminator.training
        self.discriminator.eval()
        try:
            out = [self.discriminator(c).reshape(-1) for c in images.split(self.eval_batch_size)]
        finally:
            self.discriminator.train(was)
        return torch.cat(out)

    def split_logits(self, name: str) -> tuple[Tensor, Tensor]:
        """``(logits, labels)`` of held-out split ``name`` (``"val"`` or ``"calib"``)."""
        images, labels = self._splits[name]
        return self.logits(images), labels

    def _evaluate(self, name: str, strict: bool = False) -> dict[str, float | None]:
        d, y = self.split_logits(name)
        out: dict[str, float | None] = {"log_loss": log_loss(d, y), "accuracy": accuracy(d, y)}
        try:
            a, b = fit_logistic_scale(d, y)
        except ValueError:
            if strict:
                raise
            return {**out, "log_loss_scaled": None, "logit_scale": None, "logit_bias": None}
        return {
            **out,
            "log_loss_scaled": log_loss(a * d + b, y),
            "accuracy_scaled": accuracy(a * d + b, y),
            "logit_scale": a,
            "logit_bias": b,
            "fake_logit_std_scaled": float((a * d[y == 0]).double().std()),
        }

    def on_fit_start(self) -> None:
        self._start = time.perf_counter()
        self._splits = held_out_splits(
            self.generator, self.held_out, self.n_held_out, self.seed, self.latent_dim,
            self.device, self.eval_batch_size,
        )  # fmt: skip
        self._gen = torch.Generator(device=self.device).manual_seed(self.seed)
        self.report = {"before": self._evaluate("calib")}
        self._best, self._bad = None, 0
        self._check(0)

    # ---------------------------------------------------------------- training
    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        real = batch[0] if isinstance(batch, list | tuple) else batch
        assert self._gen is not None
        fake = self._fakes(real.shape[0], self._gen)
        d_real = self.discriminator(real).reshape(-1)
        d_fake = self.discriminator(fake).reshape(-1)
        loss = discriminator_loss(self.loss, d_real, d_fake)
        if self.loss == "wgan-gp":
            loss = loss + self.gp_weight * gradient_penalty(self.discriminator, real, fake)
        self.log("calibrate/loss", loss.detach(), on_step=True, prog_bar=True, batch_size=len(real))
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.loss == "wgan":
            clip_weights(self.discriminator, self.weight_clip)
        step = self.trainer.global_step
        if step % self.val_every_n_steps == 0:
            self._check(step)

    def _check(self, step: int) -> None:
        d, y = self.split_logits("val")
        value = log_loss(d, y)
        if self.trainer.is_global_zero:
            for logger in self.trainer.loggers:
                logger.log_metrics(
                    {"calibrate/val_log_loss": value, "calibrate/val_accuracy": accuracy(d, y)},
                    step=step,
                )
        if self._best is None or value < self._best[0] - self.min_delta:
            state = copy.deepcopy(self.discriminator.state_dict())
            self._best, self._bad = (value, step, state), 0
        else:
            self._bad += 1
            if self._bad >= self.patience:
                self.trainer.should_stop = True

    # ---------------------------------------------------------------- outputs
    def on_fit_end(self) -> None:
        self._check(self.trainer.global_step)  # the last weights count too
        assert self._best is not None
        best_loss, best_step, state = self._best
        self.discriminator.load_state_dict(state)
        after = self._evaluate("calib", strict=True)
        self.report.update(
            after=after,
            best_step=best_step,
            steps=int(self.trainer.global_step),
            stopped_early=bool(self._bad >= self.patience),
            val_log_loss_best=best_loss,
            n_held_out=self.n_held_out,
            loss=self.loss,
            seconds=time.perf_counter() - self._start,
        )
        if not self.trainer.is_global_zero:
            return
        net = self.discriminator
        payload = {
            "model_state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
            "class_path": f"{type(net).__module__}.{type(net).__qualname__}",
            "logit_scale": after["logit_scale"],
            "logit_bias": after["logit_bias"],
            "report": self.report,
        }
        save_torch(self.out_path, payload)
        save_json(self.out_path.with_suffix(".json"), self.report)
        b, a = self.report["before"], after
        print(
            f"calibrated discriminator -> {self.out_path} (best step {best_step} of "
            f"{self.report['steps']}); held-out log-loss {b['log_loss']:.4f} -> "
            f"{a['log_loss']:.4f} (scaled {a['log_loss_scaled']:.4f}), accuracy "
            f"{b['accuracy']:.4f} -> {a['accuracy']:.4f}; logit scale {a['logit_scale']:.4f}",
            flush=True,
        )
