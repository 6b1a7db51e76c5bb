"""Fashion-MNIST: IDX reader, DataModule errors, GAN nets, classifier, configs, table machinery.

Synthetic IDX files written here; the Debian package is never needed (CI is offline).
"""

from __future__ import annotations

import gzip
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_ex2.data import FashionMNISTDataModule
from lightning_ex2.data.images import read_idx_images, read_idx_labels
from lightning_ex2.gan.fashion import (
    FASHION_WEIGHTS,
    FashionClassifier,
    FashionDiscriminator,
    FashionFeatures,
    FashionGenerator,
    FashionLogits,
    as_float_images,
    load_fashion_classifier,
    train_fashion_classifier,
)

ROOT = Path(__file__).resolve().parents[1]


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    """``<prefix>-images-idx3-ubyte.gz`` and ``<prefix>-labels-idx1-ubyte.gz`` (big-endian header)."""
    n, rows, cols = images.shape
    head = b"".join(int(v).to_bytes(4, "big") for v in (2051, n, rows, cols))
    with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(head + images.astype(np.uint8).tobytes())
    with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
        f.write(
            b"".join(int(v).to_bytes(4, "big") for v in (2049, n))
            + labels.astype(np.uint8).tobytes()
        )


def synthetic(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes: bright top half (0) / bright bottom half (1), plus noise (flip-invariant)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    images = rng.integers(0, 60, (n, 28, 28))
    for i, y in enumerate(labels):
        images[i, :14, :] += 180 * (y == 0)
        images[i, 14:, :] += 180 * (y == 1)
    return images.astype(np.uint8), labels.astype(np.uint8)


@pytest.fixture
def fashion_dir(tmp_path: Path) -> Path:
    x, y = synthetic(96)
    write_idx(tmp_path, "train", x, y)
    x, y = synthetic(40, seed=1)
    write_idx(tmp_path, "t10k", x, y)
    return tmp_path


def test_idx_reader_round_trip(fashion_dir: Path) -> None:
    x, y = synthetic(96)
    assert np.array_equal(read_idx_images(fashion_dir / "train-images-idx3-ubyte.gz"), x)
    assert np.array_equal(read_idx_labels(fashion_dir / "train-labels-idx1-ubyte.gz"), y)


def test_idx_reader_rejects_labels_as_images(fashion_dir: Path) -> None:
    with pytest.raises(ValueError, match="magic 2049, expected 2051"):
        read_idx_images(fashion_dir / "train-labels-idx1-ubyte.gz")
    with pytest.raises(ValueError, match="magic 2051, expected 2049"):
        read_idx_labels(fashion_dir / "train-images-idx3-ubyte.gz")


def test_datamodule_reads_splits(fashion_dir: Path) -> None:
    dm = FashionMNISTDataModule(data_dir=str(fashion_dir), batch_size=16, seed=3)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (16, 1, 28, 28)
    assert batch.min() >= -1 and batch.max() <= 1
    assert dm.image_shape == (1, 28, 28)
    test = FashionMNISTDataModule(data_dir=str(fashion_dir), split="test", batch_size=8)
    assert test.load().shape == (40, 1, 28, 28)
    assert torch.equal(test.labels(), torch.from_numpy(synthetic(40, seed=1)[1]).long())


def test_missing_file_names_path_and_apt_command(tmp_path: Path) -> None:
    dm = FashionMNISTDataModule(data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError) as info:
        dm.setup("fit")
    message = str(info.value)
    assert str(tmp_path / "nowhere" / "train-images-idx3-ubyte") in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_bad_split_and_kind_named(fashion_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"data\.split"):
        FashionMNISTDataModule(split="validation")
    with pytest.raises(ValueError, match="kind must be"):
        FashionMNISTDataModule(data_dir=str(fashion_dir)).idx_file("pixels")


def test_gan_shapes_and_gradient_in_z() -> None:
    g, d = FashionGenerator(latent_dim=16, ngf=8).eval(), FashionDiscriminator(ndf=8)
    z = torch.randn(5, 16, requires_grad=True)
    x = g(z)
    assert x.shape == (5, 1, 28, 28) and x.abs().max() <= 1
    out = d(x)
    assert out.shape == (5, 1)
    (grad,) = torch.autograd.grad(out.sum(), z)
    assert grad.shape == (5, 16) and grad.abs().sum() > 0
    with pytest.raises(ValueError, match="ngf"):
        FashionGenerator(ngf=0)


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
    loaded = load_fashion_classifier(path)
    assert torch.equal(loaded(args[2][:4]), m1(args[2][:4]))
    assert FashionFeatures(str(path))(args[2][:3]).shape == (3, 64)
    assert FashionLogits(str(path))(args[2][:3]).shape == (3, 10)


def test_classifier_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"train_fashion_classifier\.py"):
        load_fashion_classifier(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, bad)
    with pytest.raises(ValueError, match="FashionClassifier weights"):
        load_fashion_classifier(bad)
    with pytest.raises(ValueError, match="x_train"):
        train_fashion_classifier(torch.zeros(4, 1, 8, 8), torch.zeros(4).long())


