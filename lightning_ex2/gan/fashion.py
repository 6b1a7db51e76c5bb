"""Fashion-MNIST: a small DCGAN that trains on a CPU, and the classifier that scores it.

The paper's headline GAN experiment (Samsonov et al. 2022, arXiv 2111.02702, Sec. 5:
CIFAR-10, latent dimension 128, FID/IS with Inception) needs a GPU. Its CPU-sized analogue
here runs on Fashion-MNIST (Xiao, Rasul, Vollgraf 2017, arXiv 1708.07747; Debian package
``dataset-fashion-mnist``, read by :class:`~lightning_ex2.data.FashionMNISTDataModule`):

* :class:`FashionGenerator` / :class:`FashionDiscriminator` — DCGAN-style nets for
  ``[1, 28, 28]`` images with a 64-D latent space (Radford et al. 2015: strided
  (transposed) 4×4 convolutions, BatchNorm in the generator, LeakyReLU in the
  discriminator). About 7 M multiply-adds per image each, some 13× less than the
  paper's MNIST generator (:class:`~lightning_ex2.gan.MNISTGenerator`, whose 3×3
  convolutions after nearest-neighbour upsampling to 14×14 and 28×28 cost about 90 M);
  see ``configs/gan/fashion_gan_train.yaml``.
* :class:`FashionClassifier` — a small CNN (about 61 k parameters) whose penultimate
  64 features give FID/KID and whose 10 logits give IS "in Fashion-classifier space"
  (``feature_extractor: fashion`` in :class:`~lightning_ex2.callbacks.ImageQualityMetrics`,
  or ``class_path: lightning_ex2.gan.fashion.FashionFeatures``). The weights shipped in
  ``lightning_ex2/gan/weights/fashion_classifier.pt`` are regenerated, deterministically, by
  ``python scripts/train_fashion_classifier.py``.

Example:
    >>> import torch
    >>> g, d = FashionGenerator(latent_dim=8, ngf=8), FashionDiscriminator(ndf=8)
    >>> x = g(torch.randn(3, 8))
    >>> x.shape, d(x).shape
    (torch.Size([3, 1, 28, 28]), torch.Size([3, 1]))
    >>> clf = FashionClassifier()
    >>> clf.features(x).shape, clf(x).shape
    (torch.Size([3, 64]), torch.Size([3, 10]))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_ex2.gan.classifier import (
    FIDFeatures,
    ISLogits,
    fit_classifier,
    load_classifier,
    save_classifier,
)

__all__ = [
    "FASHION_CLASSES",
    "FASHION_WEIGHTS",
    "FashionClassifier",
    "FashionDiscriminator",
    "FashionFeatures",
    "FashionGenerator",
    "FashionLogits",
    "evaluate_fashion_classifier",
    "load_fashion_classifier",
    "train_fashion_classifier",
]

FASHION_WEIGHTS = Path(__file__).resolve().parent / "weights" / "fashion_classifier.pt"
#: Fashion-MNIST's label names, in label order.
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
_SIZE = 28


# ------------------------------------------------------------------------- GAN
class FashionGenerator(nn.Module):
    """DCGAN generator ``z [B, latent_dim] -> [B, 1, 28, 28]`` in ``[-1, 1]``.

    ``Linear(latent_dim -> 2·ngf·7·7)``, BatchNorm, ReLU; ``ConvTranspose 4×4 /2``
    (``2·ngf -> ngf``, 7 -> 14), BatchNorm, ReLU; ``ConvTranspose 4×4 /2`` (``ngf -> 1``,
    14 -> 28), ``tanh``. Keys ``l1``, ``b1``, ``c2``, ``b2``, ``c3``.
    """

    image_shape = (1, 28, 28)

    def __init__(self, latent_dim: int = 64, ngf: int = 64) -> None:
        super().__init__()
        for name, value in (("latent_dim", latent_dim), ("ngf", ngf)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"FashionGenerator: {name} must be a positive int, got {value!r}")
        self.latent_dim, self.ngf = latent_dim, ngf
        self.l1 = nn.Linear(latent_dim, 2 * ngf * 7 * 7)
        self.b1 = nn.BatchNorm2d(2 * ngf)
        self.c2 = nn.ConvTranspose2d(2 * ngf, ngf, 4, 2, 1)
        self.b2 = nn.BatchNorm2d(ngf)
        self.c3 = nn.ConvTranspose2d(ngf, 1, 4, 2, 1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.l1(z).view(z.shape[0], 2 * self.ngf, 7, 7)
        # channels-last: oneDNN's transposed convolutions run ~1.5x faster on CPUs that way
        h = F.relu(self.b1(h)).contiguous(memory_format=torch.channels_last)
        h = F.relu(self.b2(self.c2(h)))
        return torch.tanh(self.c3(h)).contiguous()


class FashionDiscriminator(nn.Module):
    """DCGAN discriminator ``[B, 1, 28, 28] -> logits [B, 1]``.

    ``Conv 4×4 /2`` (``1 -> ndf``, 28 -> 14), LeakyReLU 0.2; ``Conv 4×4 /2``
    (``ndf -> 2·ndf``, 14 -> 7), LeakyReLU 0.2; ``Linear(2·ndf·7·7 -> 1)``. No
    normalisation, so ``d(G(z))`` is the same function in train and eval mode.
    Keys ``c1``, ``c2``, ``l3``.
    """

    def __init__(self, ndf: int = 64) -> None:
        super().__init__()
        if not isinstance(ndf, int) or ndf < 1:
            raise ValueError(f"FashionDiscriminator: ndf must be a positive int, got {ndf!r}")
        self.ndf = ndf
        self.c1 = nn.Conv2d(1, ndf, 4, 2, 1)
        self.c2 = nn.Conv2d(ndf, 2 * ndf, 4, 2, 1)
        self.l3 = nn.Linear(2 * ndf * 7 * 7, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = F.leaky_relu(self.c1(x.contiguous(memory_format=torch.channels_last)), 0.2)
        h = F.leaky_relu(self.c2(h), 0.2)
        return self.l3(h.flatten(1))


# ------------------------------------------------------------------ classifier
def _as_fashion_images(x: Tensor) -> Tensor:
    """Images ``[B, C, H, W]`` (C = 1 or 3) in [-1, 1] -> ``[B, 1, 28, 28]``."""
    if x.ndim != 4:
        raise ValueError(f"expected images shaped [B, C, H, W], got {tuple(x.shape)}")
    if x.shape[1] == 3:
        x = x.mean(dim=1, keepdim=True)
    elif x.shape[1] != 1:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    if x.shape[-2:] != (_SIZE, _SIZE):
        x = F.interpolate(x, size=(_SIZE, _SIZE), mode="bilinear", align_corners=False)
    return x


class FashionClassifier(nn.Module):
    """CNN for ``1×28×28`` Fashion-MNIST images in ``[-1, 1]`` (10 classes).

    Three (3×3 conv, ReLU, 2×2 max-pool) stages with 16, 32, 64 channels (28 -> 14 -> 7 -> 3),
    ``Linear(576 -> 64)``, ReLU (= :meth:`features`), ``Linear(64 -> 10)`` (= logits).
    About 61 k parameters. Other sizes are resized to 28×28 and RGB averaged to grey.
    """

    num_features = 64
    num_classes = 10

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.fc = nn.Linear(64 * 3 * 3, self.num_features)
        self.head = nn.Linear(self.num_features, self.num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations ``[B, 64]`` (non-negative) of images ``[B, C, H, W]``."""
        return F.relu(self.fc(self.conv(_as_fashion_images(x)).flatten(1)))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits ``[B, 10]`` of images ``[B, C, H, W]`` in ``[-1, 1]``."""
        return self.head(self.features(x))


class FashionFeatures(FIDFeatures):
    """``images [B, C, H, W] -> [B, 64]``: the shipped (or ``weights_path``) classifier's features.

    For ``ImageQualityMetrics(feature_extractor=...)`` as a ``class_path``.
    """

    def __init__(self, weights_path: str | None = None) -> None:
        super().__init__(load_fashion_classifier(weights_path))
        where = _display_path(weights_path)
        self.description = f"fashion-classifier penultimate features, weights {where}"


class FashionLogits(ISLogits):
    """``images [B, C, H, W] -> logits [B, 10]`` of the shipped classifier (for IS)."""

    def __init__(self, weights_path: str | None = None) -> None:
        super().__init__(load_fashion_classifier(weights_path))
        self.description = f"fashion-classifier logits, weights {_display_path(weights_path)}"


def _display_path(path: str | os.PathLike[str] | None) -> str:
    """The weights file as shown in results: relative to the package's parent when inside it."""
    full = Path(FASHION_WEIGHTS if path is None else path).resolve()
    try:
        return full.relative_to(FASHION_WEIGHTS.parents[3]).as_posix()
    except ValueError:
        return str(full)


