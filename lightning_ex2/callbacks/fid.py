"""FID, IS and KID of the images a GAN-latent sampler produces, on torchmetrics.

:class:`ImageQualityMetrics` decodes chain positions ``z`` with ``pl_module.target.decode(z)``
(``[n, C, H, W]`` in ``[-1, 1]``) and scores them against real images:

* **FID**, Fréchet Inception Distance (Heusel, Ramsauer, Unterthiner, Nessler, Hochreiter 2017,
  "GANs trained by a two time-scale update rule converge to a local Nash equilibrium",
  arXiv 1706.08500): ``|μ_r − μ_g|² + Tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^{1/2})`` between Gaussians
  fitted to features of real and generated images;
* **IS**, Inception Score (Salimans, Goodfellow, Zaremba, Cheung, Radford, Chen 2016, "Improved
  techniques for training GANs", arXiv 1606.03498): ``exp E_x KL(p(y|x) || p(y))`` from class
  logits, mean (and std) over ``is_splits`` splits, in ``[1, K]``;
* **KID**, Kernel Inception Distance (Bińkowski, Sutherland, Arbel, Gretton 2018, "Demystifying
  MMD GANs", arXiv 1801.01401): unbiased MMD² with the cubic polynomial kernel on the same
  features as FID, mean (and std) over random subsets.

The metric objects are :class:`torchmetrics.Metric` s: every rank feeds its own chains and its
shard of the real images, ``compute()`` all-gathers the states, so a multi-device run gives
the numbers of all chains together. Real-image features are computed once
(``reset_real_features=False``) and reused at every evaluation.

Feature networks (``feature_extractor``), each taking images ``[B, C, H, W]`` in ``[-1, 1]``:

* ``"digits"``: the project's :class:`~lightning_ex2.gan.classifier.DigitsClassifier`
  (penultimate 64 features for FID/KID, 10 logits for IS); weights from
  ``feature_extractor_weights_path`` or the shipped file. For the 8×8 digits demo.
* ``"fashion"``: :class:`~lightning_ex2.gan.fashion.FashionClassifier` (64 features, 10
  logits; weights from ``feature_extractor_weights_path`` or the shipped file), for Fashion-MNIST.
* ``"inception"``: the standard FID Inception-v3 (TF "2015-12-05" weights) as a *TorchScript
  file on the local disk* (``feature_extractor_weights_path``; nothing is downloaded), see
  :class:`TorchScriptInception` for the two file layouts supported.
* any ``nn.Module`` (``class_path``/``init_args`` in YAML) mapping images to features
  ``[B, F]``; IS then needs ``logits_extractor``, a module mapping images to logits ``[B, K]``.

Example YAML (``trainer.callbacks``)::

    - class_path: lightning_ex2.callbacks.ImageQualityMetrics
      init_args:
        feature_extractor: inception
        feature_extractor_weights_path: /data/weights/inception-2015-12-05.pt
        metrics: [fid, is, kid]
        n_real: 10000
        real_data:                      # or real_images_path: real.npy
          class_path: lightning_ex2.data.images.CIFAR10DataModule
        every_n_epochs: 10

Cost: the Inception network is meant for a GPU (on a CPU about 0.1–1 s per image, and the
2048×2048 eigendecomposition of FID some 10–30 s per evaluation); the digits classifier
scores thousands of 8×8 images per second on a CPU.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from lightning_ex2.callbacks.features import (
    NamedExtractor,
    TorchScriptInception,
    describe_extractor,
    load_real_images,
    resize_bilinear_tf,
)
from lightning_ex2.validation import check_int

__all__ = [
    "ImageQualityMetrics",
    "TorchScriptInception",
    "load_real_images",
    "resize_bilinear_tf",
]

_METRICS = ("fid", "is", "kid")
_NAMED = ("digits", "fashion", "inception")


# ============================================================================ helpers
def _check_int(value: Any, name: str, minimum: int) -> int:
    return check_int(value, name, "ImageQualityMetrics", minimum)


def _rank_world(trainer: pl.Trainer | None) -> tuple[int, int]:
    if trainer is None:
        return 0, 1
    return int(trainer.global_rank), int(trainer.world_size)


# ============================================================================ callback
class ImageQualityMetrics(pl.Callback):
    """Log FID / IS / KID of ``target.decode(chains)`` during ``fit`` and at the end of ``predict``.

    **Fit**: at the end of every ``every_n_epochs``-th epoch (one epoch = one sweep over the
    chains) the current positions of the chains this rank moved (rows of ``pl_module.chain_x``
    whose indices appeared in ``training_step``'s ``outputs["index"]``; all ready chains
    otherwise), at most ``max_generated`` of them, are decoded and scored; logged with
    ``pl_module.log("metrics/fid" | "metrics/is" | "metrics/kid", on_epoch=True)`` (values are
    already reduced over ranks, every rank logs the same number).

    **Predict** (``lightning-ex2 sample``): the draws ``samples [B, T, D]`` returned by
    ``predict_step`` are collected; at the end, ``predict_draws="last"`` scores the last draw
    of every chain, ``"all"`` all draws, evenly thinned to at most ``max_generated``
    per rank. Lightning forbids ``self.log`` in predict hooks, so the values go to every
    attached logger with ``logger.log_metrics`` at ``trainer.global_step``.

    After each evaluation :attr:`results` holds plain Python values::

        {"fid": 12.3, "is": 8.1, "is_std": 0.2, "kid": 0.01, "kid_std": 0.001,
         "feature_extractor": "<network that produced fid/kid>",
         "is_extractor": "<network that produced is>",
         "n_real": 2000, "n_generated": 1000, "stage": "predict", "step": 500}

    (keys only for the metrics requested). :meth:`predict_results` computes the predict numbers
    on demand (idempotent, collective on all ranks), so a writer callback may call it whatever
    the callback order.

    **Real images** ("target stream"), loaded once per run and sharded across ranks, first
    found of: ``real_images_path`` (:func:`load_real_images`), ``real_data.real_images(n)``,
    ``trainer.datamodule.real_images(n)``; ``n_real`` of them (the first ``n_real`` of a file).

    Args:
        feature_extractor: ``"digits"``, ``"inception"`` or an ``nn.Module`` mapping images
            ``[B, C, H, W]`` in ``[-1, 1]`` to features ``[B, F]`` (FID/KID).
        feature_extractor_weights_path: weights of a named extractor (``"inception"``:
            required, a TorchScript file; ``"digits"``: optional, default the shipped file).
        logits_extractor: module mapping images to class logits ``[B, K]`` for IS; default the
            named extractor's classifier head (digits classifier; stylegan-layout Inception).
        metrics: subset of ``("fid", "is", "kid")``.
        n_real: number of real images (over all ranks).
        real_images_path: ``.npy``/``.npz``/``.pt`` file of real images.
        real_data: an image DataModule with ``real_images(n) -> [n, C, H, W]`` (by
            ``class_path`` in YAML, e.g. ``lightning_ex2.data.images.DigitsDataModule``; from
            Python any object with that method).
        every_n_epochs: evaluation period during ``fit``; ``0`` disables fit evaluation.
        evaluate_predict: also score the draws of ``predict``.
        predict_draws: ``"last"`` or ``"all"``.
        max_generated: cap on generated images per rank and evaluation.
        batch_size: images per decode / feature-extraction chunk.
        is_splits: IS splits; ``kid_subsets`` / ``kid_subset_size``: KID subsets (the size is
            capped by the numbers of real and generated images).
        seed: seed of the subsampling and of IS/KID's random permutations (the global RNG is
            left untouched).

    Raises:
        ValueError: naming the offending argument.
    """

    def __init__(
        self,
        feature_extractor: str | nn.Module = "digits",
        feature_extractor_weights_path: str | None = None,
        logits_extractor: nn.Module | None = None,
        metrics: Sequence[str] = ("fid", "is"),
        n_real: int = 2000,
        real_images_path: str | None = None,
        real_data: pl.LightningDataModule | None = None,
        every_n_epochs: int = 1,
        evaluate_predict: bool = True,
        predict_draws: str = "last",
        max_generated: int = 10000,
        batch_size: int = 256,
        is_splits: int = 10,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(feature_extractor, str) and feature_extractor not in _NAMED:
            raise ValueError(
                f"ImageQualityMetrics: `feature_extractor` must be one of {_NAMED} or an "
                f"nn.Module (class_path), got {feature_extractor!r}"
            )
        if not isinstance(feature_extractor, str | nn.Module):
            raise ValueError(
                "ImageQualityMetrics: `feature_extractor` must be a name or an nn.Module, got "
                f"{type(feature_extractor).__name__}"
            )
        if feature_extractor == "inception" and feature_extractor_weights_path is None:
            raise ValueError(
                "ImageQualityMetrics: feature_extractor='inception' needs "
                "`feature_extractor_weights_path`, a local TorchScript file "
                "(e.g. inception-2015-12-05.pt); nothing is downloaded"
            )
        if logits_extractor is not None and not isinstance(logits_extractor, nn.Module):
            raise ValueError("ImageQualityMetrics: `logits_extractor` must be an nn.Module")
        if isinstance(metrics, str):
            metrics = [metrics]
        metrics = tuple(dict.fromkeys(str(m).lower() for m in metrics))
        bad = [m for m in metrics if m not in _METRICS]
        if bad or not metrics:
            raise ValueError(
                f"ImageQualityMetrics: `metrics` must be a non-empty subset of {_METRICS}, got {bad or metrics}"
            )
        if (
            "is" in metrics
            and isinstance(feature_extractor, nn.Module)
            and logits_extractor is None
        ):
            raise ValueError(
                "ImageQualityMetrics: metric 'is' with a custom `feature_extractor` needs "
                "`logits_extractor` (a module mapping images to class logits)"
            )
        if predict_draws not in ("last", "all"):
            raise ValueError(
                f"ImageQualityMetrics: `predict_draws` must be 'last' or 'all', got {predict_draws!r}"
            )
        self.feature_extractor = feature_extractor
        self.feature_extractor_weights_path = feature_extractor_weights_path
        self.logits_extractor = logits_extractor
        self.metrics = metrics
        self.n_real = _check_int(n_real, "n_real", 2)
        self.real_images_path = real_images_path
        self.real_data = real_data
        self.every_n_epochs = _check_int(every_n_epochs, "every_n_epochs", 0)
        self.evaluate_predict = bool(evaluate_predict)
        self.predict_draws = predict_draws
        self.max_generated = _check_int(max_generated, "max_generated", 2)
        self.batch_size = _check_int(batch_size, "batch_size", 1)
        self.is_splits = _check_int(is_splits, "is_splits", 1)
        self.kid_subsets = _check_int(kid_subsets, "kid_subsets", 1)
        self.kid_subset_size = _check_int(kid_subset_size, "kid_subset_size", 2)
        self.seed = _check_int(seed, "seed", 0)
        self.results: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self._fid: Any = None
        self._is: Any = None
        self._kid: Any = None
        self._features: nn.Module | None = None
        self._logits: nn.Module | None = None
        self._real_ready = False
        self._n_real_total = 0
        self._seen: Tensor | None = None
        self._predict_outputs: list[tuple[Tensor, Tensor]] = []
        self._predict_done = False

    # ------------------------------------------------------------------ extractors
    def _build_extractors(self) -> None:
        """Instantiate the feature / logits networks (lazily: weights are read at setup)."""
        if self._features is not None:
            return
        fe = self.feature_extractor
        logits: nn.Module | None = self.logits_extractor
        if fe == "digits":
            from lightning_ex2.gan.classifier import (
                DEFAULT_WEIGHTS,
                FIDFeatures,
                ISLogits,
                load_digits_classifier,
            )

            path = self.feature_extractor_weights_path or DEFAULT_WEIGHTS
            clf = load_digits_classifier(path)
            features: nn.Module = NamedExtractor(
                FIDFeatures(clf), 64, f"digits-classifier penultimate features, weights {path}"
            )
            if logits is None and "is" in self.metrics:
                logits = NamedExtractor(
                    ISLogits(clf), 10, f"digits-classifier logits, weights {path}"
                )
        elif fe == "fashion":  # Fashion-MNIST classifier (lightning_ex2/gan/fashion.py)
            from lightning_ex2.gan.fashion import FashionFeatures, FashionLogits

            path = self.feature_extractor_weights_path
            features = FashionFeatures(path)
            if logits is None and "is" in self.metrics:
                logits = FashionLogits(path)
        elif fe == "inception":
            assert self.feature_extractor_weights_path is not None
            features = TorchScriptInception(self.feature_extractor_weights_path)
            if logits is None and "is" in self.metrics:
                logits = TorchScriptInception(
                    self.feature_extractor_weights_path, features.convention, "logits"
                )
        else:
            assert isinstance(fe, nn.Module)
            features = fe
        self._features = features
        self._logits = logits

    @staticmethod
    def _probe(module: nn.Module, sample: Tensor) -> nn.Module:
        """Wrap ``module`` with its ``num_features`` found on real images ``sample``."""
        if isinstance(module, TorchScriptInception | NamedExtractor):  # size known; no probe
            return module
        with torch.no_grad():
            out = module(sample)
        if out.ndim < 2 or out.shape[0] != sample.shape[0]:
            raise ValueError(
                f"ImageQualityMetrics: the extractor {describe_extractor(module)} returned shape "
                f"{tuple(out.shape)} for {sample.shape[0]} images; expected [B, F]"
            )
        return NamedExtractor(module, int(out.flatten(1).shape[1]), describe_extractor(module))

    def _build_metrics(self, real: Tensor, device: torch.device) -> None:
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.inception import InceptionScore
        from torchmetrics.image.kid import KernelInceptionDistance

        self._build_extractors()
        assert self._features is not None
        sample = real[:2].to(device)
        features = self._probe(self._features.to(device).eval(), sample)
        self._features = features
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
            if "fid" in self.metrics:
                self._fid = FrechetInceptionDistance(
                    feature=features, reset_real_features=False, normalize=False
                ).to(device)
            if "kid" in self.metrics:
                self._kid = KernelInceptionDistance(
                    feature=features,
                    subsets=self.kid_subsets,
                    subset_size=self.kid_subset_size,
                    reset_real_features=False,
                    normalize=False,
                ).to(device)
            if "is" in self.metrics:
                assert self._logits is not None
                self._logits = self._probe(self._logits.to(device).eval(), sample)
                self._is = InceptionScore(
                    feature=self._logits, splits=self.is_splits, normalize=False
                ).to(device)

    # ------------------------------------------------------------------ real images
    def _real_images(self, trainer: pl.Trainer | None) -> Tensor:
        if self.real_images_path is not None:
            real = load_real_images(self.real_images_path)[: self.n_real]
        else:
            source = self.real_data
            if source is None and trainer is not None:
                dm = getattr(trainer, "datamodule", None)
                source = dm if callable(getattr(dm, "real_images", None)) else None
            if source is None or not callable(getattr(source, "real_images", None)):
                raise ValueError(
                    "ImageQualityMetrics: no real images: set `real_images_path`, or "
                    "`real_data` (an object with real_images(n)), or use a DataModule with "
                    "real_images(n)"
                )
            real = torch.as_tensor(source.real_images(self.n_real)).float()
        if real.ndim != 4 or real.shape[0] < 2:
            raise ValueError(
                f"ImageQualityMetrics: real images must be [N >= 2, C, H, W], got {tuple(real.shape)}"
            )
        return real

    def setup_real(
        self, trainer: pl.Trainer | None = None, device: torch.device | str = "cpu"
    ) -> None:
        """Load the real images, build the metrics and feed this rank's real shard (once)."""
        if self._real_ready:
            return
        device = torch.device(device)
        real = self._real_images(trainer)
        self._build_metrics(real, device)
        rank, world = _rank_world(trainer)
        shard = real[rank::world]
        self._n_real_total = int(real.shape[0])
        with torch.no_grad():
            for chunk in shard.split(self.batch_size):
                chunk = chunk.to(device)
                if self._fid is not None:
                    self._fid.update(chunk, real=True)
                if self._kid is not None:
                    self._kid.update(chunk, real=True)
        self._real_ready = True

    # ------------------------------------------------------------------ scoring
    def _reduce_count(self, trainer: pl.Trainer | None, n: int, device: torch.device) -> int:
        if trainer is None or trainer.world_size == 1:
            return n
        total = trainer.strategy.reduce(torch.tensor(float(n), device=device), reduce_op="sum")
        return int(total)

    @torch.no_grad()
    def evaluate(
        self,
        generated_latents: Tensor,
        decode: Any,
        trainer: pl.Trainer | None = None,
        stage: str = "fit",
        step: int = 0,
    ) -> dict[str, Any]:
        """Score ``decode(z)`` for latents ``generated_latents [n, D]`` of this rank.

        Collective when several ranks run (each passes its own latents). Returns and stores
        :attr:`results`; real images must be set up first (:meth:`setup_real`).
        """
        assert self._real_ready, "setup_real() must run first"
        device = generated_latents.device
        n_local = 0
        for z in generated_latents.split(self.batch_size):
            imgs = decode(z).to(device=device, dtype=torch.float32)
            n_local += imgs.shape[0]
            for metric in (self._fid, self._kid):
                if metric is not None:
                    metric.update(imgs, real=False)
            if self._is is not None:
                self._is.update(imgs)
        n_generated = self._reduce_count(trainer, n_local, device)
        out: dict[str, Any] = {}
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(self.seed)
            if self._fid is not None:
                out["fid"] = float(self._fid.compute()) if n_generated >= 2 else math.nan
                self._fid.reset()
            if self._kid is not None:
                self._kid.subset_size = max(
                    2, min(self.kid_subset_size, n_generated, self._n_real_total)
                )
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
        assert self._features is not None
        out["feature_extractor"] = describe_extractor(self._features)
        if self._is is not None and self._logits is not None:
            out["is_extractor"] = describe_extractor(self._logits)
        out.update(n_real=self._n_real_total, n_generated=n_generated, stage=stage, step=int(step))
        self.results = out
        self.history.append(dict(out))
        return out

    @staticmethod
    def _decoder(pl_module: pl.LightningModule) -> Any:
        target = getattr(pl_module, "target", None)
        decode = getattr(target, "decode", None)
        if not callable(decode):
            raise ValueError(
                "ImageQualityMetrics: pl_module.target has no decode(z) -> images; it needs "
                "a GAN latent target (e.g. GANLatentTarget)"
            )
        return decode

    def _subsample(self, z: Tensor, how: str) -> Tensor:
        """At most ``max_generated`` rows: evenly spaced (``"even"``) or seeded random."""
        n = z.shape[0]
        if n <= self.max_generated:
            return z
        if how == "even":
            idx = torch.linspace(0, n - 1, self.max_generated, device=z.device).round().long()
        else:
            g = torch.Generator().manual_seed(self.seed)
            idx = torch.randperm(n, generator=g)[: self.max_generated].sort().values
            idx = idx.to(z.device)
        return z.index_select(0, idx)

    # ------------------------------------------------------------------ fit hooks
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._seen = None
        if self.every_n_epochs > 0:
            self.setup_real(trainer, pl_module.device)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.every_n_epochs == 0 or not isinstance(outputs, Mapping):
            return
        index = outputs.get("index")
        chain_x = getattr(pl_module, "chain_x", None)
        if not isinstance(index, Tensor) or not isinstance(chain_x, Tensor):
            return
        if self._seen is None or self._seen.shape[0] != chain_x.shape[0]:
            self._seen = torch.zeros(chain_x.shape[0], dtype=torch.bool, device=chain_x.device)
        self._seen.index_fill_(0, index.detach().reshape(-1).to(self._seen.device), True)

    def _fit_latents(self, pl_module: pl.LightningModule) -> Tensor:
        chain_x = pl_module.chain_x.detach()
        mask = self._seen
        if mask is None:
            ready = getattr(pl_module, "chain_ready", None)
            mask = ready if isinstance(ready, Tensor) else None
        z = chain_x if mask is None else chain_x[mask]
        return self._subsample(z, "random")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.every_n_epochs == 0 or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        if trainer.sanity_checking:
            return
        z = self._fit_latents(pl_module)
        was_training = pl_module.training
        pl_module.eval()
        try:
            res = self.evaluate(
                z, self._decoder(pl_module), trainer, stage="fit", step=trainer.global_step
            )
        finally:
            pl_module.train(was_training)
        for name in ("fid", "is", "kid"):
            if name in res:
                # the value is already reduced over ranks; sync_dist only silences Lightning
                pl_module.log(
                    f"metrics/{name}",
                    res[name],
                    on_step=False,
                    on_epoch=True,
                    batch_size=1,
                    sync_dist=True,
                )

    # ------------------------------------------------------------------ predict hooks
    def on_predict_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._predict_outputs = []
        self._predict_done = False

    def on_predict_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self.evaluate_predict or not isinstance(outputs, Mapping):
            return
        samples = outputs.get("samples")
        if isinstance(samples, Tensor) and samples.ndim == 3:
            if self.predict_draws == "last":
                samples = samples[:, -1:].clone()  # a copy: the full draws may be freed
            self._predict_outputs.append((outputs["index"].detach(), samples.detach()))

    def predict_results(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        """FID/IS/KID of this predict run's draws (computed once; collective on all ranks).

        Returns :attr:`results` (``{}`` when ``evaluate_predict`` is off or nothing was drawn).
        """
        if not self.evaluate_predict or self._predict_done:
            return self.results if self._predict_done else {}
        self._predict_done = True
        if not self._predict_outputs:
            return {}
        self.setup_real(trainer, pl_module.device)
        draws = torch.cat([s for _, s in self._predict_outputs])  # [B, T, D], this rank
        z = draws.reshape(-1, draws.shape[-1])  # chain-major
        z = self._subsample(z, "even")
        res = self.evaluate(
            z, self._decoder(pl_module), trainer, stage="predict", step=trainer.global_step
        )
        self._predict_outputs = []
        values = {f"metrics/{k}": res[k] for k in ("fid", "is", "kid") if k in res}
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(values, step=int(trainer.global_step))
                logger.save()
        return res

    def on_predict_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.predict_results(trainer, pl_module)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Only the last results are checkpointed (real features are recomputed)."""
        return {"results": dict(self.results)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.results = dict(state_dict.get("results", {}))
