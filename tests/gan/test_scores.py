"""Image-quality metrics (FID/IS/KID), the digits classifier and the trajectory callbacks (CPU)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure
from pytorch_lightning.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from lightning_ex2.gan.callbacks.fid import (
    ImageQualityMetrics,
    TorchScriptInception,
    load_real_images,
    resize_bilinear_tf,
)
from lightning_ex2.gan.callbacks.trajectory import SamplingTrajectory
from lightning_ex2.gan.classifier import (
    ClassifierFeatures,
    ClassifierLogits,
    DigitsClassifier,
    load_feature_cnn,
)
from lightning_ex2.gan.classifier_training import (
    digits_dataset,
    evaluate_digits_classifier,
    train_digits_classifier,
)
from lightning_ex2.output.figures import energy_landscape_figure, trajectory_grid
from lightning_ex2.targets import Gaussian


# ----------------------------------------------------------------------------- fakes
class FakeLatentTarget(nn.Module):
    """GAN-latent-like target: decode = tanh(fixed linear map) to 1×8×8, logit = tanh(w·z)."""

    def __init__(self, dim: int = 4, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.dim = dim
        self.register_buffer("weight", torch.randn(dim, 64, generator=g))
        self.register_buffer("w_d", torch.randn(dim, generator=g))

    def discriminator_logit(self, z):
        return torch.tanh(z @ self.w_d)

    def log_prob(self, z):
        return -0.5 * z.square().sum(-1) + self.discriminator_logit(z)

    @torch.no_grad()
    def decode(self, z):
        return torch.tanh(z @ self.weight).reshape(*z.shape[:-1], 1, 8, 8)

    def prior_sample(self, n, generator=None):
        return torch.randn(n, self.dim, generator=generator)


class FakeImages:
    """An image "DataModule": real_images(n) = decode of fixed prior latents."""

    def __init__(self, target: FakeLatentTarget, shift: float = 0.0) -> None:
        self.target, self.shift = target, shift

    def latents(self, n: int) -> torch.Tensor:
        return self.target.prior_sample(n, torch.Generator().manual_seed(7)) + self.shift

    def real_images(self, n: int) -> torch.Tensor:
        return self.target.decode(self.latents(n))


def random_features() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2))


def random_logits(k: int = 5) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, k))


def _callback(**kw) -> ImageQualityMetrics:
    kw.setdefault("feature_extractor", random_features())
    kw.setdefault("logits_extractor", random_logits())
    kw.setdefault("metrics", ("fid", "is", "kid"))
    kw.setdefault("kid_subsets", 10)
    kw.setdefault("kid_subset_size", 50)
    kw.setdefault("n_real", 300)
    return ImageQualityMetrics(**kw)


# ----------------------------------------------------------------------------- metrics
def test_fid_zero_on_same_set_and_larger_when_different():
    target = FakeLatentTarget()
    data = FakeImages(target)
    cb = _callback(real_data=data)
    cb.setup_real()
    same = cb.evaluate(data.latents(300), target.decode, stage="fit")
    assert abs(same["fid"]) < 1e-3
    assert same["feature_extractor"].startswith("custom torch.nn.modules.container.Sequential")
    assert 1.0 <= same["is"] <= 5.0
    assert same["n_real"] == 300 and same["n_generated"] == 300
    # real features are kept across evaluations; the generated ones are reset
    other = cb.evaluate(data.latents(300) * 0.3 + 1.5, target.decode, stage="fit")
    assert other["fid"] > 100 * max(abs(same["fid"]), 1e-4)
    assert other["kid"] > same["kid"]
    assert cb.results is not None and cb.results["fid"] == other["fid"]
    again = cb.evaluate(data.latents(300), target.decode)
    assert abs(again["fid"]) < 1e-3
    assert len(cb.history) == 3


def test_inception_score_bounds_with_confident_classes():
    class OneHot(nn.Module):  # class = sign pattern of two pixels: up to 4 classes
        def forward(self, x):
            return 50.0 * x.flatten(1)[:, :4]

    target = FakeLatentTarget()
    cb = _callback(real_data=FakeImages(target), logits_extractor=OneHot(), metrics=["is"])
    cb.setup_real()
    res = cb.evaluate(FakeImages(target).latents(400), target.decode)
    assert 1.0 <= res["is"] <= 4.0 + 1e-6
    assert "fid" not in res and "kid" not in res and "is_extractor" in res


def test_argument_validation_names_field(tmp_path):
    with pytest.raises(ValueError, match="feature_extractor"):
        ImageQualityMetrics(feature_extractor="vgg")
    with pytest.raises(ValueError, match="feature_extractor_weights_path"):
        ImageQualityMetrics(feature_extractor="inception")
    with pytest.raises(ValueError, match="logits_extractor"):
        ImageQualityMetrics(feature_extractor=random_features(), metrics=["fid", "is"])
    with pytest.raises(ValueError, match="metrics"):
        ImageQualityMetrics(metrics=["fid", "lpips"])
    with pytest.raises(ValueError, match="predict_draws"):
        ImageQualityMetrics(predict_draws="first")
    cb = ImageQualityMetrics(feature_extractor=random_features(), metrics=["fid"])
    with pytest.raises(ValueError, match="real_images_path"):
        cb.setup_real()
    with pytest.raises(FileNotFoundError, match="real_images_path"):
        ImageQualityMetrics(real_images_path=str(tmp_path / "none.npy")).setup_real()


def test_load_real_images_formats(tmp_path):
    rng = np.random.default_rng(0)
    pix = rng.integers(0, 256, size=(5, 8, 8, 3), dtype=np.uint8)  # channel-last uint8
    np.save(tmp_path / "a.npy", pix)
    x = load_real_images(tmp_path / "a.npy")
    assert x.shape == (5, 3, 8, 8) and x.min() >= -1 and x.max() <= 1
    torch.save({"images": torch.rand(4, 1, 8, 8) * 2 - 1}, tmp_path / "b.pt")
    assert load_real_images(tmp_path / "b.pt").shape == (4, 1, 8, 8)
    np.savez(tmp_path / "c.npz", images=rng.uniform(-1, 1, size=(3, 8, 8)).astype(np.float32))
    assert load_real_images(tmp_path / "c.npz").shape == (3, 1, 8, 8)
    np.save(tmp_path / "bad.npy", rng.uniform(0, 255, size=(3, 1, 8, 8)).astype(np.float32))
    with pytest.raises(ValueError, match=r"real_images_path.*\[-1, 1\]"):
        load_real_images(tmp_path / "bad.npy")


def test_resize_bilinear_tf_samples_without_half_pixel_offset():
    x = torch.arange(4.0).reshape(1, 1, 1, 4).expand(1, 1, 2, 4)
    y = resize_bilinear_tf(x, (2, 8))
    expected = torch.tensor([0, 0.5, 1, 1.5, 2, 2.5, 3, 3])  # at i * 4 / 8, edge clamped
    torch.testing.assert_close(y[0, 0, 0], expected)


def _script(module: nn.Module, path):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*jit.*")
        torch.jit.save(torch.jit.script(module), str(path))
    return path


class _StyleGANLike(nn.Module):
    """Same signature / conventions as NVIDIA's inception-2015-12-05.pt (uint8 in, resize inside)."""

    def forward(
        self,
        img: torch.Tensor,
        return_features: bool = False,
        use_fp16: bool = False,
        no_output_bias: bool = False,
    ) -> torch.Tensor:
        assert img.dtype == torch.uint8 and img.shape[1] == 3
        x = torch.nn.functional.interpolate(img.float(), size=(299, 299), mode="bilinear")
        feats = x.mean(dim=(2, 3)).repeat(1, 683)[:, :2048] / 255.0
        if return_features:
            return feats
        return torch.softmax(feats[:, :1008] * 10.0, dim=1)


