"""FID, IS and KID of generated images against real ones: a scorer free of Lightning.

* **FID** (Heusel et al. 2017, arXiv 1706.08500): ``|mu_r - mu_g|^2 + Tr(S_r + S_g -
  2 (S_r S_g)^{1/2})`` between Gaussians fitted to features of real and generated images;
* **IS** (Salimans et al. 2016, arXiv 1606.03498): ``exp E_x KL(p(y|x) || p(y))`` from
  class logits, mean (and std) over ``is_splits`` splits;
* **KID** (Binkowski et al. 2018, arXiv 1801.01401): unbiased MMD^2 with the cubic
  polynomial kernel on the FID features, mean (and std) over random subsets.

The metric objects are :class:`torchmetrics.Metric` s: in a multi-device run every rank
feeds its own images and its shard of the real ones, and ``compute()`` all-gathers, so
the numbers are those of all ranks together. Real features are computed once.

Example:
    >>> import torch
    >>> from torch import nn
    >>> scorer = ImageScorer(nn.Flatten(), metrics=("fid",))
    >>> scorer.add_real(torch.rand(50, 1, 4, 4) * 2 - 1)
    >>> out = scorer.score([torch.rand(50, 1, 4, 4) * 2 - 1])
    >>> sorted(out), out["n_generated"]
    (['feature_extractor', 'fid', 'n_generated', 'n_real'], 50)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lightning_ex2.gan.features import NamedExtractor, TorchScriptInception, describe_extractor

METRICS = ("fid", "is", "kid")


def _probe(module: nn.Module, sample: Tensor) -> nn.Module:
    """Wrap ``module`` with its ``num_features`` found on real images ``sample``."""
    if isinstance(module, TorchScriptInception | NamedExtractor):  # size known; no probe
        return module
    with torch.no_grad():
        out = module(sample)
    if out.ndim < 2 or out.shape[0] != sample.shape[0]:
        raise ValueError(
            f"the extractor {describe_extractor(module)} returned shape {tuple(out.shape)} "
            f"for {sample.shape[0]} images; expected [B, F]"
        )
    return NamedExtractor(module, int(out.flatten(1).shape[1]), describe_extractor(module))


class ImageScorer:
    """FID / IS / KID of images ``[B, C, H, W]`` in ``[-1, 1]`` against real images.

    Args:
        features: network mapping images to features ``[B, F]`` (FID, KID).
        logits: network mapping images to class logits ``[B, K]`` (IS); needed for ``"is"``.
        metrics: subset of ``("fid", "is", "kid")``.
        is_splits: IS splits; ``kid_subsets`` / ``kid_subset_size``: KID subsets (the size
            is capped by the numbers of real and generated images).
        seed: seed of IS/KID's random permutations (the global RNG is left untouched).
    """

    def __init__(
        self,
        features: nn.Module,
        logits: nn.Module | None = None,
        metrics: Sequence[str] = ("fid",),
        is_splits: int = 10,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        seed: int = 0,
    ) -> None:
        bad = [m for m in metrics if m not in METRICS]
        if bad or not metrics:
            raise ValueError(f"`metrics` must be a non-empty subset of {METRICS}, got {metrics}")
        if "is" in metrics and logits is None:
            raise ValueError("metric 'is' needs `logits` (a module mapping images to logits)")
        self.features, self.logits = features, logits
        self.metrics = tuple(metrics)
        self.is_splits, self.kid_subsets, self.kid_subset_size = (
            is_splits,
            kid_subsets,
            kid_subset_size,
        )
        self.seed = seed
        self.n_real = 0
        self._fid: Any = None
        self._is: Any = None
        self._kid: Any = None

    @property
    def ready(self) -> bool:
        """Whether the real images were added."""
        return self.n_real > 0

    def add_real(self, shard: Tensor, n_real: int | None = None, batch_size: int = 256) -> None:
        """Build the metrics and feed this rank's real images ``shard [n, C, H, W]`` (once).

        ``n_real``: the number of real images over all ranks (default ``len(shard)``).
        """
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.inception import InceptionScore
        from torchmetrics.image.kid import KernelInceptionDistance

        device = shard.device
        sample = shard[:2]
        self.features = _probe(self.features.to(device).eval(), sample)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
            if "fid" in self.metrics:
                self._fid = FrechetInceptionDistance(
                    feature=self.features, reset_real_features=False, normalize=False
                ).to(device)
            if "kid" in self.metrics:
                self._kid = KernelInceptionDistance(
                    feature=self.features, subsets=self.kid_subsets,
                    subset_size=self.kid_subset_size, reset_real_features=False, normalize=False,
                ).to(device)  # fmt: skip
            if "is" in self.metrics:
                assert self.logits is not None
                self.logits = _probe(self.logits.to(device).eval(), sample)
                self._is = InceptionScore(
                    feature=self.logits, splits=self.is_splits, normalize=False
                ).to(device)
        with torch.no_grad():
            for chunk in shard.split(batch_size):
                for metric in (self._fid, self._kid):
                    if metric is not None:
                        metric.update(chunk, real=True)
        self.n_real = int(shard.shape[0] if n_real is None else n_real)

    @torch.no_grad()
    def score(
        self, images: Iterable[Tensor], total: Callable[[int], int] | None = None
    ) -> dict[str, Any]:
        """Scores of generated ``images`` (an iterable of ``[B, C, H, W]`` batches).

        ``total`` sums this rank's image count over ranks (multi-device; identity when
        ``None``); the call is collective when several ranks score. Returns plain Python
        values: ``fid``, ``is``, ``is_std``, ``kid``, ``kid_std`` (those asked for),
        ``feature_extractor``, ``is_extractor``, ``n_real``, ``n_generated``.
        """
        assert self.ready, "add_real() must run first"
        n_local, device = 0, torch.device("cpu")
        for imgs in images:
            device = imgs.device
            imgs = imgs.to(dtype=torch.float32)
            n_local += imgs.shape[0]
            for metric in (self._fid, self._kid):
                if metric is not None:
                    metric.update(imgs, real=False)
            if self._is is not None:
                self._is.update(imgs)
        n_generated = n_local if total is None else total(n_local)
        out: dict[str, Any] = {}
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            if self._fid is not None:
                out["fid"] = float(self._fid.compute()) if n_generated >= 2 else math.nan
                self._fid.reset()
            if self._kid is not None:
                self._kid.subset_size = max(2, min(self.kid_subset_size, n_generated, self.n_real))
                if n_generated >= 2:
                    mean, std = self._kid.compute()
                    out["kid"], out["kid_std"] = float(mean), float(std)
                else:
                    out["kid"] = out["kid_std"] = math.nan
                self._kid.reset()
            if self._is is not None:
                mean, std = self._is.compute()
                out["is"], out["is_std"] = float(mean), float(std)
                self._is.reset()
        out["feature_extractor"] = describe_extractor(self.features)
        if self._is is not None and self.logits is not None:
            out["is_extractor"] = describe_extractor(self.logits)
        out.update(n_real=self.n_real, n_generated=n_generated)
        return out
