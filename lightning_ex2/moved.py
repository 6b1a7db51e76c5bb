"""Where the classes and shipped files of the old ``lightning_ex2.gan`` package went.

Checkpoints record the class path (``module.qualname``) of every part of the model they were
written for (:func:`lightning_ex2.runcheck.model_spec`); a checkpoint written before the GAN
pieces moved into their layers names the old modules. :func:`canonical_class_path` maps such
a path to the current one, so that checkpoint checks compare where a class *is*, not where it
was. :func:`moved_weights_path` does the same for the shipped weights, which lived in
``lightning_ex2/gan/weights/`` and live in ``lightning_ex2/weights/``. This module imports
nothing of the package (the checkpoint checks import it).

Example:
    >>> canonical_class_path("lightning_ex2.gan.target.GANLatentTarget")
    'lightning_ex2.targets.gan.GANLatentTarget'
    >>> canonical_class_path("torch.nn.modules.linear.Linear")
    'torch.nn.modules.linear.Linear'
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["MOVED_CLASS_PATHS", "canonical_class_path", "moved_weights_path"]

_ARCHITECTURES = (
    "DBlock", "DBlockOptimized", "DCGANDiscriminator32", "DCGANGenerator32",
    "DigitsDiscriminator", "DigitsGenerator", "GBlock", "MNISTDiscriminator",
    "MNISTGenerator", "SNGANDiscriminator32", "SNGANGenerator32",
)  # fmt: skip

#: old class path -> new class path, for every class that moved out of ``lightning_ex2.gan``.
MOVED_CLASS_PATHS: dict[str, str] = {
    "lightning_ex2.gan.target.GANLatentTarget": "lightning_ex2.targets.gan.GANLatentTarget",
    "lightning_ex2.gan.module.GANModule": "lightning_ex2.modules.gan.GANModule",
    "lightning_ex2.gan.calibration.DiscriminatorCalibration": (
        "lightning_ex2.modules.calibration.DiscriminatorCalibration"
    ),
    "lightning_ex2.gan.fashion.FashionGenerator": (
        "lightning_ex2.networks.architectures.FashionGenerator"
    ),
    "lightning_ex2.gan.fashion.FashionDiscriminator": (
        "lightning_ex2.networks.architectures.FashionDiscriminator"
    ),
    "lightning_ex2.gan.classifier.DigitsClassifier": (
        "lightning_ex2.metrics.classifier.DigitsClassifier"
    ),
    "lightning_ex2.gan.fashion.FashionClassifier": (
        "lightning_ex2.metrics.classifier.FashionClassifier"
    ),
    "lightning_ex2.gan.classifier.FIDFeatures": "lightning_ex2.metrics.classifier.ClassifierFeatures",
    "lightning_ex2.gan.classifier.ISLogits": "lightning_ex2.metrics.classifier.ClassifierLogits",
    **{
        f"lightning_ex2.gan.architectures.{name}": f"lightning_ex2.networks.architectures.{name}"
        for name in _ARCHITECTURES
    },
}

_WEIGHTS = Path(__file__).resolve().parent / "weights"


def canonical_class_path(path: str) -> str:
    """``path`` where the class lives now (unchanged unless it is in :data:`MOVED_CLASS_PATHS`)."""
    return MOVED_CLASS_PATHS.get(path, path)


def moved_weights_path(path: str | Path) -> Path:
    """A missing ``.../lightning_ex2/gan/weights/<file>`` -> the shipped ``lightning_ex2/weights/<file>``.

    Any other path, or one that exists, is returned as given (as a :class:`~pathlib.Path`).
    """
    path = Path(path)
    if path.exists() or path.parent.parts[-3:] != ("lightning_ex2", "gan", "weights"):
        return path
    shipped = _WEIGHTS / path.name
    return shipped if shipped.is_file() else path