class _Normalized299(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1:] == (3, 299, 299)
        assert float(x.min()) >= -1.0 and float(x.max()) <= 0.9921875
        return x.mean(dim=(2, 3)).repeat(1, 683)[:, :2048]


def test_torchscript_inception_layouts(tmp_path):
    imgs = torch.rand(3, 1, 8, 8) * 2 - 1
    sg = TorchScriptInception(_script(_StyleGANLike(), tmp_path / "sg.pt"))
    assert sg.convention == "stylegan" and sg.num_features == 2048
    assert sg(imgs).shape == (3, 2048)
    logits = TorchScriptInception(tmp_path / "sg.pt", output="logits")
    out = logits(imgs)
    assert out.shape == (3, 1008) and torch.allclose(out.softmax(1).sum(1), torch.ones(3))
    n299 = TorchScriptInception(_script(_Normalized299(), tmp_path / "n.pt"))
    assert n299.convention == "normalized-299" and n299(imgs).shape == (3, 2048)
    assert "normalized-299" in n299.description
    with pytest.raises(ValueError, match="Inception Score"):
        TorchScriptInception(tmp_path / "n.pt", output="logits")
    with pytest.raises(FileNotFoundError, match="feature_extractor_weights_path"):
        TorchScriptInception(tmp_path / "missing.pt")
    # through the callback with the named "inception" extractor (KID and IS: FID's
    # eigendecomposition of a 2048×2048 matrix takes ~30 s on a CPU)
    target = FakeLatentTarget()
    cb = ImageQualityMetrics(
        feature_extractor="inception",
        feature_extractor_weights_path=str(tmp_path / "sg.pt"),
        metrics=["kid", "is"],
        real_data=FakeImages(target),
        n_real=20,
        is_splits=2,
        kid_subsets=5,
    )
    cb.setup_real()
    res = cb.evaluate(FakeImages(target).latents(20), target.decode)
    assert np.isfinite(res["kid"]) and 1.0 <= res["is"] <= 1008
    assert res["feature_extractor"].startswith("inception-v3 TorchScript")
    assert "1008-way logits" in res["is_extractor"]


