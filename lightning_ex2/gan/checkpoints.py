"""Compatibility alias of :mod:`lightning_ex2.networks.checkpoints`."""

from lightning_ex2.networks.checkpoints import extract_state_dict, load_gan_checkpoint

__all__ = ["extract_state_dict", "load_gan_checkpoint"]
