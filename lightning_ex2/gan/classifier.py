"""Compatibility aliases: the digits classifier is :mod:`lightning_ex2.metrics.classifier`."""

from __future__ import annotations

import os
from typing import Any

from lightning_ex2.metrics.classifier import ClassifierFeatures as FIDFeatures
from lightning_ex2.metrics.classifier import ClassifierLogits as ISLogits
from lightning_ex2.metrics.classifier import DigitsClassifier, classifier_weights, load_feature_cnn
from lightning_ex2.metrics.classifier_training import (
    digits_dataset,
    evaluate_digits_classifier,
    fit_classifier,
    save_classifier,
    train_digits_classifier,
)

__all__ = [
    "DEFAULT_WEIGHTS",
    "DigitsClassifier",
    "FIDFeatures",
    "ISLogits",
    "digits_dataset",
    "evaluate_digits_classifier",
    "fit_classifier",
    "load_digits_classifier",
    "save_classifier",
    "train_digits_classifier",
]

DEFAULT_WEIGHTS = classifier_weights("digits")


def load_digits_classifier(
    path: str | os.PathLike[str] | None = None, map_location: Any = "cpu"
) -> DigitsClassifier:
    """``load_feature_cnn("digits", path, map_location)``."""
    return load_feature_cnn("digits", path, map_location)  # type: ignore[return-value]
