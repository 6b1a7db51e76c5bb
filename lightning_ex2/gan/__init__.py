"""GAN latent spaces as energy-based targets, and everything around them.

* torch only (imported here): the networks (:mod:`.networks`: torch-mimicry-compatible 32×32
  DCGAN/SNGAN, the paper's MNIST GAN, the 8×8 digits MLPs, the Fashion-MNIST DCGAN), their
  checkpoints (:func:`load_gan_checkpoint`), the latent target :class:`GANLatentTarget`, its
  calibration (:mod:`.platt`) and hardness diagnostics (:mod:`.hardness`), the classifiers
  and feature networks of the image metrics (:mod:`.classifier`, :mod:`.features`,
  :mod:`.scores`);
* Lightning (imported on first use): the GAN trainer :class:`GANModule`, the discriminator
  calibration :class:`DiscriminatorCalibration`, the image DataModules (:mod:`.data`) and
  the callbacks :class:`ImageQualityMetrics` and :class:`SamplingTrajectory`.

It imports the core and :mod:`lightning_ex2.lightning`; nothing imports it back.
"""

from __future__ import annotations

from lightning_ex2._lazy import lazy_getattr
from lightning_ex2.gan import networks
from lightning_ex2.gan.checkpoints import load_gan_checkpoint
from lightning_ex2.gan.networks import *  # noqa: F403  (its __all__)
from lightning_ex2.gan.target import GANLatentTarget

#: names imported on first use (they need Lightning): name -> submodule
_LAZY = {
    "ClassifierFeatures": "classifier",
    "ClassifierLogits": "classifier",
    "FeatureCNN": "classifier",
    "GANModule": "training",
    "LOSSES": "training",
    "DiscriminatorCalibration": "calibration",
    "ImageDataModule": "data",
    "ImageFolderDataModule": "data",
    "CIFAR10DataModule": "data",
    "MNISTDataModule": "data",
    "DigitsDataModule": "data",
    "FashionMNISTDataModule": "data",
    "ImageQualityMetrics": "callbacks",
    "SamplingTrajectory": "callbacks",
    "TorchScriptInception": "callbacks",
    "load_real_images": "callbacks",
}

__all__ = [*networks.__all__, "GANLatentTarget", "load_gan_checkpoint", *sorted(_LAZY)]

__getattr__ = lazy_getattr(__name__, _LAZY)
