"""Compatibility alias of :mod:`lightning_ex2.targets.gan`."""

from lightning_ex2.targets.gan import GANLatentTarget, read_calibration

__all__ = ["GANLatentTarget", "read_calibration"]
