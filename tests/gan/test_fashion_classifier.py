"""The Fashion-MNIST classifier (FID/IS features): training, errors, shipped weights, chosen by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lightning_ex2.gan import FashionGenerator, FashionMNISTDataModule
from lightning_ex2.gan.classifier import (
    ClassifierFeatures,
    ClassifierLogits,
    FashionClassifier,
    classifier_weights,
    load_feature_cnn,
)
from lightning_ex2.gan.classifier_training import as_float_images, train_fashion_classifier
from tests.fashion_data import synthetic

FASHION_WEIGHTS = classifier_weights("fashion")


def test_classifier_training_is_deterministic_and_learns(tmp_path: Path) -> None:
    x, y = synthetic(256)
    xt, yt = synthetic(64, seed=5)
    args = (as_float_images(x), torch.from_numpy(y).long(), as_float_images(xt))
    kw = dict(y_test=torch.from_numpy(yt).long(), epochs=2, batch_size=32, seed=1)
    path = tmp_path / "clf.pt"
    m1, meta = train_fashion_classifier(*args, out_path=path, **kw)
    m2, _ = train_fashion_classifier(*args, **kw)
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert meta["test_accuracy"] > 0.9  # two trivially separable classes
    loaded = load_feature_cnn("fashion", path)
    assert torch.equal(loaded(args[2][:4]), m1(args[2][:4]))
    assert ClassifierFeatures("fashion", str(path))(args[2][:3]).shape == (3, 64)
    assert ClassifierLogits("fashion", str(path))(args[2][:3]).shape == (3, 10)


def test_classifier_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"train_fashion_classifier\.py"):
        load_feature_cnn("fashion", tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, bad)
    with pytest.raises(ValueError, match="FashionClassifier weights"):
        load_feature_cnn("fashion", bad)
    with pytest.raises(ValueError, match="x_train"):
        train_fashion_classifier(torch.zeros(4, 1, 8, 8), torch.zeros(4).long())


@pytest.mark.skipif(not FASHION_WEIGHTS.is_file(), reason="shipped classifier weights absent")
def test_shipped_classifier_loads() -> None:
    clf = load_feature_cnn("fashion")
    assert isinstance(clf, FashionClassifier)
    assert sum(p.numel() for p in clf.parameters()) < 100_000
    assert FASHION_WEIGHTS.stat().st_size < 400_000


def test_metrics_callback_selects_fashion_classifier_by_name(
    fashion_dir: Path, tmp_path: Path
) -> None:
    from lightning_ex2.gan import ImageQualityMetrics

    x, y = synthetic(64)
    path = tmp_path / "clf.pt"
    train_fashion_classifier(
        as_float_images(x), torch.from_numpy(y).long(), out_path=path, epochs=1
    )
    metric = ImageQualityMetrics(
        feature_extractor="fashion",
        feature_extractor_weights_path=str(path),
        n_real=40,
        real_data=FashionMNISTDataModule(data_dir=str(fashion_dir), split="test", batch_size=8),
    )
    metric.setup_real(None, torch.device("cpu"))
    g = FashionGenerator(latent_dim=4, ngf=4).eval()
    out = metric.evaluate(torch.randn(20, 4), g)
    assert out["fid"] > 0 and 1 <= out["is"] <= 10
    assert out["feature_extractor"].startswith("fashion-classifier penultimate features")
    assert str(path) in out["feature_extractor"]
    assert out["is_extractor"].startswith("fashion-classifier logits")
