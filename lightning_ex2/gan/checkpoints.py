"""Load GAN weights from the files people actually have.

:func:`load_gan_checkpoint` accepts

* a torch-mimicry checkpoint ``{"model_state_dict": ..., "optimizer_state_dict": ...,
  "global_step": ...}`` — the format of the paper's CIFAR-10 files
  (``netG_100000_steps.pth``, ``netD_100000_steps.pth``, ...) and of the
  ``generator.pt``/``discriminator.pt`` that :meth:`GANModule.save_generator_discriminator
  <lightning_ex2.gan.GANModule.save_generator_discriminator>` writes;
* a plain ``state_dict``;
* a Lightning checkpoint of :class:`~lightning_ex2.gan.GANModule` (``"state_dict"`` with
  keys ``generator.*`` and ``discriminator.*``; the half that fits ``module`` is taken,
  or the one named by ``prefix``).

A ``module.`` prefix (``nn.DataParallel``) is stripped. Files are read with
``torch.load(weights_only=True)`` first; a Lightning checkpoint whose hyperparameters
need full unpickling is then re-read with ``weights_only=False`` — only load files you trust.

Example:
    >>> import tempfile, torch
    >>> from lightning_ex2.gan import DigitsGenerator
    >>> g = DigitsGenerator()
    >>> path = tempfile.mkdtemp() + "/netG.pth"
    >>> torch.save({"model_state_dict": g.state_dict()}, path)
    >>> load_gan_checkpoint(DigitsGenerator(), path).latent_dim
    2
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["extract_state_dict", "load_gan_checkpoint"]

_PREFIXES = ("generator.", "discriminator.")
_SHOW = 10


def _read(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        return torch.load(path, map_location="cpu", weights_only=False)


def _strip(sd: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}


def extract_state_dict(
    checkpoint: Mapping[str, Any], module: nn.Module, prefix: str | None = None
) -> dict[str, Tensor]:
    """The state dict meant for ``module`` inside a loaded checkpoint (see module docstring).

    ``prefix`` (e.g. ``"generator."``) selects the sub-dict of a Lightning checkpoint;
    without it the prefix whose keys match ``module``'s best is used.
    """
    if "model_state_dict" in checkpoint:
        sd = dict(checkpoint["model_state_dict"])
    elif "state_dict" in checkpoint and isinstance(checkpoint["state_dict"], Mapping):
        sd = dict(checkpoint["state_dict"])
    else:
        sd = dict(checkpoint)
    if prefix is not None:
        return _strip(sd, prefix)
    if sd and all(k.startswith("module.") for k in sd):
        sd = _strip(sd, "module.")
    own = module.state_dict()
    if not set(own) & set(sd):
        candidates = [_strip(sd, p) for p in _PREFIXES if any(k.startswith(p) for k in sd)]
        if candidates:
            sd = max(candidates, key=lambda c: _fit_score(own, c))
    return sd


def _fit_score(own: Mapping[str, Tensor], sd: Mapping[str, Any]) -> int:
    """Keys of ``sd`` with the name and shape ``own`` expects, minus the others."""
    fits = sum(1 for k, v in sd.items() if k in own and getattr(v, "shape", None) == own[k].shape)
    return 2 * fits - len(sd) - len(own)


def _mismatch_message(module: nn.Module, path: Path, sd: Mapping[str, Tensor]) -> str | None:
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [
        f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in sd and isinstance(sd[k], Tensor) and sd[k].shape != own[k].shape
    ]
    if not (missing or unexpected or shapes):
        return None

    def show(title: str, items: list[str]) -> str:
        more = f" ... and {len(items) - _SHOW} more" if len(items) > _SHOW else ""
        return f"\n  {title} ({len(items)}): {', '.join(items[:_SHOW])}{more}"

    text = f"checkpoint {path} does not fit {type(module).__name__}:"
    for title, items in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("shape mismatches", shapes),
    ):
        if items:
            text += show(title, items)
    return text + "\n  (check the architecture and its ngf/ndf/latent_dim arguments)"


def load_gan_checkpoint(
    module: nn.Module, path: str | os.PathLike, prefix: str | None = None
) -> nn.Module:
    """Load the weights in ``path`` into ``module`` (strictly) and return ``module``.

    Args:
        module: the generator or discriminator, built with the checkpoint's sizes.
        path: a mimicry checkpoint, a plain state dict or a ``GANModule`` Lightning
            checkpoint (``.ckpt``).
        prefix: for Lightning checkpoints, ``"generator."`` or ``"discriminator."``;
            default: whichever fits ``module``.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message says what to put there).
        ValueError: keys or shapes do not match; lists the first missing and
            unexpected keys.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"GAN checkpoint not found: {path}. Put there the weights of a "
            f"{type(module).__name__}: a torch-mimicry checkpoint "
            "({'model_state_dict': ...}, e.g. the paper's netG_100000_steps.pth / "
            "netD_100000_steps.pth), a plain state_dict saved with torch.save, or a "
            "Lightning checkpoint of lightning_ex2.gan.GANModule (train one with "
            "`lightning-ex2 fit --config configs/gan/digits_gan_train.yaml`)."
        )
    checkpoint = _read(path)
    if not isinstance(checkpoint, Mapping):
        raise ValueError(
            f"checkpoint {path} holds a {type(checkpoint).__name__}, expected a state dict"
        )
    sd = extract_state_dict(checkpoint, module, prefix)
    message = _mismatch_message(module, path, sd)
    if message is not None:
        raise ValueError(message)
    module.load_state_dict(sd, strict=True)
    return module
