"""GANs as energy-based models in latent space (Samsonov et al. 2022, arXiv 2111.02702, Sec. 5).

* :mod:`~lightning_ex2.gan.architectures` — torch-mimicry's 32×32 DCGAN/SNGAN (same
  ``state_dict`` keys), the paper's MNIST GAN, and small 8×8 digits GANs for CPU demos;
* :func:`load_gan_checkpoint` — mimicry checkpoints, plain state dicts, Lightning checkpoints;
* :class:`GANLatentTarget` — ``log pi(z) = log N(z; 0, I) + d(G(z))``, a sampling target;
* :class:`DiscriminatorCalibration` — trains a discriminator alone against its frozen generator
  and fits a logistic scale, so ``d`` estimates ``log p_data / p_G``
  (``lightning-ex2 fit --config configs/gan/<data>_calibrate.yaml``);
* :mod:`~lightning_ex2.gan.diagnostics` — tilt std, importance ESS, implied i-SIR acceptance,
  pilot MALA step of a GAN latent target;
* :class:`GANModule` — trains those GANs (``lightning-ex2 fit --config configs/gan/...``);
* :func:`image_grid` — image grids without torchvision;
* :class:`DigitsClassifier` — the small classifier whose features/logits give FID/IS
  on scikit-learn's 8×8 digits (weights shipped, ``scripts/train_digits_classifier.py``);
* :mod:`~lightning_ex2.gan.fashion` — a CPU-sized DCGAN (64-D latent) for Fashion-MNIST and
  :class:`FashionClassifier`, its FID/IS network (``scripts/train_fashion_classifier.py``).
"""

from lightning_ex2.gan.architectures import (
    DCGANDiscriminator32,
    DCGANGenerator32,
    DigitsDiscriminator,
    DigitsGenerator,
    MNISTDiscriminator,
    MNISTGenerator,
    SNGANDiscriminator32,
    SNGANGenerator32,
)
from lightning_ex2.gan.calibration import DiscriminatorCalibration
from lightning_ex2.gan.checkpoints import load_gan_checkpoint
from lightning_ex2.gan.classifier import (
    DigitsClassifier,
    FIDFeatures,
    ISLogits,
    load_digits_classifier,
    train_digits_classifier,
)
from lightning_ex2.gan.fashion import (
    FashionClassifier,
    FashionDiscriminator,
    FashionGenerator,
    load_fashion_classifier,
)
from lightning_ex2.gan.grid import image_grid
from lightning_ex2.gan.module import LOSSES, GANModule
from lightning_ex2.gan.target import GANLatentTarget

__all__ = [
    "LOSSES",
    "DCGANDiscriminator32",
    "DCGANGenerator32",
    "DigitsClassifier",
    "DigitsDiscriminator",
    "DigitsGenerator",
    "DiscriminatorCalibration",
    "FIDFeatures",
    "FashionClassifier",
    "FashionDiscriminator",
    "FashionGenerator",
    "GANLatentTarget",
    "GANModule",
    "ISLogits",
    "MNISTDiscriminator",
    "MNISTGenerator",
    "SNGANDiscriminator32",
    "SNGANGenerator32",
    "image_grid",
    "load_digits_classifier",
    "load_fashion_classifier",
    "load_gan_checkpoint",
    "train_digits_classifier",
]
