"""The image target of a GAN-latent sampler, for the callbacks that decode its chains."""

from __future__ import annotations

import pytorch_lightning as pl

from lightning_ex2.modules.sampler import MCMCSampler
from lightning_ex2.protocols import ImageTarget


def image_target(pl_module: pl.LightningModule, who: str) -> ImageTarget:
    """``pl_module.target`` when it decodes latents to images (``decode(z)``).

    Raises:
        ValueError: naming ``who`` (the callback) when the module has no such target.
    """
    target = pl_module.target if isinstance(pl_module, MCMCSampler) else None
    if not isinstance(target, ImageTarget):
        raise ValueError(
            f"{who}: pl_module.target has no decode(z) -> images; it needs a GAN latent "
            "target (e.g. GANLatentTarget)"
        )
    return target