def test_feature_extractor_by_class_path_in_yaml():
    """As in a LightningCLI ``trainer.callbacks`` entry: a name or an nn.Module class_path."""
    import pytorch_lightning as pl
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_argument("--cb", type=pl.Callback)
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes
    name = "lightning_ex2.gan.callbacks.fid.ImageQualityMetrics"
    init_args = {"feature_extractor": {"class_path": "torch.nn.Flatten"}, "metrics": ["fid"]}
    cfg = parser.parse_object({"cb": {"class_path": name, "init_args": init_args}})
    cb = instantiate(cfg).cb
    assert isinstance(cb, ImageQualityMetrics) and isinstance(cb.feature_extractor, nn.Flatten)
    cfg = parser.parse_object({"cb": {"class_path": name, "init_args": {"metrics": ["fid"]}}})
    assert instantiate(cfg).cb.feature_extractor == "digits"


# ----------------------------------------------------------------------------- classifier
def test_digits_classifier_quick_training_is_deterministic():
    kw = dict(seed=0, epochs=5, lr=1e-2, batch_size=32, augment=False)
    model_a, meta = train_digits_classifier(**kw)
    model_b, _ = train_digits_classifier(**kw)
    assert meta["test_accuracy"] > 0.90
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(a, b), name
    x = torch.zeros(2, 1, 8, 8)
    assert model_a.features(x).shape == (2, 64) and model_a(x).shape == (2, 10)
    # other sizes / RGB are area-resized / averaged to grey
    assert model_a(torch.zeros(2, 3, 16, 16)).shape == (2, 10)


def test_shipped_digits_weights_load_and_are_accurate():
    model = load_feature_cnn("digits")
    assert isinstance(model, DigitsClassifier) and not model.training
    assert evaluate_digits_classifier(model) > 0.95


def test_missing_digits_weights_error_says_how_to_make_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"scripts/train_digits_classifier\.py"):
        load_feature_cnn("digits", tmp_path / "nope.pt")


