"""Image DataModules: real images for GAN training and for FID/IS (the "target stream").

Nothing downloads: every module reads files the user put in ``data_dir``
(a missing file is a ``FileNotFoundError`` that says which files go where), except
:class:`DigitsDataModule`, scikit-learn's 8×8 digits bundled with the package
(the default of the CPU demos).

* :class:`DigitsDataModule` — ``sklearn.datasets.load_digits``: 1797 images ``[1, 8, 8]``.
* :class:`MNISTDataModule` — IDX files ``train-images-idx3-ubyte`` /
  ``t10k-images-idx3-ubyte`` (optionally ``.gz``), in ``data_dir`` or ``data_dir/MNIST/raw``.
* :class:`FashionMNISTDataModule` — the same IDX files of Fashion-MNIST, by default from
  ``/usr/share/datasets/fashion-mnist`` (Debian: ``apt-get install dataset-fashion-mnist``).
* :class:`CIFAR10DataModule` — the python pickles ``data_batch_1..5`` / ``test_batch`` of
  ``cifar-10-python.tar.gz``, in ``data_dir`` or ``data_dir/cifar-10-batches-py``.
* :class:`ImageFolderDataModule` — every PNG/JPEG under ``data_dir`` (PIL).

Every module yields batches of images ``[B, C, H, W]``, float32 in ``[-1, 1]``, and
has :meth:`~ImageDataModule.real_images`. Common options: ``batch_size``,
``num_workers``, ``image_size`` (bilinear resize, antialiased when shrinking),
``channels`` (1 <-> 3 conversion), ``n_images`` (use only the first ``n`` of a seeded
shuffle), ``val_fraction`` (held-out share for ``val_dataloader``), ``seed``.

Example:
    >>> dm = DigitsDataModule(batch_size=16, image_size=16)
    >>> dm.setup("fit")
    >>> x = next(iter(dm.train_dataloader()))
    >>> x.shape, bool(x.min() >= -1 and x.max() <= 1)
    (torch.Size([16, 1, 16, 16]), True)
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "CIFAR10DataModule",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "ImageTensorDataset",
    "MNISTDataModule",
    "read_cifar10_batches",
    "read_idx_images",
    "read_idx_labels",
    "resize",
]

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class ImageTensorDataset(Dataset):
    """Items ``images[i]`` (``[C, H, W]``) of one tensor ``[N, C, H, W]``."""

    def __init__(self, images: Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Tensor:
        return self.images[i]


def resize(x: Tensor, size: int) -> Tensor:
    """Bilinear resize of ``[N, C, H, W]`` to ``size × size`` (antialiased when shrinking)."""
    if tuple(x.shape[-2:]) == (size, size):
        return x
    shrink = size < max(x.shape[-2:])
    return F.interpolate(
        x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink
    )


# ----------------------------------------------------------------------- readers
def read_idx_images(path: str | Path) -> np.ndarray:
    """MNIST IDX image file (``magic 2051``, optionally gzipped) -> ``uint8 [N, 28, 28]``."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = (int.from_bytes(raw[i : i + 4], "big") for i in range(0, 16, 4))
    if magic != 2051 or len(raw) != 16 + n * rows * cols:
        raise ValueError(
            f"{path} is not an MNIST IDX image file (magic {magic}, expected 2051, "
            f"{len(raw)} bytes for {n}×{rows}×{cols} images)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols).copy()


def read_idx_labels(path: str | Path) -> np.ndarray:
    """MNIST IDX label file (``magic 2049``, optionally gzipped) -> ``uint8 [N]``."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic, n = (int.from_bytes(raw[i : i + 4], "big") for i in (0, 4))
    if magic != 2049 or len(raw) != 8 + n:
        raise ValueError(
            f"{path} is not an MNIST IDX label file (magic {magic}, expected 2049, "
            f"{len(raw)} bytes for {n} labels)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=8).copy()


def read_cifar10_batches(paths: list[Path]) -> np.ndarray:
    """CIFAR-10 python batches (pickles with ``b"data"`` ``[N, 3072]``) -> ``uint8 [N, 3, 32, 32]``.

    The files are unpickled: only read the official ``cifar-10-python.tar.gz`` contents.
    """
    arrays = []
    for path in paths:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        data = batch.get(b"data", batch.get("data")) if isinstance(batch, dict) else None
        if data is None:
            raise ValueError(f"{path} is not a CIFAR-10 python batch (no 'data' entry)")
        arrays.append(np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32))
    return np.concatenate(arrays)


# ------------------------------------------------------------------------- base
class ImageDataModule(pl.LightningDataModule):
    """Base class: subclasses implement :meth:`load` (``[N, C, H, W]`` float in ``[0, 1]``).

    Args:
        batch_size: images per training batch (the last, incomplete batch is dropped).
        num_workers: DataLoader workers.
        image_size: resize to ``image_size × image_size`` (``None``: keep).
        channels: convert to 1 (mean of RGB) or 3 (repeat gray) channels (``None``: keep).
        n_images: keep only this many images (first of a seeded shuffle); ``None``: all.
        val_fraction: share of the kept images held out for ``val_dataloader``.
        seed: seed of the shuffle and split.
    """

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        image_size: int | None = None,
        channels: int | None = None,
        n_images: int | None = None,
        val_fraction: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        for name, value in (("batch_size", batch_size), ("n_images", n_images)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"data.{name} must be a positive integer, got {value!r}")
        if image_size is not None and (not isinstance(image_size, int) or image_size < 1):
            raise ValueError(f"data.image_size must be a positive integer, got {image_size!r}")
        if channels not in (None, 1, 3):
            raise ValueError(f"data.channels must be 1, 3 or null, got {channels!r}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {val_fraction!r}")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.image_size = image_size
        self.channels = channels
        self.n_images = n_images
        self.val_fraction = float(val_fraction)
        self.seed = seed
        self.train_images: Tensor | None = None
        self.val_images: Tensor | None = None

    def load(self) -> Tensor:
        """All images of the source, ``[N, C, H, W]``, float in ``[0, 1]``."""
        raise NotImplementedError

    def _transform(self, x: Tensor) -> Tensor:
        if self.channels == 3 and x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif self.channels == 1 and x.shape[1] == 3:
            x = x.mean(1, keepdim=True)
        if self.image_size is not None:
            x = resize(x, self.image_size)
        return (x * 2 - 1).clamp(-1, 1).contiguous()

    def setup(self, stage: str | None = None) -> None:
        if self.train_images is not None:
            return
        images = self.load()
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.seed))
        if self.n_images is not None:
            order = order[: self.n_images]
        images = self._transform(images[order].float())
        n_val = round(self.val_fraction * len(images))
        self.val_images, self.train_images = images[:n_val], images[n_val:]
        if len(self.train_images) < self.batch_size:
            raise ValueError(
                f"data: {len(self.train_images)} training images, fewer than "
                f"data.batch_size={self.batch_size}"
            )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the images (after :meth:`setup`)."""
        self.setup()
        return tuple(self.train_images.shape[1:])  # type: ignore[union-attr,return-value]

    def real_images(self, n: int) -> Tensor:
        """``n`` real training images ``[n, C, H, W]`` in ``[-1, 1]`` (the same ones every call)."""
        self.setup()
        available = len(self.train_images)  # type: ignore[arg-type]
        if n > available:
            raise ValueError(f"real_images: asked for {n} images, only {available} available")
        return self.train_images[:n]  # type: ignore[index]

    def _loader(self, images: Tensor, train: bool) -> DataLoader:
        return DataLoader(
            ImageTensorDataset(images),
            batch_size=self.batch_size,
            shuffle=train,
            drop_last=train,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return self._loader(self.train_images, train=True)  # type: ignore[arg-type]

    def val_dataloader(self) -> DataLoader | list:
        """Held-out images (``val_fraction``); no validation (``[]``) when there are none."""
        self.setup()
        if not len(self.val_images):  # type: ignore[arg-type]
            return []
        return self._loader(self.val_images, train=False)  # type: ignore[arg-type]


def _first_existing(candidates: list[Path]) -> Path | None:
    return next((p for p in candidates if p.is_file()), None)


def _check_dir(data_dir: str | None, cls: str, expected: str) -> Path:
    if data_dir is None:
        raise ValueError(f"{cls}: data.data_dir is required ({expected})")
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{cls}: data_dir {path} does not exist. {expected}")
    return path


# ----------------------------------------------------------------------- sources
class DigitsDataModule(ImageDataModule):
    """scikit-learn's bundled 8×8 digits (1797 images ``[1, 8, 8]``, offline)."""

    def load(self) -> Tensor:
        from sklearn.datasets import load_digits

        images = load_digits().images.astype(np.float32) / 16.0  # [N, 8, 8] in [0, 1]
        return torch.from_numpy(images)[:, None]


class _SplitDataModule(ImageDataModule):
    """An :class:`ImageDataModule` read from ``data_dir``, its ``"train"`` or ``"test"`` split."""

    def __init__(self, data_dir: str | None = None, split: str = "train", **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        if split not in ("train", "test"):
            raise ValueError(f"data.split must be 'train' or 'test', got {split!r}")
        self.data_dir, self.split = data_dir, split


class MNISTDataModule(_SplitDataModule):
    """MNIST from its IDX files (``[1, 28, 28]``).

    Args:
        data_dir: folder holding ``train-images-idx3-ubyte`` (``split="train"``) or
            ``t10k-images-idx3-ubyte`` (``split="test"``), optionally gzipped, directly
            or under ``MNIST/raw/`` (torchvision's layout).
        split: ``"train"`` or ``"test"``.
        **kwargs: see :class:`ImageDataModule`.
    """

    def load(self) -> Tensor:
        stem = "train-images-idx3-ubyte" if self.split == "train" else "t10k-images-idx3-ubyte"
        expected = (
            f"Put the MNIST file {stem} (or {stem}.gz, from the MNIST distribution) in "
            "data_dir or in data_dir/MNIST/raw/."
        )
        root = _check_dir(self.data_dir, "MNISTDataModule", expected)
        folders = [root, root / "MNIST" / "raw"]
        found = _first_existing([d / name for d in folders for name in (stem, f"{stem}.gz")])
        if found is None:
            raise FileNotFoundError(f"MNISTDataModule: no {stem}[.gz] in {root}. {expected}")
        return torch.from_numpy(read_idx_images(found).astype(np.float32) / 255.0)[:, None]


#: Where Debian's ``dataset-fashion-mnist`` package puts the IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_INSTALL = "apt-get install dataset-fashion-mnist"


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST (Xiao et al. 2017) from its IDX files (``[1, 28, 28]``, 10 clothing classes).

    Args:
        data_dir: folder holding ``train-images-idx3-ubyte.gz`` / ``t10k-images-idx3-ubyte.gz``
            (or uncompressed); default ``/usr/share/datasets/fashion-mnist``, where
            ``apt-get install dataset-fashion-mnist`` puts them.
        split: ``"train"`` (60000 images) or ``"test"`` (10000).
        **kwargs: see :class:`ImageDataModule`.
    """

    def __init__(
        self, data_dir: str | None = FASHION_MNIST_DIR, split: str = "train", **kwargs
    ) -> None:  # type: ignore[no-untyped-def]
        super().__init__(data_dir=data_dir, split=split, **kwargs)

    def idx_file(self, kind: str) -> Path:
        """The IDX file of ``kind`` (``"images"``/``"labels"``) of the split; clear error if absent."""
        if kind not in ("images", "labels"):
            raise ValueError(
                f"FashionMNISTDataModule.idx_file: kind must be 'images' or 'labels', got {kind!r}"
            )
        prefix = "train" if self.split == "train" else "t10k"
        stem = f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"
        root = Path(self.data_dir if self.data_dir is not None else FASHION_MNIST_DIR).expanduser()
        found = _first_existing([root / stem, root / f"{stem}.gz"])
        if found is None:
            raise FileNotFoundError(
                f"FashionMNISTDataModule: no {root / stem}.gz (nor {stem}) — install the "
                f"Fashion-MNIST files with `{FASHION_MNIST_INSTALL}` (they go to "
                f"{FASHION_MNIST_DIR}) or set data.data_dir to a folder holding them"
            )
        return found

    def load(self) -> Tensor:
        images = read_idx_images(self.idx_file("images"))
        return torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]

    def labels(self) -> Tensor:
        """Class labels ``int64 [N]`` of the split, in file order (not shuffled, not subset)."""
        return torch.from_numpy(read_idx_labels(self.idx_file("labels")).astype(np.int64))


class CIFAR10DataModule(_SplitDataModule):
    """CIFAR-10 from its python batches (``[3, 32, 32]``).

    Args:
        data_dir: the extracted ``cifar-10-batches-py`` folder or its parent, holding
            ``data_batch_1`` ... ``data_batch_5`` (``split="train"``) or ``test_batch``.
        split: ``"train"`` or ``"test"``.
        **kwargs: see :class:`ImageDataModule`.
    """

    def load(self) -> Tensor:
        names = (
            [f"data_batch_{i}" for i in range(1, 6)] if self.split == "train" else ["test_batch"]
        )
        expected = (
            f"Put the CIFAR-10 python batches {', '.join(names)} (extracted from "
            "cifar-10-python.tar.gz) in data_dir or in data_dir/cifar-10-batches-py/."
        )
        root = _check_dir(self.data_dir, "CIFAR10DataModule", expected)
        folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise FileNotFoundError(
                f"CIFAR10DataModule: missing {', '.join(missing)} in {folder}. {expected}"
            )
        data = read_cifar10_batches([folder / n for n in names])
        return torch.from_numpy(data.astype(np.float32) / 255.0)


class ImageFolderDataModule(ImageDataModule):
    """Every ``.png``/``.jpg``/``.jpeg`` under ``data_dir`` (recursively, sorted), via PIL.

    Images are read as RGB (or grayscale with ``channels=1``); images of different
    sizes need ``image_size``.
    """

    def __init__(self, data_dir: str | None = None, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)
        self.data_dir = data_dir

    def load(self) -> Tensor:
        from PIL import Image

        expected = "Put PNG or JPEG images (any sub-folders) in data_dir."
        root = _check_dir(self.data_dir, "ImageFolderDataModule", expected)
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in _IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"ImageFolderDataModule: no images in {root}. {expected}")
        mode = "L" if self.channels == 1 else "RGB"
        images = []
        for path in files:
            with Image.open(path) as img:
                array = np.asarray(img.convert(mode), dtype=np.float32) / 255.0
            x = torch.from_numpy(array.reshape(*array.shape[:2], -1)).permute(2, 0, 1)
            if self.image_size is not None:
                x = resize(x[None], self.image_size)[0]
            images.append(x)
        sizes = {tuple(x.shape) for x in images}
        if len(sizes) > 1:
            raise ValueError(
                f"ImageFolderDataModule: images of different sizes {sorted(sizes)[:3]} in "
                f"{root}; set data.image_size"
            )
        return torch.stack(images)
