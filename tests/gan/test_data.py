"""Image DataModules (digits, MNIST IDX, CIFAR-10 pickles, image folders) on small synthetic files."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest
import torch

from lightning_ex2.gan import (
    CIFAR10DataModule,
    DigitsDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
)


# ---------------------------------------------------------------------- image data
def test_digits_datamodule():
    dm = DigitsDataModule(batch_size=50, val_fraction=0.1, seed=3)
    dm.setup("fit")
    assert len(dm.train_images) + len(dm.val_images) == 1797 and len(dm.val_images) == 180
    x = next(iter(dm.train_dataloader()))
    assert x.shape == (50, 1, 8, 8) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.min() == -1
    torch.testing.assert_close(dm.real_images(10), dm.real_images(10))
    big = DigitsDataModule(image_size=32, channels=3, n_images=20, batch_size=4)
    assert big.real_images(20).shape == (20, 3, 32, 32) and big.image_shape == (3, 32, 32)
    with pytest.raises(ValueError, match="only 20"):
        big.real_images(21)


def _write_idx(path, images: np.ndarray, compress: bool) -> None:
    n, h, w = images.shape
    raw = b"".join(v.to_bytes(4, "big") for v in (2051, n, h, w)) + images.tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_idx_reader(tmp_path, compress):
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    name = "train-images-idx3-ubyte" + (".gz" if compress else "")
    _write_idx(raw / name, images, compress)
    dm = MNISTDataModule(data_dir=str(tmp_path), batch_size=2, seed=0)
    x = dm.real_images(6)
    assert x.shape == (6, 1, 28, 28)
    order = torch.randperm(6, generator=torch.Generator().manual_seed(0))
    expected = torch.from_numpy(images).float()[order][:, None] / 255 * 2 - 1
    torch.testing.assert_close(x, expected)


def test_cifar10_pickle_reader(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    data = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data[name] = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data[name], b"labels": [0, 1, 2]}, f)
    train = CIFAR10DataModule(data_dir=str(tmp_path), batch_size=5)
    train.setup()
    assert train.train_images.shape == (15, 3, 32, 32)
    test = CIFAR10DataModule(data_dir=str(folder), split="test", batch_size=3, n_images=3)
    x = test.real_images(3)
    order = torch.randperm(3, generator=torch.Generator().manual_seed(0))
    expected = torch.from_numpy(data["test_batch"]).float().view(3, 3, 32, 32)[order]
    torch.testing.assert_close(x, expected / 255 * 2 - 1)


def test_missing_data_names_expected_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        MNISTDataModule(data_dir=str(tmp_path)).setup()
    with pytest.raises(FileNotFoundError, match=r"does not exist.*t10k-images-idx3-ubyte"):
        MNISTDataModule(data_dir=str(tmp_path / "absent"), split="test").setup()
    (tmp_path / "data_batch_1").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"missing data_batch_2, .*data_batch_5"):
        CIFAR10DataModule(data_dir=str(tmp_path)).setup()
    with pytest.raises(FileNotFoundError, match="PNG or JPEG"):
        ImageFolderDataModule(data_dir=str(tmp_path)).setup()


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    (tmp_path / "sub").mkdir()
    for i, size in enumerate([(10, 12), (12, 10), (10, 10)]):
        array = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(array).save(tmp_path / ("sub" if i else ".") / f"im{i}.png")
    with pytest.raises(ValueError, match="image_size"):
        ImageFolderDataModule(data_dir=str(tmp_path)).setup()
    dm = ImageFolderDataModule(data_dir=str(tmp_path), image_size=8, batch_size=2)
    x = dm.real_images(3)
    assert x.shape == (3, 3, 8, 8) and x.min() >= -1 and x.max() <= 1
    gray = ImageFolderDataModule(data_dir=str(tmp_path), image_size=8, channels=1, batch_size=2)
    assert gray.real_images(3).shape == (3, 1, 8, 8)
