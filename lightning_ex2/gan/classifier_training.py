"""Training of the FID/IS classifiers (:mod:`lightning_ex2.gan.classifier`), deterministic.

Commands (they regenerate the shipped weights under ``lightning_ex2/gan/weights/``)::

    python scripts/train_digits_classifier.py      # scikit-learn's digits, about 10 s
    python scripts/train_fashion_classifier.py     # Fashion-MNIST (dataset-fashion-mnist)

Plain torch loops: Adam (cosine decay to 0), cross-entropy, mini-batches in a seeded order,
a seeded augmentation (±1-pixel shifts for digits, horizontal flips for Fashion). The global
RNG is untouched; the same seed, thread count and torch build give the same weights.

Example:
    >>> model, meta = train_digits_classifier(epochs=1, lr=1e-2, batch_size=32, augment=False)
    >>> type(model).__name__, meta["n_train"]
    ('DigitsClassifier', 1347)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_ex2.gan.classifier import DigitsClassifier, FashionClassifier, FeatureCNN

__all__ = [
    "FASHION_CLASSES",
    "as_float_images",
    "digits_dataset",
    "evaluate_classifier",
    "evaluate_digits_classifier",
    "fit_classifier",
    "save_classifier",
    "train_digits_classifier",
    "train_fashion_classifier",
]

#: Fashion-MNIST's label names, in label order.
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

Augment = Callable[[Tensor, torch.Generator], Tensor]


def digits_dataset(seed: int = 0, test_size: float = 0.25) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """scikit-learn's digits as ``(x_train, y_train, x_test, y_test)``.

    Images ``[n, 1, 8, 8]`` float32 in ``[-1, 1]`` (pixel values 0..16 mapped linearly), labels
    ``int64 [n]``; a stratified split with ``random_state=seed`` (1347 / 450 images by default).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images.astype(np.float32) / 8.0 - 1.0)[:, None]
    y = data.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y
    )
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in (x_tr, y_tr, x_te, y_te))


def as_float_images(images: np.ndarray) -> Tensor:
    """``uint8 [n, H, W]`` -> float32 ``[n, 1, H, W]`` in ``[-1, 1]``."""
    return torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0)[:, None]


def _shift(x: Tensor, g: torch.Generator) -> Tensor:
    """Random translations of ``x [n, 1, S, S]`` by up to one pixel (edges are background, -1)."""
    size = x.shape[-1]
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
    offsets = torch.randint(0, 3, (x.shape[0], 2), generator=g)
    rows = (offsets[:, 0, None] + torch.arange(size))[:, :, None]  # [B, S, 1]
    cols = (offsets[:, 1, None] + torch.arange(size))[:, None, :]  # [B, 1, S]
    b = torch.arange(x.shape[0])[:, None, None]
    return padded[b, 0, rows, cols][:, None]


def _flip(x: Tensor, generator: torch.Generator) -> Tensor:
    """Random horizontal flips of ``x [n, C, H, W]``, each image with probability 1/2."""
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


@torch.no_grad()
def evaluate_classifier(model: nn.Module, x: Tensor, y: Tensor, chunk: int = 1000) -> float:
    """Accuracy of ``model`` on images ``x [n, C, H, W]`` in [-1, 1] with labels ``y [n]``."""
    was_training = model.training
    model.eval()
    pred = torch.cat([model(c).argmax(-1) for c in x.split(chunk)])
    model.train(was_training)
    return float((pred == y).float().mean())


def evaluate_digits_classifier(
    model: nn.Module, x: Tensor | None = None, y: Tensor | None = None, seed: int = 0
) -> float:
    """Accuracy of ``model`` on ``(x, y)`` (default: the test split of :func:`digits_dataset`)."""
    if x is None or y is None:
        _, _, x, y = digits_dataset(seed)
    return evaluate_classifier(model, x, y, chunk=512)


