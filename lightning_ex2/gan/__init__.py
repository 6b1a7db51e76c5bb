"""Compatibility namespace: the GAN pieces now live in their layers.

Nothing is implemented here. The names below are re-exported from where they live, so that
configs (``class_path: lightning_ex2.gan.GANLatentTarget``, ``lightning_ex2.gan.fashion.
FashionFeatures``, ...), scripts and checkpoints written before the move keep working;
new code and configs use the new paths:

==============================================  =============================================
old                                             new
==============================================  =============================================
``lightning_ex2.gan.GANLatentTarget``           :class:`lightning_ex2.targets.GANLatentTarget`
``lightning_ex2.gan.diagnostics``               :mod:`lightning_ex2.targets.gan_diagnostics`
``lightning_ex2.gan.GANModule``, ``LOSSES``     :class:`lightning_ex2.modules.GANModule`
``lightning_ex2.gan.DiscriminatorCalibration``  :class:`lightning_ex2.modules.DiscriminatorCalibration`
``lightning_ex2.gan.<Generator/Discriminator>`` :mod:`lightning_ex2.networks` (same names)
``lightning_ex2.gan.load_gan_checkpoint``       :func:`lightning_ex2.networks.load_gan_checkpoint`
``lightning_ex2.gan.image_grid``                :func:`lightning_ex2.image_grid.image_grid`
``DigitsClassifier``, ``FashionClassifier``     :mod:`lightning_ex2.metrics.classifier` (one
                                                :class:`~lightning_ex2.metrics.classifier.FeatureCNN`)
``FIDFeatures``, ``FashionFeatures``            :class:`lightning_ex2.metrics.ClassifierFeatures`
``ISLogits``, ``FashionLogits``                 :class:`lightning_ex2.metrics.ClassifierLogits`
``lightning_ex2/gan/weights/*.pt``              ``lightning_ex2/weights/*.pt`` (same bytes)
==============================================  =============================================

Checkpoints name the classes they were written for by module path; the old paths are mapped
to the new ones by :data:`lightning_ex2.moved.MOVED_CLASS_PATHS`, and old weights paths by
:func:`lightning_ex2.moved.moved_weights_path`.
"""

from lightning_ex2 import networks
from lightning_ex2.gan.classifier import (
    DigitsClassifier,
    FIDFeatures,
    ISLogits,
    load_digits_classifier,
    train_digits_classifier,
)
from lightning_ex2.gan.fashion import FashionClassifier, load_fashion_classifier
from lightning_ex2.image_grid import image_grid
from lightning_ex2.modules.calibration import DiscriminatorCalibration
from lightning_ex2.modules.gan import LOSSES, GANModule
from lightning_ex2.networks import *  # noqa: F403  (the generators/discriminators)
from lightning_ex2.targets.gan import GANLatentTarget

__all__ = [
    *networks.__all__,
    "LOSSES",
    "DigitsClassifier",
    "DiscriminatorCalibration",
    "FIDFeatures",
    "FashionClassifier",
    "GANLatentTarget",
    "GANModule",
    "ISLogits",
    "image_grid",
    "load_digits_classifier",
    "load_fashion_classifier",
    "train_digits_classifier",
]
