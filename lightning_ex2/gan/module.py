"""Compatibility alias of :mod:`lightning_ex2.modules.gan`."""

from lightning_ex2.modules.gan import (
    LOSSES,
    GANModule,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
)

__all__ = ["LOSSES", "GANModule", "discriminator_loss", "generator_loss", "gradient_penalty"]
