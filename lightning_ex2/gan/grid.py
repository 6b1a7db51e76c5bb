"""Compatibility alias of :mod:`lightning_ex2.image_grid`."""

from lightning_ex2.image_grid import image_grid

__all__ = ["image_grid"]
