"""The Fashion-MNIST configs under ``configs/gan``: generated, and each instantiates."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from lightning_ex2.gan.classifier import classifier_weights

ROOT = Path(__file__).resolve().parents[2]
FASHION_WEIGHTS = classifier_weights("fashion")


def test_gan_train_config_instantiates(fashion_dir: Path) -> None:
    from lightning_ex2.lightning.cli import build_cli

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
    from lightning_ex2.lightning.cli import build_cli

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
