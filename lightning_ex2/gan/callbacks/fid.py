"""FID, IS and KID of the images a GAN-latent sampler produces.

:class:`LatentImageMetrics` decodes latents ``z`` with ``target.decode(z)``
(``[n, C, H, W]`` in ``[-1, 1]``) and scores them against real images with the pure
:class:`~lightning_ex2.gan.scores.ImageScorer`; :class:`ImageQualityMetrics` is the
callback that runs it during ``fit``, and its :attr:`~ImageQualityMetrics.scorer` is what
the sample writer gets to score the draws of ``sample`` (no callback calls another):

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

Every rank feeds its own chains and its shard of the real images; the numbers are those of
all chains together. Real-image features are computed once and reused at every evaluation.

Feature networks (``feature_extractor``), each taking images ``[B, C, H, W]`` in ``[-1, 1]``:

* ``"digits"``: the project's :class:`~lightning_ex2.gan.classifier.DigitsClassifier`
  (penultimate 64 features for FID/KID, 10 logits for IS); weights from
  ``feature_extractor_weights_path`` or the shipped file. For the 8×8 digits demo.
* ``"fashion"``: :class:`~lightning_ex2.gan.classifier.FashionClassifier` (64 features, 10
  logits; weights from ``feature_extractor_weights_path`` or the shipped file), for Fashion-MNIST.
* ``"inception"``: the standard FID Inception-v3 (TF "2015-12-05" weights) as a *TorchScript
  file on the local disk* (``feature_extractor_weights_path``; nothing is downloaded), see
  :class:`~lightning_ex2.gan.features.TorchScriptInception` for the file layouts.
* any ``nn.Module`` (``class_path``/``init_args`` in YAML) mapping images to features
  ``[B, F]``; IS then needs ``logits_extractor``, a module mapping images to logits ``[B, K]``.

Example YAML (``trainer.callbacks``)::

    - class_path: lightning_ex2.gan.ImageQualityMetrics
      init_args:
        feature_extractor: inception
        feature_extractor_weights_path: /data/weights/inception-2015-12-05.pt
        metrics: [fid, is, kid]
        n_real: 10000
        real_data:                      # or real_images_path: real.npy
          class_path: lightning_ex2.gan.data.CIFAR10DataModule
        every_n_epochs: 10

Cost: the Inception network is meant for a GPU (on a CPU about 0.1–1 s per image, and the
2048×2048 eigendecomposition of FID some 10–30 s per evaluation); the digits classifier
scores thousands of 8×8 images per second on a CPU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from lightning_ex2.gan.features import (
    NAMED_EXTRACTORS,
    TorchScriptInception,
    load_real_images,
    named_extractors,
    resize_bilinear_tf,
)
from lightning_ex2.gan.scores import METRICS, ImageScorer
from lightning_ex2.lightning.module import MCMCSampler
from lightning_ex2.protocols import ImageTarget
from lightning_ex2.validation import check_int

__all__ = [
    "ImageQualityMetrics",
    "LatentImageMetrics",
    "TorchScriptInception",
    "load_real_images",
    "resize_bilinear_tf",
]


def _decoder(pl_module: pl.LightningModule) -> Any:
    return image_target(pl_module, "ImageQualityMetrics").decode


class LatentImageMetrics:
    """FID / IS / KID of decoded latents; also the sample writer's scorer of predict draws.

    **Real images**, loaded once per run and sharded across ranks, first found of:
    ``real_images_path`` (:func:`load_real_images`), ``real_data.real_images(n)``,
    ``trainer.datamodule.real_images(n)``; ``n_real`` of them.

    After each evaluation :attr:`results` holds plain Python values::

        {"fid": 12.3, "is": 8.1, "is_std": 0.2, "kid": 0.01, "kid_std": 0.001,
         "feature_extractor": "<network that produced fid/kid>",
         "is_extractor": "<network that produced is>",
         "n_real": 2000, "n_generated": 1000, "stage": "predict", "step": 500}

    Calling it as ``scorer(trainer, pl_module, samples [B, T, D])`` scores predict draws
    (``predict_draws``: the last draw of each chain or all draws, thinned to at most
    ``max_generated`` per rank), logs ``metrics/*`` to the trainer's loggers and returns
    :attr:`results` (collective on all ranks). Arguments: see :class:`ImageQualityMetrics`.
    """

    def __init__(
        self,
        feature_extractor: str | nn.Module,
        feature_extractor_weights_path: str | None,
        logits_extractor: nn.Module | None,
        metrics: tuple[str, ...],
        n_real: int,
        real_images_path: str | None,
        real_data: Any,
        predict_draws: str,
        max_generated: int,
        batch_size: int,
        is_splits: int,
        kid_subsets: int,
        kid_subset_size: int,
        seed: int,
    ) -> None:
        self.feature_extractor = feature_extractor
        self.feature_extractor_weights_path = feature_extractor_weights_path
        self.logits_extractor = logits_extractor
        self.metrics = metrics
        self.n_real = n_real
        self.real_images_path = real_images_path
        self.real_data = real_data
        self.predict_draws = predict_draws
        self.max_generated = max_generated
        self.batch_size = batch_size
        self.is_splits, self.kid_subsets, self.kid_subset_size = (
            is_splits,
            kid_subsets,
            kid_subset_size,
        )
        self.seed = seed
        self.results: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self._scorer: ImageScorer | None = None

    def _build_scorer(self) -> ImageScorer:
        fe, logits = self.feature_extractor, self.logits_extractor
        if isinstance(fe, str):
            features, named_logits = named_extractors(
                fe, self.feature_extractor_weights_path, "is" in self.metrics and logits is None
            )
            logits = logits or named_logits
        else:
            features = fe
        return ImageScorer(
            features, logits, self.metrics, self.is_splits, self.kid_subsets,
            self.kid_subset_size, self.seed,
        )  # fmt: skip

    def _real_images(self, trainer: pl.Trainer | None) -> Tensor:
        if self.real_images_path is not None:
            real = load_real_images(self.real_images_path)[: self.n_real]
        else:
            source = self.real_data
            if source is None and trainer is not None:
                source = trainer.datamodule  # an image DataModule has real_images(n)
            try:
                real = torch.as_tensor(source.real_images(self.n_real)).float()
            except AttributeError:
                raise ValueError(
                    "ImageQualityMetrics: no real images: set `real_images_path`, or "
                    "`real_data` (an object with real_images(n)), or use a DataModule with "
                    "real_images(n)"
                ) from None
        if real.ndim != 4 or real.shape[0] < 2:
            raise ValueError(
                f"ImageQualityMetrics: real images must be [N >= 2, C, H, W], got {tuple(real.shape)}"
            )
        return real

    @property
    def logits(self) -> nn.Module | None:
        """The network of the Inception Score (images ``[B, C, H, W]`` -> class logits
        ``[B, K]``), once :meth:`setup_real` has built it; ``None`` before, or without IS."""
        return None if self._scorer is None else self._scorer.logits

    def setup_real(
        self, trainer: pl.Trainer | None = None, device: torch.device | str = "cpu"
    ) -> None:
        """Load the real images, build the scorer and feed this rank's real shard (once)."""
        if self._scorer is not None:
            return
        real = self._real_images(trainer)
        rank, world = (trainer.global_rank, trainer.world_size) if trainer else (0, 1)
        scorer = self._build_scorer()
        scorer.add_real(real[rank::world].to(device), int(real.shape[0]), self.batch_size)
        self._scorer = scorer

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
        assert self._scorer is not None, "setup_real() must run first"
        device = generated_latents.device

        def total(n: int) -> int:
            if trainer is None or trainer.world_size == 1:
                return n
            t = torch.tensor(float(n), device=device)
            return int(trainer.strategy.reduce(t, reduce_op="sum"))

        with torch.no_grad():
            images = (decode(z).to(device) for z in generated_latents.split(self.batch_size))
            out = self._scorer.score(images, total)
        out.update(stage=stage, step=int(step))
        self.results = out
        self.history.append(dict(out))
        return out

    def subsample(self, z: Tensor, how: str) -> Tensor:
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

    def __call__(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, samples: Tensor
    ) -> dict[str, Any]:
        """Score this rank's predict draws ``samples [B, T, D]``; log ``metrics/*``."""
        self.setup_real(trainer, pl_module.device)
        draws = samples[:, -1:] if self.predict_draws == "last" else samples
        z = self.subsample(draws.reshape(-1, draws.shape[-1]), "even")  # chain-major
        step = trainer.global_step
        res = self.evaluate(z, _decoder(pl_module), trainer, stage="predict", step=step)
        values = {f"metrics/{k}": res[k] for k in METRICS if k in res}
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(values, step=int(step))
                logger.save()
        return res


class ImageQualityMetrics(pl.Callback):
    """Log FID / IS / KID of ``target.decode(chains)`` during ``fit``; score ``sample``'s draws.

    **Fit**: at the end of every ``every_n_epochs``-th epoch (one epoch = one sweep over the
    chains) the current positions of the chains this rank moved (rows of ``pl_module.chain_x``
    whose indices appeared in ``training_step``'s ``outputs["index"]``; all ready chains
    otherwise), at most ``max_generated`` of them, are decoded and scored; logged with
    ``pl_module.log("metrics/fid" | "metrics/is" | "metrics/kid", on_epoch=True)`` (values are
    already reduced over ranks, every rank logs the same number).

    **Sample**: the trainer puts :attr:`scorer` (a :class:`LatentImageMetrics`) into the
    run's :class:`~lightning_ex2.output.writer.SamplePlan`; the
    :class:`~lightning_ex2.lightning.SampleWriter` scores the draws with it and the
    numbers go into ``summary.json`` as ``image_metrics`` (when ``evaluate_predict``).
    The arguments after ``n_real`` are keyword-only.

    Args:
        feature_extractor: ``"digits"``, ``"fashion"``, ``"inception"`` or an ``nn.Module`` mapping images
            ``[B, C, H, W]`` in ``[-1, 1]`` to features ``[B, F]`` (FID/KID).
        feature_extractor_weights_path: weights of a named extractor (``"inception"``:
            required, a TorchScript file; ``"digits"``: optional, default the shipped file).
        logits_extractor: module mapping images to class logits ``[B, K]`` for IS; default the
            named extractor's classifier head (digits classifier; stylegan-layout Inception).
        metrics: subset of ``("fid", "is", "kid")``.
        n_real: number of real images (over all ranks).
        real_images_path: ``.npy``/``.npz``/``.pt`` file of real images.
        real_data: an image DataModule with ``real_images(n) -> [n, C, H, W]`` (by
            ``class_path`` in YAML, e.g. ``lightning_ex2.gan.data.DigitsDataModule``; from
            Python any object with that method).
        every_n_epochs: evaluation period during ``fit``; ``0`` disables fit evaluation.
        evaluate_predict: also score the draws of ``sample``.
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
        *,
        every_n_epochs: int = 1,
        evaluate_predict: bool = True,
        real_images_path: str | None = None,
        predict_draws: str = "last",
        max_generated: int = 10000,
        batch_size: int = 256,
        real_data: pl.LightningDataModule | None = None,
        is_splits: int = 10,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        seed: int = 0,
    ) -> None:
        super().__init__()
        name = "ImageQualityMetrics"
        if isinstance(feature_extractor, str) and feature_extractor not in NAMED_EXTRACTORS:
            raise ValueError(
                f"{name}: `feature_extractor` must be one of {NAMED_EXTRACTORS} or an "
                f"nn.Module (class_path), got {feature_extractor!r}"
            )
        if not isinstance(feature_extractor, str | nn.Module):
            raise ValueError(
                f"{name}: `feature_extractor` must be a name or an nn.Module, got "
                f"{type(feature_extractor).__name__}"
            )
        if feature_extractor == "inception" and feature_extractor_weights_path is None:
            raise ValueError(
                f"{name}: feature_extractor='inception' needs "
                "`feature_extractor_weights_path`, a local TorchScript file "
                "(e.g. inception-2015-12-05.pt); nothing is downloaded"
            )
        if logits_extractor is not None and not isinstance(logits_extractor, nn.Module):
            raise ValueError(f"{name}: `logits_extractor` must be an nn.Module")
        if isinstance(metrics, str):
            metrics = [metrics]
        metrics = tuple(dict.fromkeys(str(m).lower() for m in metrics))
        bad = [m for m in metrics if m not in METRICS]
        if bad or not metrics:
            raise ValueError(
                f"{name}: `metrics` must be a non-empty subset of {METRICS}, got {bad or metrics}"
            )
        if (
            "is" in metrics
            and isinstance(feature_extractor, nn.Module)
            and logits_extractor is None
        ):
            raise ValueError(
                f"{name}: metric 'is' with a custom `feature_extractor` needs "
                "`logits_extractor` (a module mapping images to class logits)"
            )
        if predict_draws not in ("last", "all"):
            raise ValueError(
                f"{name}: `predict_draws` must be 'last' or 'all', got {predict_draws!r}"
            )
        self.feature_extractor = feature_extractor
        self.every_n_epochs = check_int(every_n_epochs, "every_n_epochs", name, 0)
        self.evaluate_predict = bool(evaluate_predict)
        self.scorer = LatentImageMetrics(
            feature_extractor,
            feature_extractor_weights_path,
            logits_extractor,
            metrics,
            n_real=check_int(n_real, "n_real", name, 2),
            real_images_path=real_images_path,
            real_data=real_data,
            predict_draws=predict_draws,
            max_generated=check_int(max_generated, "max_generated", name, 2),
            batch_size=check_int(batch_size, "batch_size", name, 1),
            is_splits=check_int(is_splits, "is_splits", name, 1),
            kid_subsets=check_int(kid_subsets, "kid_subsets", name, 1),
            kid_subset_size=check_int(kid_subset_size, "kid_subset_size", name, 2),
            seed=check_int(seed, "seed", name, 0),
        )
        self._seen: Tensor | None = None

    # ------------------------------------------------------------ the scorer's state
    @property
    def sample_scorer(self) -> LatentImageMetrics | None:
        """The scorer of ``sample``'s draws (``evaluate_predict``), else ``None``."""
        return self.scorer if self.evaluate_predict else None

    @property
    def results(self) -> dict[str, Any]:
        """The last evaluation's numbers (fit or sample)."""
        return self.scorer.results

    @property
    def history(self) -> list[dict[str, Any]]:
        return self.scorer.history

    def setup_real(
        self, trainer: pl.Trainer | None = None, device: torch.device | str = "cpu"
    ) -> None:
        """See :meth:`LatentImageMetrics.setup_real`."""
        self.scorer.setup_real(trainer, device)

    def evaluate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """See :meth:`LatentImageMetrics.evaluate`."""
        return self.scorer.evaluate(*args, **kwargs)

    # ------------------------------------------------------------------ fit hooks
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._seen = None
        if self.every_n_epochs > 0:
            self.setup_real(trainer, pl_module.device)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, *_: Any
    ) -> None:
        if self.every_n_epochs == 0 or not isinstance(outputs, Mapping):
            return
        index = outputs.get("index")
        if not isinstance(index, Tensor) or not isinstance(pl_module, MCMCSampler):
            return
        if self._seen is None or self._seen.shape[0] != pl_module.n_chains:
            self._seen = torch.zeros(pl_module.n_chains, dtype=torch.bool, device=index.device)
        self._seen.index_fill_(0, index.detach().reshape(-1).to(self._seen.device), True)

    def _fit_latents(self, pl_module: MCMCSampler) -> Tensor:
        mask = pl_module.chain_ready if self._seen is None else self._seen
        return self.scorer.subsample(pl_module.chain_x.detach()[mask], "random")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.every_n_epochs == 0 or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        if trainer.sanity_checking or not isinstance(pl_module, MCMCSampler):
            return
        z = self._fit_latents(pl_module)
        was_training = pl_module.training
        pl_module.eval()
        try:
            res = self.evaluate(
                z, _decoder(pl_module), trainer, stage="fit", step=trainer.global_step
            )
        finally:
            pl_module.train(was_training)
        for name in METRICS:
            if name in res:
                # the value is already reduced over ranks; sync_dist only silences Lightning
                pl_module.log(
                    f"metrics/{name}", res[name], on_step=False, on_epoch=True, batch_size=1,
                    sync_dist=True,
                )  # fmt: skip

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Only the last results are checkpointed (real features are recomputed)."""
        return {"results": dict(self.results)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.scorer.results = dict(state_dict.get("results", {}))


def image_target(pl_module: pl.LightningModule, who: str) -> ImageTarget:
    """``pl_module.target`` when it decodes latents to images (``decode(z)``).

    Raises:
        ValueError: naming ``who`` (the callback) when the module has no such target.
    """
    target = pl_module.target if isinstance(pl_module, MCMCSampler) else None
    if not isinstance(target, ImageTarget):
        raise ValueError(
            f"{who}: pl_module.target has no decode(z) -> images; it needs a GAN latent "
            "target (e.g. GANLatentTarget)"
        )
    return target
