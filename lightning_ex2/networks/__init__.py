"""Neural networks that targets and modules are built from: GAN generators/discriminators.

* :mod:`~lightning_ex2.networks.architectures` — torch-mimicry-compatible 32×32
  DCGAN/SNGAN (same ``state_dict`` keys), the paper's MNIST GAN, the 8×8 digits MLPs and
  the Fashion-MNIST DCGAN;
* :func:`load_gan_checkpoint` — mimicry checkpoints, plain state dicts, Lightning checkpoints.

The latent-space target built from them is :class:`~lightning_ex2.targets.GANLatentTarget`;
their trainer is :class:`~lightning_ex2.modules.GANModule`. This package imports only torch
(and :mod:`lightning_ex2.weights` paths): targets and modules import it, never the reverse.
"""

from lightning_ex2.networks import architectures
from lightning_ex2.networks.architectures import *  # noqa: F403  (its __all__)
from lightning_ex2.networks.checkpoints import load_gan_checkpoint

__all__ = [*architectures.__all__, "load_gan_checkpoint"]
