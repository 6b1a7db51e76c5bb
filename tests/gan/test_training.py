"""The GAN LightningModule: training with each loss, outputs the latent target loads, image grids.

The rest of the GAN tests by layer: ``targets/test_gan.py`` (the latent target),
``networks/test_checkpoints.py`` (architectures, checkpoints), ``datamodules/test_images.py``
(image data), ``cli/test_gan_configs.py`` (configs)."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from lightning_ex2.gan import (
    DigitsDataModule,
    DigitsDiscriminator,
    DigitsGenerator,
    GANLatentTarget,
)
from lightning_ex2.gan.image_grid import image_grid
from lightning_ex2.gan.training import LOSSES, GANModule


# ---------------------------------------------------------------------- training
def _trainer(tmp_path, **kwargs) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu", default_root_dir=tmp_path, enable_progress_bar=False,
        enable_model_summary=False, **kwargs,
    )  # fmt: skip


@pytest.mark.parametrize("loss", LOSSES)
def test_gan_module_trains_each_loss(tmp_path, loss):
    g, d = DigitsGenerator(latent_dim=2, hidden=16), DigitsDiscriminator(hidden=16)
    before = [p.detach().clone() for p in (*g.parameters(), *d.parameters())]
    model = GANModule(g, d, loss=loss, n_critic=2, weight_clip=0.05, n_grid_images=4)
    data = DigitsDataModule(batch_size=32, n_images=200)
    trainer = _trainer(tmp_path, max_epochs=1, limit_train_batches=4, logger=False)
    trainer.fit(model, data)
    after = [*g.parameters(), *d.parameters()]
    # every weight moved (D's last bias has zero gradient under hinge/WGAN losses)
    assert all(not torch.equal(a, b) for a, b in zip(after, before) if a.ndim > 1)
    metrics = trainer.logged_metrics
    assert torch.isfinite(metrics["loss/d"]) and torch.isfinite(metrics["loss/g"])
    if loss == "wgan":
        assert max(p.abs().max() for p in d.parameters()) <= 0.05 + 1e-7
    assert model.betas == ((0.0, 0.9) if loss in ("hinge", "wgan-gp") else (0.5, 0.999))


def test_gan_module_outputs_load_into_target(tmp_path):
    model = GANModule(
        DigitsGenerator(latent_dim=2, hidden=16), DigitsDiscriminator(hidden=16),
        n_grid_images=9, image_every_n_epochs=1, export_dir=str(tmp_path / "export"),
    )  # fmt: skip
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, save_top_k=0)
    logger = pl.loggers.TensorBoardLogger(tmp_path, name="gan", version="v")
    trainer = _trainer(
        tmp_path, max_epochs=1, limit_train_batches=3, callbacks=[ckpt], logger=logger
    )
    trainer.fit(model, DigitsDataModule(batch_size=16, n_images=100, val_fraction=0.2))
    assert "val/d_real" in trainer.logged_metrics
    z = torch.randn(3, 4, 2)
    expected = GANLatentTarget(model.generator, model.discriminator).log_prob(z)
    for g_path, d_path in (
        (tmp_path / "ckpt" / "last.ckpt",) * 2,  # the Lightning checkpoint itself
        (tmp_path / "export" / "generator.pt", tmp_path / "export" / "discriminator.pt"),
    ):
        target = GANLatentTarget(
            DigitsGenerator(latent_dim=2, hidden=16), DigitsDiscriminator(hidden=16),
            generator_ckpt=str(g_path), discriminator_ckpt=str(d_path),
        )  # fmt: skip
        torch.testing.assert_close(target.log_prob(z), expected)
    events = list((tmp_path / "gan" / "v").glob("events.out.tfevents.*"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[0]), size_guidance={"images": 0})
    acc.Reload()
    assert "samples" in acc.Tags()["images"]


def test_image_grid():
    grid = image_grid(-torch.ones(5, 1, 4, 4), nrow=3, padding=1)
    assert grid.shape == (1, 2 * 5 + 1, 3 * 5 + 1)
    assert grid[0, 1, 1] == 0 and grid[0, 0, 0] == 1  # image pixel, padding
    assert grid[0, 6:10, 11:15].eq(1).all()  # the empty last cell
