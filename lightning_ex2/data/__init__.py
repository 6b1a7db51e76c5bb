"""DataModules: chain populations, and real images for GAN training and FID/IS."""

from lightning_ex2.data.chains import ChainDataModule, ChainDataset
from lightning_ex2.data.images import (
    CIFAR10DataModule,
    DigitsDataModule,
    FashionMNISTDataModule,
    ImageDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
)

__all__ = [
    "CIFAR10DataModule",
    "ChainDataModule",
    "ChainDataset",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "MNISTDataModule",
]