def test_digits_extractor_scores_real_digits():
    """Real vs real digits: small FID and IS near the number of classes; noise: large FID."""
    x_tr, _, x_te, _ = digits_dataset()

    class Digits:
        def real_images(self, n):
            return x_tr[:n]

    cb = ImageQualityMetrics(real_data=Digits(), n_real=1000, metrics=["fid", "is"])
    cb.setup_real()
    same = cb.evaluate(x_te[:400].reshape(400, -1), lambda z: z.reshape(-1, 1, 8, 8))
    noise = torch.rand(400, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    bad = cb.evaluate(noise, lambda z: z.reshape(-1, 1, 8, 8))
    assert bad["fid"] > 10 * same["fid"]
    assert same["is"] > 6.0 and bad["is"] < same["is"]
    assert same["feature_extractor"].startswith("digits-classifier penultimate features")
    assert ClassifierFeatures(load_feature_cnn("digits")).num_features == 64
    assert ClassifierLogits(load_feature_cnn("digits")).num_features == 10


# ----------------------------------------------------------------------------- Lightning runs
def _events(logger: TensorBoardLogger) -> EventAccumulator:
    logger.experiment.flush()
    acc = EventAccumulator(logger.log_dir, size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_fit_and_sample_log_metrics_and_trajectory(tmp_path):
    from lightning_ex2.kernels import MALA
    from lightning_ex2.lightning import ChainDataModule, MCMCSampler
    from lightning_ex2.lightning.trainer import Ex2Trainer

    target = FakeLatentTarget()
    np.save(tmp_path / "real.npy", FakeImages(target).real_images(200).numpy())
    metrics = _callback(real_images_path=str(tmp_path / "real.npy"), n_real=200, every_n_epochs=2)
    traj = SamplingTrajectory(n_chains=4, n_columns=3, every_n_steps=1)
    logger = TensorBoardLogger(str(tmp_path), name="tb")
    trainer = Ex2Trainer(
        max_epochs=4,
        logger=logger,
        callbacks=[metrics, traj],
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        accelerator="cpu",
        devices=1,
        log_every_n_steps=1,
    )
    module = MCMCSampler(target, MALA(step_size=0.1), n_chains=64, seed=0)
    dm = ChainDataModule(n_chains=64)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(num_workers|optimizer|bottleneck).*")
        trainer.fit(module, datamodule=dm)
    acc = _events(logger)
    fid = acc.Scalars("metrics/fid")
    assert len(fid) == 2 and all(np.isfinite(e.value) and e.value >= -1e-6 for e in fid)
    assert {"metrics/is", "metrics/kid", "trajectory/energy", "trajectory/dgz"} <= set(
        acc.Tags()["scalars"]
    )
    assert len(acc.Scalars("trajectory/energy")) == 4
    img = acc.Images("trajectory/images")[-1]
    # 4 chains × 3 columns of 8×8 cells with 1-pixel padding
    assert (img.height, img.width) == (4 * 9 + 1, 3 * 9 + 1)
    assert metrics.results["stage"] == "fit" and metrics.results["n_generated"] == 64
    steps, snaps = traj.snapshots
    assert snaps.shape == (4, 4, target.dim) and steps == [1, 2, 3, 4]

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(num_workers|ckpt_path).*")
        trainer.sample(module, datamodule=dm, n_steps=6, output_dir=str(tmp_path / "out"))
    res = metrics.results
    assert res["stage"] == "predict" and res["n_generated"] == 64 and np.isfinite(res["fid"])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["image_metrics"]["fid"] == res["fid"]
    acc = _events(logger)
    assert len(acc.Scalars("metrics/fid")) == 3
    assert acc.Images("trajectory/predict_images")
    assert len(acc.Scalars("trajectory/predict_energy")) == 6
    assert len(acc.Scalars("trajectory/predict_dgz")) == 6


def test_trajectory_grid_layout():
    images = torch.full((2, 3, 1, 4, 5), -1.0)
    images[1, 2] = 1.0
    grid = trajectory_grid(images, padding=1)
    assert grid.shape == (1, 2 * 5 + 1, 3 * 6 + 1)
    assert grid[0, 0].eq(1).all()  # padding row
    assert grid[0, 6 + 1, 12 + 1] == 1 and grid[0, 1, 1] == 0  # cell (1, 2) white, (0, 0) black


# ----------------------------------------------------------------------------- landscape
def _contours(ax) -> int:
    return sum(isinstance(c, ContourSet) for c in ax.collections)


def test_energy_landscape_2d_and_5d():
    g2 = Gaussian(torch.zeros(2), 1.0)
    samples = {"MALA": torch.randn(200, 2), "Ex2MCMC": torch.randn(300, 2) + 1.0}
    fig = energy_landscape_figure(g2, samples, grid_size=20)
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 2 and all(_contours(ax) >= 1 for ax in panels)
    # points lie where they should in the coordinate plane
    offsets = panels[0].collections[-1].get_offsets()
    np.testing.assert_allclose(np.asarray(offsets), samples["MALA"].numpy(), rtol=1e-6)

    target = FakeLatentTarget(dim=5)
    samples5 = {"i-SIR": np.random.default_rng(0).normal(size=(150, 5)), "none": torch.randn(80, 5)}
    fig = energy_landscape_figure(target, samples5, grid_size=15)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 2 and all(_contours(ax) >= 1 for ax in panels)
    # an explicit plane through three latent points
    p = torch.randn(3, 5)
    fig = energy_landscape_figure(target, samples5, plane=(p[0], p[1] - p[0], p[2] - p[0]))
    assert isinstance(fig, Figure)
    with pytest.raises(ValueError, match="parallel"):
        energy_landscape_figure(target, samples5, plane=(p[0], p[0] * 2))
    with pytest.raises(ValueError, match="dimension"):
        energy_landscape_figure(g2, samples5)


def test_sample_summary_carries_image_metrics(tmp_path):
    """``lightning-ex2 sample`` on a GAN config writes FID/IS into summary.json."""
    import json
    from pathlib import Path

    from lightning_ex2.lightning.cli import build_cli

    override = tmp_path / "untrained.yaml"  # an untrained GAN: no checkpoint files needed
    override.write_text(
        "model:\n  init_args:\n    target:\n      init_args:\n"
        "        generator_ckpt: null\n        discriminator_ckpt: null\n"
    )
    root = Path(__file__).resolve().parents[2]
    cli = build_cli(["--config", str(root / "configs/gan/digits_isir.yaml"),
                     "--config", str(override), "--data.init_args.n_chains", "50",
                     "--trainer.logger", "false"], run=False)  # fmt: skip
    out = tmp_path / "out"
    cli.trainer.sample(cli.model, datamodule=cli.datamodule, n_steps=3, output_dir=str(out),
                       progress=False)  # fmt: skip
    metrics = json.loads((out / "summary.json").read_text())["image_metrics"]
    assert metrics["fid"] > 0 and 1 <= metrics["is"] <= 10
    assert "digits-classifier" in metrics["feature_extractor"]
    assert metrics["n_generated"] == 50
