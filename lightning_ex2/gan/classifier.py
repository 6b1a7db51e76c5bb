"""A small LeNet-style classifier of scikit-learn's 8×8 digits, the feature network of the demo.

FID (Heusel et al. 2017, arXiv 1706.08500) and IS (Salimans et al. 2016, arXiv 1606.03498)
are defined with an Inception-v3 trained on ImageNet; for the 8×8 digits demo that network
is both far too large and meaningless (8×8 grey digits upsampled to 299×299). The demo scores
images with this classifier instead: its penultimate layer (64 features) for FID/KID and its
10 logits for IS, so the numbers are "FID/IS *in digits-classifier space*" and are comparable
only with numbers computed by the same weights.

The weights shipped in ``lightning_ex2/gan/weights/digits_classifier.pt`` are produced,
deterministically, by::

    python scripts/train_digits_classifier.py

Example:
    >>> clf = load_digits_classifier()                  # the shipped weights
    >>> x = torch.zeros(4, 1, 8, 8)                       # images in [-1, 1]
    >>> FIDFeatures(clf)(x).shape, ISLogits(clf)(x).shape
    (torch.Size([4, 64]), torch.Size([4, 10]))
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

M = TypeVar("M", bound=nn.Module)

__all__ = [
    "DEFAULT_WEIGHTS",
    "DigitsClassifier",
    "FIDFeatures",
    "ISLogits",
    "digits_dataset",
    "evaluate_digits_classifier",
    "load_digits_classifier",
    "train_digits_classifier",
]

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "digits_classifier.pt"
_SIZE = 8


def _as_digit_images(x: Tensor) -> Tensor:
    """Images ``[B, C, H, W]`` (C = 1 or 3) in [-1, 1] -> ``[B, 1, 8, 8]`` (grey, area-resized)."""
    if x.ndim != 4:
        raise ValueError(f"expected images shaped [B, C, H, W], got {tuple(x.shape)}")
    if x.shape[1] == 3:
        x = x.mean(dim=1, keepdim=True)
    elif x.shape[1] != 1:
        raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
    if x.shape[-2:] != (_SIZE, _SIZE):
        x = F.adaptive_avg_pool2d(x, (_SIZE, _SIZE))
    return x


class DigitsClassifier(nn.Module):
    """LeNet-style CNN for ``1×8×8`` digits in ``[-1, 1]`` (10 classes).

    conv3×3(16) → ReLU → conv3×3(32) → ReLU → maxpool2 → conv3×3(64) → ReLU → maxpool2 →
    linear(256→64) → ReLU (= :meth:`features`) → linear(64→10) (= logits). About 40k
    parameters. Images of another size are area-resized to 8×8 and RGB images averaged to
    grey first.
    """

    num_features = 64
    num_classes = 10

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.fc = nn.Linear(64 * 2 * 2, self.num_features)
        self.head = nn.Linear(self.num_features, self.num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations ``[B, 64]`` (non-negative) of images ``[B, C, H, W]``."""
        h = self.conv(_as_digit_images(x))
        return F.relu(self.fc(h.flatten(1)))

    def forward(self, x: Tensor) -> Tensor:
        """Class logits ``[B, 10]`` of images ``[B, C, H, W]`` in ``[-1, 1]``."""
        return self.head(self.features(x))


class FIDFeatures(nn.Module):
    """``images [B, C, H, W] in [-1, 1] -> classifier.features [B, F]`` for FID / KID.

    Has ``num_features`` so torchmetrics does not probe it with a 3×299×299 dummy image.
    The classifier is frozen and kept in eval mode.
    """

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.num_features = int(getattr(classifier, "num_features", 64))

    def train(self, mode: bool = True) -> FIDFeatures:
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier.features(x)


