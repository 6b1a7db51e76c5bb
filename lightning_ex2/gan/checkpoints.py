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
``torch.load(weights_only=True)`` (:func:`lightning_ex2.trust.load_torch`); a file that
needs full unpickling (which runs any code it holds) is refused unless the caller
passes ``trust_checkpoint=True`` — only for files you trust.

A file that does not fit gets an error that says what it holds, when its keys tell:
another variant (torch-mimicry's own ``SpectralNorm`` layers with ``sn_u``/``sn_sigma``
buffers, which its ``default=False`` path writes; a discriminator with or without spectral norm; a
generator given as the discriminator; mimicry's SAGAN, cGAN-PD, SSGAN, InfoMax-GAN or
48–128-pixel nets; the MNIST GAN vs its WGAN critic) is named together with what the
model expects and, where one fits, the class to use; other sizes (``ngf``, ``ndf``,
``nz``, ``latent_dim``, ``hidden``) are named with the values to build the model with.
Only files whose keys say nothing known get the list of missing/unexpected keys.

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

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from lightning_ex2.trust import load_torch

__all__ = ["extract_state_dict", "load_gan_checkpoint"]

_PREFIXES = ("generator.", "discriminator.")
_SHOW = 10


def _read(path: Path, trust: bool) -> Any:
    return load_torch(path, trust=trust, what=f"GAN checkpoint {path}")


def _old_weights_hint(path: Path) -> str:
    """For a path into ``lightning_ex2/weights/`` (where version 0.1.0 of the previous layout
    shipped the weights): where the shipped files are now; else ``""``."""
    if path.parent.parts[-2:] != ("lightning_ex2", "weights"):
        return ""
    return f" The shipped weights are in lightning_ex2/gan/weights/ (lightning_ex2/gan/weights/{path.name})."


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


# ------------------------------------------------------------ what a state dict holds
_MIMICRY_SN = (
    "layers spectrally normalised by torch-mimicry's own SpectralNorm class (buffers "
    "`sn_u`/`sn_sigma`: its SNConv2d/SNLinear with default=False, not its default)"
)
# label -> (what it is, the class of this package that loads it, or None)
_VARIANTS: dict[str, tuple[str, str | None]] = {
    "sagan": ("a SAGAN network (self-attention `attn_block`)", None),
    "infomax": ("an InfoMax-GAN discriminator (`local_feat_blocks`, `global_feat_blocks`)", None),
    "conditional-G": (
        "a class-conditional generator (conditional BatchNorm `*.b1.embed`, e.g. "
        "mimicry's cGAN-PD)",
        None,
    ),
    "head-D": (
        "a discriminator with an extra head `l_y` (class projection or rotation "
        "classifier, e.g. mimicry's cGAN-PD or SSGAN)",
        None,
    ),
    "large-D": (
        "a discriminator for images larger than 32×32 (`block5`..., e.g. mimicry's "
        "48/64/128-pixel nets)",
        None,
    ),
    "mimicry-sn": (_MIMICRY_SN, None),
    "resnet-G": (
        "a 32×32 ResNet generator (torch-mimicry's DCGAN/SNGAN layout: `l1`, "
        "`block2`..`block4`, `b5`, `c5`)",
        "DCGANGenerator32 or SNGANGenerator32",
    ),
    "resnet-D-sn": (
        "a 32×32 ResNet discriminator with spectral norm (torch.nn.utils.spectral_norm: "
        "`weight_orig`/`weight_u`/`weight_v`; mimicry's SNGAN)",
        "SNGANDiscriminator32",
    ),
    "resnet-D": (
        "a 32×32 ResNet discriminator without spectral norm (plain `weight`; mimicry's DCGAN)",
        "DCGANDiscriminator32",
    ),
    "mnist-G": ("the paper's MNIST generator (`l1.*`, `conv_blocks.*`)", "MNISTGenerator"),
    "mnist-D": (
        "the paper's MNIST discriminator (`model.*`, `adv_layer.0` with bias)",
        "MNISTDiscriminator",
    ),
    "mnist-critic": (
        "the paper's MNIST WGAN critic (`model.*`, `adv_layer.0` without bias)",
        "MNISTDiscriminator(bias=False)",
    ),
    "digits-G": ("an 8×8 digits generator MLP (`net.*`, 64 outputs)", "DigitsGenerator"),
    "digits-D": ("an 8×8 digits discriminator MLP (`net.*`, 1 output)", "DigitsDiscriminator"),
}


def _variant(sd: Mapping[str, Any]) -> str | None:
    """Which of :data:`_VARIANTS` the keys of ``sd`` say it is, or ``None``."""
    keys = set(sd)

    def starts(*prefixes: str) -> bool:
        return any(k.startswith(prefixes) for k in keys)

    def ends(*suffixes: str) -> bool:
        return any(k.endswith(suffixes) for k in keys)

    if starts("attn_block."):
        return "sagan"
    if starts("local_feat_blocks.", "global_feat_blocks."):
        return "infomax"
    if starts("l1.") and any(".b1.embed." in k for k in keys):
        return "conditional-G"
    if starts("l_y."):
        return "head-D"
    if starts("block1.") and starts("block5."):
        return "large-D"
    if ends(".sn_u", ".sn_sigma"):
        return "mimicry-sn"
    if starts("l1.") and starts("block2.b1.") and starts("c5."):
        return "resnet-G"
    if starts("block1.c1.") and starts("l5."):
        return "resnet-D-sn" if ends(".weight_orig") else "resnet-D"
    if starts("l1.0.") and starts("conv_blocks."):
        return "mnist-G"
    if starts("model.0.") and starts("adv_layer.0."):
        return "mnist-D" if "adv_layer.0.bias" in keys else "mnist-critic"
    last = sd.get("net.4.weight")
    if isinstance(last, Tensor) and last.dim() == 2 and starts("net.0."):
        return "digits-D" if last.shape[0] == 1 else "digits-G"
    return None


