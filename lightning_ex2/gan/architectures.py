"""Compatibility alias of :mod:`lightning_ex2.networks.architectures`."""

from lightning_ex2.networks import architectures as _new
from lightning_ex2.networks.architectures import *  # noqa: F403

__all__ = list(_new.__all__)