@pytest.mark.skipif(not FASHION_WEIGHTS.is_file(), reason="shipped classifier weights absent")
def test_shipped_classifier_loads() -> None:
    clf = load_fashion_classifier()
    assert isinstance(clf, FashionClassifier)
    assert sum(p.numel() for p in clf.parameters()) < 100_000
    assert FASHION_WEIGHTS.stat().st_size < 400_000


def test_gan_train_config_instantiates(fashion_dir: Path) -> None:
    from lightning_ex2.cli import build_cli

    cli = build_cli(
        [
            "--config",
            str(ROOT / "configs/gan/fashion_gan_train.yaml"),
            f"--data.init_args.data_dir={fashion_dir}",
        ],
        run=False,
    )
    assert cli.model.generator.latent_dim == 64
    cli.datamodule.setup("fit")
    assert cli.datamodule.image_shape == (1, 28, 28)


@pytest.mark.parametrize("method", ["ula", "mala", "isir", "ex2mcmc", "flex2mcmc"])
def test_sampling_configs_instantiate(method: str, fashion_dir: Path) -> None:
    from lightning_ex2.cli import build_cli

    weights = ROOT / "lightning_ex2/gan/weights"
    if not (weights / "fashion_gan_generator.pt").is_file() or not FASHION_WEIGHTS.is_file():
        pytest.skip("shipped Fashion GAN / classifier weights absent")
    cli = build_cli(["--config", str(ROOT / f"configs/gan/fashion_{method}.yaml")], run=False)
    target = cli.model.target
    z = target.prior_sample(3)
    assert z.shape == (3, 64)
    assert target.decode(z).shape == (3, 1, 28, 28)
    assert torch.isfinite(target.log_prob(z)).all()


def test_configs_are_generated() -> None:
    spec = importlib.util.spec_from_file_location("mgc", ROOT / "configs/gan/make_gan_configs.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    for method in module.METHODS:
        assert (ROOT / f"configs/gan/fashion_{method}.yaml").read_text() == module.render(
            "fashion", method
        )


# ----------------------------------------------------------------------------- table script
@pytest.fixture
def table():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "fashion_table", ROOT / "scripts/fashion_table.py"
    )
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["fashion_table"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    yield module
    sys.modules.pop("fashion_table", None)


def test_table_plan_spends_equal_budget(table) -> None:  # type: ignore[no-untyped-def]
    for method in table.METHODS:
        fit, sample, evals = table.plan(method, 130, 0.2)
        assert fit >= 1 and sample >= 1
        assert 130 - table.COST[method] < evals <= 130
    with pytest.raises(ValueError, match="unknown method"):
        table.plan("hmc", 100, 0.2)


def test_table_render_and_readme_section(table, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = [table.Row("none", fid=[10.0, 14.0], inception_score=[3.0, 3.0], wall=[0.0, 0.0])]
    rows.append(
        table.Row(
            "ex2mcmc", 2, 8, 130, [8.0, 9.0], [3.5, 3.7], [20.0, 22.0],
            [{"accept_global_mean": 0.5, "energy_start": 3.0, "energy_end": 1.0}] * 2,
        )
    )  # fmt: skip
    text = table.render_table(rows, [0, 1])
    assert "| plain generator | – | 0 | 12.00 ± 2.00 | 3.00 ± 0.00 |" in text
    assert "| Ex2MCMC | 2 + 8 | 130 | 8.50 ± 0.50 | 3.60 ± 0.10 | 21 ± 1 | – | 0.50 / – |" in text
    readme = f"# x\n{table.START}\nold\n{table.END}\ntail\n"
    new = table.replace_section(readme, text)
    assert "old" not in new and text in new and new.endswith(f"{table.END}\ntail\n")
    with pytest.raises(ValueError, match="markers"):
        table.replace_section("no markers", text)


def test_table_trajectory_png(table, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    g = FashionGenerator(latent_dim=4, ngf=4).eval()
    samples = np.random.default_rng(0).normal(size=(10, 12, 4)).astype(np.float32)
    path = table.trajectory_png(samples, g, tmp_path / "t.png", n_rows=3, n_cols=5)
    with Image.open(path) as img:
        # 3 rows x 5 columns of 28-pixel cells, 1-pixel padding, doubled
        assert img.size == (2 * (5 * 29 + 1), 2 * (3 * 29 + 1))
    with pytest.raises(ValueError, match="chains, draws, dim"):
        table.trajectory_png(samples[0], g, tmp_path / "u.png")
    e0, e1 = table.energy_curve(np.array([[-1.0, -3.0], [-3.0, -5.0]]))
    assert (e0, e1) == (2.0, 4.0)
    # log pi = log N(z; 0, I) + d: the logit curve recovers d
    z = np.random.default_rng(1).normal(size=(4, 2, 3))
    log_normal = -0.5 * (z**2).sum(-1) - 1.5 * np.log(2 * np.pi)
    d0, d1 = table.logit_curve(log_normal + np.array([0.5, -1.0]), z)
    assert np.isclose(d0, 0.5) and np.isclose(d1, -1.0)


def test_metrics_callback_selects_fashion_classifier_by_name(
    fashion_dir: Path, tmp_path: Path
) -> None:
    from lightning_ex2.callbacks import ImageQualityMetrics

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