@torch.no_grad()
def evaluate_fashion_classifier(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Accuracy of ``model`` on images ``x [n, 1, 28, 28]`` in [-1, 1] with labels ``y [n]``."""
    was_training = model.training
    model.eval()
    pred = torch.cat([model(chunk).argmax(-1) for chunk in x.split(1000)])
    model.train(was_training)
    return float((pred == y).float().mean())


def train_fashion_classifier(
    x_train: Tensor,
    y_train: Tensor,
    x_test: Tensor | None = None,
    y_test: Tensor | None = None,
    seed: int = 0,
    epochs: int = 4,
    batch_size: int = 128,
    lr: float = 3e-3,
    num_threads: int | None = 1,
    out_path: str | os.PathLike[str] | None = None,
    verbose: bool = False,
) -> tuple[FashionClassifier, dict[str, Any]]:
    """Train a :class:`FashionClassifier`; deterministic given ``seed``, threads and torch build.

    Plain torch loop: Adam (``lr``, cosine decay to 0), cross-entropy, mini-batches in a
    seeded order, random horizontal flips. The global RNG is untouched.

    Args:
        x_train, y_train: images ``[n, 1, 28, 28]`` in [-1, 1] and labels ``int64 [n]``.
        x_test, y_test: held-out set for ``meta["test_accuracy"]`` (``None``: not measured).
        num_threads: torch threads while training (restored afterwards).
        out_path: when given, ``{"state_dict", "meta"}`` is written there atomically.

    Returns:
        ``(model in eval mode, meta)``.
    """
    if x_train.ndim != 4 or x_train.shape[1:] != (1, _SIZE, _SIZE):
        raise ValueError(f"x_train must be [n, 1, 28, 28], got {tuple(x_train.shape)}")
    if y_train.shape != (x_train.shape[0],):
        raise ValueError(f"y_train must be [{x_train.shape[0]}], got {tuple(y_train.shape)}")
    previous = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = FashionClassifier()
        g = torch.Generator().manual_seed(seed + 1)
        fit_classifier(
            model, x_train, y_train, generator=g, epochs=epochs, batch_size=batch_size,
            lr=lr, augment=_flip, verbose=verbose,
        )  # fmt: skip
        meta: dict[str, Any] = {
            "seed": seed,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "n_train": int(x_train.shape[0]),
            "torch": str(torch.__version__),
        }
        if x_test is not None and y_test is not None:
            meta["n_test"] = int(x_test.shape[0])
            meta["test_accuracy"] = evaluate_fashion_classifier(model, x_test, y_test)
    finally:
        torch.set_num_threads(previous)
    if out_path is not None:
        save_classifier(model, out_path, meta)
    return model, meta


def _flip(x: Tensor, generator: torch.Generator) -> Tensor:
    """Random horizontal flips of ``x [n, 1, 28, 28]``, each image with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def load_fashion_classifier(
    path: str | os.PathLike[str] | None = None, map_location: Any = "cpu"
) -> FashionClassifier:
    """A frozen :class:`FashionClassifier` (eval mode) from ``path`` (default: shipped weights).

    Raises:
        FileNotFoundError: the file is missing; the message says how to create it.
        ValueError: the file does not hold FashionClassifier weights.
    """
    path = Path(FASHION_WEIGHTS if path is None else path)
    how = (
        f"create them with `python scripts/train_fashion_classifier.py --out {path}` "
        "(needs `apt-get install dataset-fashion-mnist`)"
    )
    return load_classifier(FashionClassifier(), path, how, map_location)


def as_float_images(images: np.ndarray) -> Tensor:
    """``uint8 [n, 28, 28]`` -> float32 ``[n, 1, 28, 28]`` in ``[-1, 1]``."""
    return torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0)[:, None]
