"""Fashion-MNIST data: IDX reader, DataModule splits and errors (the GAN nets, classifier,
configs and table machinery are in ``networks/``, ``metrics/``, ``cli/``, ``scripts/``).

Synthetic IDX files written here; the Debian package is never needed (CI is offline).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_ex2.gan import FashionMNISTDataModule
from lightning_ex2.gan.data import read_idx_images, read_idx_labels
from tests.fashion_data import synthetic


def test_idx_reader_round_trip(fashion_dir: Path) -> None:
    x, y = synthetic(96)
    assert np.array_equal(read_idx_images(fashion_dir / "train-images-idx3-ubyte.gz"), x)
    assert np.array_equal(read_idx_labels(fashion_dir / "train-labels-idx1-ubyte.gz"), y)


def test_idx_reader_rejects_labels_as_images(fashion_dir: Path) -> None:
    with pytest.raises(ValueError, match="magic 2049, expected 2051"):
        read_idx_images(fashion_dir / "train-labels-idx1-ubyte.gz")
    with pytest.raises(ValueError, match="magic 2051, expected 2049"):
        read_idx_labels(fashion_dir / "train-images-idx3-ubyte.gz")


def test_datamodule_reads_splits(fashion_dir: Path) -> None:
    dm = FashionMNISTDataModule(data_dir=str(fashion_dir), batch_size=16, seed=3)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (16, 1, 28, 28)
    assert batch.min() >= -1 and batch.max() <= 1
    assert dm.image_shape == (1, 28, 28)
    test = FashionMNISTDataModule(data_dir=str(fashion_dir), split="test", batch_size=8)
    assert test.load().shape == (40, 1, 28, 28)
    assert torch.equal(test.labels(), torch.from_numpy(synthetic(40, seed=1)[1]).long())


def test_missing_file_names_path_and_apt_command(tmp_path: Path) -> None:
    dm = FashionMNISTDataModule(data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError) as info:
        dm.setup("fit")
    message = str(info.value)
    assert str(tmp_path / "nowhere" / "train-images-idx3-ubyte") in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_bad_split_and_kind_named(fashion_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"data\.split"):
        FashionMNISTDataModule(split="validation")
    with pytest.raises(ValueError, match="kind must be"):
        FashionMNISTDataModule(data_dir=str(fashion_dir)).idx_file("pixels")