def fit_classifier(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    generator: torch.Generator,
    epochs: int,
    batch_size: int,
    lr: float,
    augment: Augment | None = None,
    verbose: bool = False,
) -> None:
    """Train ``model`` in place: Adam (``lr``, cosine decay to 0 over all batches),
    cross-entropy, mini-batches of ``x [n, ...]``/``y [n]`` in an order drawn from
    ``generator``, each batch passed through ``augment(batch, generator)`` if given.
    Deterministic given the generator's seed, the threads and the torch build."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n_batches = -(-x.shape[0] // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs * n_batches, 1))
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(x.shape[0], generator=generator)
        total = 0.0
        for i in range(n_batches):
            idx = order[i * batch_size : (i + 1) * batch_size]
            xb, yb = x[idx], y[idx]
            if augment is not None:
                xb = augment(xb, generator)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * idx.numel()
        if verbose:
            print(f"epoch {epoch + 1:3d}/{epochs}  loss {total / x.shape[0]:.4f}", flush=True)
    model.eval()


def save_classifier(model: nn.Module, path: str | os.PathLike[str], meta: dict[str, Any]) -> Path:
    """Write ``{"state_dict", "meta"}`` to ``path`` atomically (temp file + rename)."""
    from lightning_ex2.output.files import save_torch

    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return save_torch(path, {"state_dict": state, "meta": meta})


def _train(
    network: type[FeatureCNN],
    x: Tensor,
    y: Tensor,
    test: tuple[Tensor, Tensor] | None,
    settings: dict[str, Any],
    augment: Augment | None,
    chunk: int,
    num_threads: int | None,
    out_path: str | os.PathLike[str] | None,
    verbose: bool,
) -> tuple[FeatureCNN, dict[str, Any]]:
    """A ``network()`` seeded by ``settings["seed"]``, fitted on ``(x, y)``; ``meta`` =
    ``settings`` + sizes + test accuracy (when ``test``) + torch version."""
    seed = settings["seed"]
    previous = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = network()
        g = torch.Generator().manual_seed(seed + 1)
        fit_classifier(
            model, x, y, generator=g, epochs=settings["epochs"],
            batch_size=settings["batch_size"], lr=settings["lr"], augment=augment,
            verbose=verbose,
        )  # fmt: skip
        meta = {**settings, "n_train": int(x.shape[0])}
        if test is not None:
            meta["n_test"] = int(test[0].shape[0])
            meta["test_accuracy"] = evaluate_classifier(model, *test, chunk=chunk)
        meta["torch"] = str(torch.__version__)
    finally:
        torch.set_num_threads(previous)
    if out_path is not None:
        save_classifier(model, out_path, meta)
    return model, meta


def train_digits_classifier(
    seed: int = 0,
    epochs: int = 40,
    batch_size: int = 64,
    lr: float = 2e-3,
    augment: bool = True,
    out_path: str | os.PathLike[str] | None = None,
    num_threads: int | None = 1,
    verbose: bool = False,
) -> tuple[DigitsClassifier, dict[str, Any]]:
    """Train a :class:`~lightning_ex2.gan.classifier.DigitsClassifier` on the digits
    train split (see the module docstring); deterministic given ``seed``.

    A quick mode (``epochs=5, lr=1e-2, batch_size=32, augment=False``) reaches about 97 % in
    about a second.

    Args:
        seed: seed of the split, the initialisation, the order and the augmentation.
        epochs: passes over the 1347 training images (40 ≈ 8 s on one CPU core).
        augment: random ±1-pixel shifts.
        out_path: when given, ``{"state_dict", "meta"}`` is saved there atomically.
        num_threads: torch intra-op threads while training (restored afterwards); one thread
            is both the fastest for this tiny network and reproducible; ``None`` keeps the
            current setting.

    Returns:
        ``(model in eval mode, meta)`` with ``meta`` holding ``test_accuracy``, ``seed``,
        ``epochs`` and the other settings.
    """
    x_tr, y_tr, x_te, y_te = digits_dataset(seed)
    settings = {"seed": seed, "epochs": epochs, "batch_size": batch_size, "lr": lr}
    settings["augment"] = augment
    aug = _shift if augment else None
    return _train(  # type: ignore[return-value]
        DigitsClassifier,
        x_tr,
        y_tr,
        (x_te, y_te),
        settings,
        aug,
        512,
        num_threads,
        out_path,
        verbose,
    )


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
    """Train a :class:`~lightning_ex2.gan.classifier.FashionClassifier` (random horizontal
    flips; see the module docstring); deterministic given ``seed``, threads and torch build.

    Args:
        x_train, y_train: images ``[n, 1, 28, 28]`` in [-1, 1] and labels ``int64 [n]``.
        x_test, y_test: held-out set for ``meta["test_accuracy"]`` (``None``: not measured).
        num_threads: torch threads while training (restored afterwards).
        out_path: when given, ``{"state_dict", "meta"}`` is written there atomically.

    Returns:
        ``(model in eval mode, meta)``.
    """
    if x_train.ndim != 4 or x_train.shape[1:] != (1, 28, 28):
        raise ValueError(f"x_train must be [n, 1, 28, 28], got {tuple(x_train.shape)}")
    if y_train.shape != (x_train.shape[0],):
        raise ValueError(f"y_train must be [{x_train.shape[0]}], got {tuple(y_train.shape)}")
    test = (x_test, y_test) if x_test is not None and y_test is not None else None
    settings = {"seed": seed, "epochs": epochs, "batch_size": batch_size, "lr": lr}
    return _train(  # type: ignore[return-value]
        FashionClassifier,
        x_train,
        y_train,
        test,
        settings,
        _flip,
        1000,
        num_threads,
        out_path,
        verbose,
    )
