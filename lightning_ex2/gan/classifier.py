"""The small classifiers whose features and logits give FID/KID/IS on the CPU-sized datasets.

FID (Heusel et al. 2017, arXiv 1706.08500) and IS (Salimans et al. 2016, arXiv 1606.03498)
are defined with an Inception-v3 trained on ImageNet; for 8×8 digits or 28×28 Fashion-MNIST
that network is both far too large and meaningless. The demos score images with one small
CNN instead, :class:`FeatureCNN`, trained per dataset: its penultimate layer (64 features)
for FID/KID and its 10 logits for IS. The numbers are "FID/IS *in <name>-classifier space*",
comparable only with numbers computed by the same weights.

Shipped weights (``lightning_ex2/gan/weights/``), regenerated deterministically by
``python scripts/train_digits_classifier.py`` and ``python scripts/train_fashion_classifier.py``:

========  ==========================  ===================================================
name      file                        network
========  ==========================  ===================================================
digits    ``digits_classifier.pt``    :class:`DigitsClassifier`: 1×8×8, pools after
                                      stages 2 and 3, area resize
fashion   ``fashion_classifier.pt``   :class:`FashionClassifier`: 1×28×28, pools after
                                      every stage, bilinear resize
========  ==========================  ===================================================

In a config, the extractors are chosen by class path (``ImageQualityMetrics``)::

    feature_extractor:
      class_path: lightning_ex2.gan.ClassifierFeatures
      init_args: {weights: fashion}          # optional: weights_path: my_classifier.pt
    logits_extractor:
      class_path: lightning_ex2.gan.ClassifierLogits
      init_args: {weights: fashion}

Example:
    >>> import torch
    >>> clf = load_feature_cnn("digits")                  # the shipped weights
    >>> x = torch.zeros(4, 1, 8, 8)                       # images in [-1, 1]
    >>> ClassifierFeatures(clf)(x).shape, ClassifierLogits(clf)(x).shape
    (torch.Size([4, 64]), torch.Size([4, 10]))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from lightning_ex2.trust import load_torch

__all__ = [
    "CLASSIFIERS",
    "WEIGHTS_DIR",
    "ClassifierFeatures",
    "ClassifierLogits",
    "DigitsClassifier",
    "FashionClassifier",
    "FeatureCNN",
    "classifier_weights",
    "load_feature_cnn",
]

#: The folder of the shipped weights (the package's ``weights/``).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class FeatureCNN(nn.Module):
    """A small CNN for ``channels×S×S`` images in ``[-1, 1]``: features and class logits.

    ``len(widths)`` stages of (3×3 conv, ReLU[, 2×2 max-pool where ``pools[i]``]), then
    ``Linear(widths[-1]·s·s -> num_features)``, ReLU (= :meth:`features`), and
    ``Linear(num_features -> num_classes)`` (= logits); ``s`` is ``image_size`` halved (floor)
    at every pool. ``state_dict`` keys: ``conv.<i>`` (the ``nn.Sequential`` position of each
    conv), ``fc``, ``head``. Inputs of another size are resized to ``image_size`` first
    (``resize``: ``"area"`` = adaptive average pooling, ``"bilinear"`` = bilinear
    interpolation), and RGB inputs averaged to grey when ``channels`` is 1.

    Args:
        image_size: ``S``.
        channels: input channels the network takes.
        widths: output channels of the stages' convolutions.
        pools: whether each stage ends with a 2×2 max-pool (one bool per stage).
        num_features: width of the penultimate layer.
        num_classes: number of logits.
        resize: ``"area"`` or ``"bilinear"``.
    """

    def __init__(
        self,
        image_size: int,
        channels: int = 1,
        widths: Sequence[int] = (16, 32, 64),
        pools: Sequence[bool] = (True, True, True),
        num_features: int = 64,
        num_classes: int = 10,
        resize: str = "bilinear",
    ) -> None:
        super().__init__()
        if len(pools) != len(widths):
            raise ValueError(f"FeatureCNN: one pool flag per stage, got {pools} for {widths}")
        if resize not in ("area", "bilinear"):
            raise ValueError(f"FeatureCNN: resize must be 'area' or 'bilinear', got {resize!r}")
        self.image_size, self.channels, self.resize = image_size, channels, resize
        self.num_features, self.num_classes = num_features, num_classes
        layers: list[nn.Module] = []
        side, c_in = image_size, channels
        for width, pool in zip(widths, pools, strict=True):
            layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU()]
            if pool:
                layers.append(nn.MaxPool2d(2))
                side //= 2
            c_in = width
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in * side * side, num_features)
        self.head = nn.Linear(num_features, num_classes)

    def prepare(self, x: Tensor) -> Tensor:
        """Images ``[B, C, H, W]`` (C = 1 or 3) -> ``[B, channels, S, S]``."""
        if x.ndim != 4:
            raise ValueError(f"expected images shaped [B, C, H, W], got {tuple(x.shape)}")
        if x.shape[1] == 3 and self.channels == 1:
            x = x.mean(dim=1, keepdim=True)
        elif x.shape[1] != self.channels:
            raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
        size = (self.image_size, self.image_size)
        if x.shape[-2:] != size:
            if self.resize == "area":
                x = F.adaptive_avg_pool2d(x, size)
            else:
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations ``[B, num_features]`` (non-negative) of images ``[B, C, H, W]``."""
        return F.relu(self.fc(self.conv(self.prepare(x)).flatten(1)))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits ``[B, num_classes]`` of images ``[B, C, H, W]`` in ``[-1, 1]``."""
        return self.head(self.features(x))


class DigitsClassifier(FeatureCNN):
    """:class:`FeatureCNN` for scikit-learn's ``1×8×8`` digits: stages 16, 32, 64 with pools
    after the last two (8 -> 4 -> 2), area resize; about 40 k parameters."""

    def __init__(self) -> None:
        super().__init__(8, pools=(False, True, True), resize="area")


class FashionClassifier(FeatureCNN):
    """:class:`FeatureCNN` for ``1×28×28`` Fashion-MNIST: stages 16, 32, 64, each pooled
    (28 -> 14 -> 7 -> 3), bilinear resize; about 61 k parameters."""

    def __init__(self) -> None:
        super().__init__(28, pools=(True, True, True), resize="bilinear")


class _Shipped(NamedTuple):
    network: type[FeatureCNN]
    file: str
    how_to_create: str


#: The shipped classifiers by name: network class, weights file, how to regenerate it.
CLASSIFIERS: dict[str, _Shipped] = {
    "digits": _Shipped(
        DigitsClassifier,
        "digits_classifier.pt",
        "create them with `python scripts/train_digits_classifier.py --out {path}` "
        "(deterministic, about 10 s on a CPU)",
    ),
    "fashion": _Shipped(
        FashionClassifier,
        "fashion_classifier.pt",
        "create them with `python scripts/train_fashion_classifier.py --out {path}` "
        "(needs `apt-get install dataset-fashion-mnist`)",
    ),
}


def classifier_weights(name: str) -> Path:
    """The shipped weights file of the classifier ``name`` (``"digits"`` or ``"fashion"``)."""
    return WEIGHTS_DIR / _shipped(name).file


def _shipped(name: str) -> _Shipped:
    if name not in CLASSIFIERS:
        raise ValueError(f"unknown classifier {name!r}; known: {tuple(CLASSIFIERS)}")
    return CLASSIFIERS[name]


def load_feature_cnn(
    name: str,
    path: str | os.PathLike[str] | None = None,
    map_location: Any = "cpu",
    trust_checkpoint: bool = False,
) -> FeatureCNN:
    """The classifier ``name`` (eval mode, frozen) with the weights of ``path`` (default: the
    shipped file); the file holds ``{"state_dict", "meta"}`` or a bare state dict.

    ``trust_checkpoint=True`` unpickles a file that needs more than tensors and plain
    values (it can run any code it holds); without it such a file is refused.

    Raises:
        FileNotFoundError: the file is missing; the message says how to create it.
        ValueError: an unknown ``name``, or a file that does not hold its weights.
        lightning_ex2.trust.UntrustedFile: the file needs full unpickling (one line
            naming the opt-in).
    """
    shipped = _shipped(name)
    path = Path(classifier_weights(name) if path is None else path)
    model = shipped.network()
    kind = type(model).__name__
    if not path.is_file():
        how = shipped.how_to_create.format(path=path)
        raise FileNotFoundError(f"{kind} weights not found at {path}; {how}")
    blob = load_torch(
        path, trust=trust_checkpoint, map_location=map_location, what=f"{kind} weights {path}"
    )
    state = blob.get("state_dict") if isinstance(blob, dict) else None
    try:
        model.load_state_dict(state if state is not None else blob)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path} does not hold {kind} weights: {exc}") from exc
    return model.eval().requires_grad_(False)


def _display_path(path: Path) -> str:
    """The weights file as shown in results: relative to the package's parent (the
    checkout) when inside it, e.g. ``lightning_ex2/gan/weights/digits_classifier.pt``."""
    full = path.resolve()
    try:
        return full.relative_to(Path(__file__).resolve().parents[2]).as_posix()
    except ValueError:
        return str(full)


class ClassifierFeatures(nn.Module):
    """``images [B, C, H, W] in [-1, 1] -> classifier features [B, 64]`` for FID / KID.

    Args:
        weights: a shipped classifier's name (``"digits"``, ``"fashion"``), or a classifier
            module with ``features(x)`` (and ``num_features``) to wrap as it is.
        weights_path: another weights file for the named classifier (default: the shipped one).

    Has ``num_features`` (torchmetrics then skips its 3×299×299 probe) and a
    ``description`` for results. The classifier is frozen and kept in eval mode.
    """

    output = "penultimate features"

    def __init__(
        self, weights: str | nn.Module = "digits", weights_path: str | None = None
    ) -> None:
        super().__init__()
        if isinstance(weights, nn.Module):
            classifier, where = weights, None
        else:
            path = Path(classifier_weights(weights) if weights_path is None else weights_path)
            classifier, where = load_feature_cnn(weights, path), _display_path(path)
        self.classifier = classifier.eval().requires_grad_(False)
        self.num_features = self._width(classifier)
        name = weights if isinstance(weights, str) else type(weights).__name__
        self.description = f"{name}-classifier {self.output}" + (
            f", weights {where}" if where is not None else ""
        )

    @staticmethod
    def _width(classifier: nn.Module) -> int:
        return int(getattr(classifier, "num_features", 64))

    def train(self, mode: bool = True) -> ClassifierFeatures:
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier.features(x)


class ClassifierLogits(ClassifierFeatures):
    """``images [B, C, H, W] in [-1, 1] -> classifier logits [B, 10]`` for the Inception Score.

    Same arguments as :class:`ClassifierFeatures`.
    """

    output = "logits"

    @staticmethod
    def _width(classifier: nn.Module) -> int:
        return int(getattr(classifier, "num_classes", 10))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(x)
