"""Compatibility aliases: the Fashion-MNIST GAN is in :mod:`lightning_ex2.networks`, its
classifier in :mod:`lightning_ex2.metrics.classifier`.

``class_path: lightning_ex2.gan.fashion.FashionFeatures`` (configs written before the move)
is ``class_path: lightning_ex2.metrics.ClassifierFeatures`` with ``init_args: {weights:
fashion}``; likewise ``FashionLogits`` and ``ClassifierLogits``.
"""

from __future__ import annotations

import os
from typing import Any

from lightning_ex2.metrics.classifier import (
    ClassifierFeatures,
    ClassifierLogits,
    FashionClassifier,
    classifier_weights,
    load_feature_cnn,
)
from lightning_ex2.metrics.classifier_training import (
    FASHION_CLASSES,
    as_float_images,
    train_fashion_classifier,
)
from lightning_ex2.metrics.classifier_training import (
    evaluate_classifier as evaluate_fashion_classifier,
)
from lightning_ex2.networks import FashionDiscriminator, FashionGenerator

__all__ = [
    "FASHION_CLASSES",
    "FASHION_WEIGHTS",
    "FashionClassifier",
    "FashionDiscriminator",
    "FashionFeatures",
    "FashionGenerator",
    "FashionLogits",
    "as_float_images",
    "evaluate_fashion_classifier",
    "load_fashion_classifier",
    "train_fashion_classifier",
]

FASHION_WEIGHTS = classifier_weights("fashion")


class FashionFeatures(ClassifierFeatures):
    """``ClassifierFeatures("fashion", weights_path)`` under its old name."""

    def __init__(self, weights_path: str | None = None) -> None:
        super().__init__("fashion", weights_path)


class FashionLogits(ClassifierLogits):
    """``ClassifierLogits("fashion", weights_path)`` under its old name."""

    def __init__(self, weights_path: str | None = None) -> None:
        super().__init__("fashion", weights_path)


def load_fashion_classifier(
    path: str | os.PathLike[str] | None = None, map_location: Any = "cpu"
) -> FashionClassifier:
    """``load_feature_cnn("fashion", path, map_location)``."""
    return load_feature_cnn("fashion", path, map_location)  # type: ignore[return-value]