def _sizes(variant: str | None, sd: Mapping[str, Any]) -> dict[str, int]:
    """The constructor sizes a state dict of ``variant`` was built with (where known)."""

    def dim(key: str, axis: int) -> int | None:
        for k in (key, key.replace(".weight", ".weight_orig")):
            v = sd.get(k)
            if isinstance(v, Tensor) and v.dim() > axis:
                return int(v.shape[axis])
        return None

    if variant == "resnet-G":
        sizes = {"nz": dim("l1.weight", 1), "ngf": dim("block2.b1.weight", 0)}
        rows = dim("l1.weight", 0)
        if rows and sizes["ngf"]:
            sizes["bottom_width"] = round(math.sqrt(rows / sizes["ngf"]))
    elif variant in ("resnet-D", "resnet-D-sn"):
        sizes = {"ndf": dim("block1.c1.weight", 0)}
    elif variant == "mnist-G":
        sizes = {"latent_dim": dim("l1.0.weight", 1)}
    elif variant == "digits-G":
        sizes = {"latent_dim": dim("net.0.weight", 1), "hidden": dim("net.0.weight", 0)}
    elif variant == "digits-D":
        sizes = {"hidden": dim("net.2.weight", 0)}
    else:
        sizes = {}
    return {k: v for k, v in sizes.items() if v is not None}


def _variant_message(module: nn.Module, path: Path, sd: Mapping[str, Any]) -> str | None:
    """A short account of a known variant or size mismatch, else ``None``."""
    cls = type(module).__name__
    own = module.state_dict()
    have, want = _variant(sd), _variant(own)
    head = f"checkpoint {path} does not fit {cls}:"
    if have is None:
        return None
    what, use = _VARIANTS[have]
    if have != want:
        expected = _VARIANTS[want][0] if want is not None else f"the layout of {cls}"
        text = f"{head} it holds {what}, but {cls} expects {expected}."
        if use is not None:
            text += f" Load it into {use}."
            if want is not None and have.endswith("-G") != want.endswith("-G"):
                text += " (Generator and discriminator files swapped?)"
        else:
            text += " This package has no class for that variant."
        return text
    theirs, ours = _sizes(have, sd), _sizes(want, own)
    differ = {k: v for k, v in theirs.items() if k in ours and ours[k] != v}
    if differ:
        given = ", ".join(f"{k}={v}" for k, v in theirs.items())
        built = ", ".join(f"{k}={ours[k]}" for k in theirs if k in ours)
        fix = ", ".join(f"{k}={v}" for k, v in differ.items())
        return (
            f"{head} it holds {what} with {given}, but the model was built with {built}; "
            f"build it with {fix}."
        )
    return None


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
    variant = _variant_message(module, path, sd)
    if variant is not None:
        return variant

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
    module: nn.Module,
    path: str | os.PathLike,
    prefix: str | None = None,
    trust_checkpoint: bool = False,
) -> nn.Module:
    """Load the weights in ``path`` into ``module`` (strictly) and return ``module``.

    Args:
        module: the generator or discriminator, built with the checkpoint's sizes.
        path: a mimicry checkpoint, a plain state dict or a ``GANModule`` Lightning
            checkpoint (``.ckpt``).
        prefix: for Lightning checkpoints, ``"generator."`` or ``"discriminator."``;
            default: whichever fits ``module``.
        trust_checkpoint: unpickle a file that needs more than tensors and plain values
            (it can run any code it holds: only for a file you trust).

    Raises:
        FileNotFoundError: ``path`` does not exist (the message says what to put there).
        lightning_ex2.trust.UntrustedFile: the file needs full unpickling and
            ``trust_checkpoint`` is not set (one line naming the opt-in).
        lightning_ex2.trust.DamagedFile: truncated, corrupted or not a torch file.
        ValueError: keys or shapes do not match; names the variant the file holds
            and what ``module`` expects, or the sizes to build it with, or (for files
            whose keys say nothing known) lists the first missing and unexpected keys.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"GAN checkpoint not found: {path}.{_old_weights_hint(path)} Put there the weights "
            f"of a {type(module).__name__}: a torch-mimicry checkpoint "
            "({'model_state_dict': ...}, e.g. the paper's netG_100000_steps.pth / "
            "netD_100000_steps.pth), a plain state_dict saved with torch.save, or a "
            "Lightning checkpoint of lightning_ex2.gan.GANModule (train one with "
            "`lightning-ex2 fit --config configs/gan/digits_gan_train.yaml`)."
        )
    checkpoint = _read(path, trust_checkpoint)
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
