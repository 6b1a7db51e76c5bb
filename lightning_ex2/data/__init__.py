"""DataModules: chain populations (and, later, real images for FID/IS)."""

from lightning_ex2.data.chains import ChainDataModule, ChainDataset

__all__ = ["ChainDataModule", "ChainDataset"]