class ISLogits(nn.Module):
    """``images [B, C, H, W] in [-1, 1] -> classifier logits [B, K]`` for the Inception Score."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.num_features = int(getattr(classifier, "num_classes", 10))

    def train(self, mode: bool = True) -> ISLogits:
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(x)


# ----------------------------------------------------------------------------- data / training
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


def _shift(x: Tensor, g: torch.Generator) -> Tensor:
    """Random translations by up to one pixel (edge pixels are background, -1)."""
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
    offsets = torch.randint(0, 3, (x.shape[0], 2), generator=g)
    rows = (offsets[:, 0, None] + torch.arange(_SIZE))[:, :, None]  # [B, 8, 1]
    cols = (offsets[:, 1, None] + torch.arange(_SIZE))[:, None, :]  # [B, 1, 8]
    b = torch.arange(x.shape[0])[:, None, None]
    return padded[b, 0, rows, cols][:, None]


@torch.no_grad()
def evaluate_digits_classifier(
    model: nn.Module, x: Tensor | None = None, y: Tensor | None = None, seed: int = 0
) -> float:
    """Accuracy of ``model`` on ``(x, y)`` (default: the test split of :func:`digits_dataset`)."""
    if x is None or y is None:
        _, _, x, y = digits_dataset(seed)
    was_training = model.training
    model.eval()
    pred = torch.cat([model(chunk).argmax(-1) for chunk in x.split(512)])
    model.train(was_training)
    return float((pred == y).float().mean())


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
    """Train a :class:`DigitsClassifier` on the digits train split; deterministic given ``seed``.

    Plain torch loop: Adam (``lr``, cosine decay to 0), cross-entropy, mini-batches of
    ``batch_size`` in a seeded random order, random ±1-pixel shifts when ``augment``. The
    global RNG is untouched (initialisation runs under :func:`torch.random.fork_rng`). Runs on
    the CPU in float32; the same seed, thread count and torch build give the same weights.
    A quick mode (``epochs=5, lr=1e-2, batch_size=32, augment=False``) reaches about 97 % in
    about a second.

    Args:
        seed: seed of the split, the initialisation, the order and the augmentation.
        epochs: passes over the 1347 training images (40 ≈ 8 s on one CPU core).
        out_path: when given, ``{"state_dict", "meta"}`` is saved there atomically.
        num_threads: torch intra-op threads while training (restored afterwards); one thread
            is both the fastest for this tiny network and reproducible; ``None`` keeps the
            current setting.

    Returns:
        ``(model in eval mode, meta)`` with ``meta`` holding ``test_accuracy``, ``seed``,
        ``epochs`` and the other settings.
    """
    previous_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        model, meta = _train(seed, epochs, batch_size, lr, augment, verbose)
    finally:
        torch.set_num_threads(previous_threads)
    if out_path is not None:
        save_digits_classifier(model, out_path, meta)
    return model, meta


def _train(
    seed: int, epochs: int, batch_size: int, lr: float, augment: bool, verbose: bool
) -> tuple[DigitsClassifier, dict[str, Any]]:
    x_tr, y_tr, x_te, y_te = digits_dataset(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DigitsClassifier()
    g = torch.Generator().manual_seed(seed + 1)
    fit_classifier(
        model, x_tr, y_tr, generator=g, epochs=epochs, batch_size=batch_size, lr=lr,
        augment=_shift if augment else None, verbose=verbose,
    )  # fmt: skip
    meta = {
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "augment": augment,
        "n_train": int(x_tr.shape[0]),
        "n_test": int(x_te.shape[0]),
        "test_accuracy": evaluate_digits_classifier(model, x_te, y_te),
        "torch": str(torch.__version__),
    }
    return model, meta


def save_classifier(model: nn.Module, path: str | os.PathLike[str], meta: dict[str, Any]) -> Path:
    """Write ``{"state_dict", "meta"}`` to ``path`` atomically (temp file + rename)."""
    from lightning_ex2.io import save_torch

    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return save_torch(path, {"state_dict": state, "meta": meta})


def save_digits_classifier(
    model: DigitsClassifier, path: str | os.PathLike[str], meta: dict[str, Any]
) -> Path:
    """Write ``{"state_dict", "meta"}`` to ``path`` atomically (temp file + rename)."""
    return save_classifier(model, path, meta)


def load_classifier(model: M, path: Path, how_to_create: str, map_location: Any = "cpu") -> M:
    """``model`` (eval mode, frozen) with the weights of ``path`` (``{"state_dict"}`` or a
    bare state dict).

    Raises:
        FileNotFoundError: the file is missing; the message says ``how_to_create`` it.
        ValueError: the file does not hold weights of ``type(model)``.
    """
    name = type(model).__name__
    if not path.is_file():
        raise FileNotFoundError(f"{name} weights not found at {path}; {how_to_create}")
    blob = torch.load(path, map_location=map_location, weights_only=True)
    state = blob.get("state_dict") if isinstance(blob, dict) else None
    try:
        model.load_state_dict(state if state is not None else blob)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path} does not hold {name} weights: {exc}") from exc
    return model.eval().requires_grad_(False)


def fit_classifier(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    generator: torch.Generator,
    epochs: int,
    batch_size: int,
    lr: float,
    augment: Callable[[Tensor, torch.Generator], Tensor] | None = None,
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


def load_digits_classifier(
    path: str | os.PathLike[str] | None = None, map_location: Any = "cpu"
) -> DigitsClassifier:
    """A frozen :class:`DigitsClassifier` (eval mode) from ``path`` (default: shipped weights).

    Raises:
        FileNotFoundError: the file is missing; the message says how to create it.
        ValueError: the file does not hold DigitsClassifier weights.
    """
    path = Path(DEFAULT_WEIGHTS if path is None else path)
    how = (
        f"create them with `python scripts/train_digits_classifier.py --out {path}` "
        "(deterministic, about 10 s on a CPU)"
    )
    return load_classifier(DigitsClassifier(), path, how, map_location)
