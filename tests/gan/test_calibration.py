"""Discriminator calibration (lightning_ex2/gan/calibration.py) and GAN target diagnostics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from lightning_ex2.gan import (
    FashionDiscriminator,
    FashionGenerator,
    FashionMNISTDataModule,
    GANLatentTarget,
)
from lightning_ex2.gan.calibration import DiscriminatorCalibration, fit_logistic_scale, log_loss
from lightning_ex2.gan.hardness import importance_ess_fraction, isir_acceptance, target_diagnostics
from tests.fashion_data import synthetic, write_idx

ROOT = Path(__file__).resolve().parents[2]


def test_logistic_scale_recovers_known_parameters() -> None:
    # y ~ Bernoulli(sigmoid(a x + b)): the MLE is within a few standard errors of (a, b)
    g = torch.Generator().manual_seed(0)
    n, a, b = 20000, 2.5, -0.7
    x = torch.randn(n, generator=g, dtype=torch.float64)
    y = (torch.rand(n, generator=g, dtype=torch.float64) < torch.sigmoid(a * x + b)).double()
    a_hat, b_hat = fit_logistic_scale(x, y)
    p = torch.sigmoid(a_hat * x + b_hat)
    X = torch.stack([x, torch.ones_like(x)], 1)
    se = torch.linalg.inv((X.T * (p * (1 - p))) @ X).diagonal().sqrt()  # Fisher information
    assert abs(a_hat - a) < 4 * float(se[0]) and abs(b_hat - b) < 4 * float(se[1])
    assert log_loss(a_hat * x + b_hat, y) <= log_loss(x, y)
    with pytest.raises(ValueError, match="ranks fakes above reals"):
        fit_logistic_scale(-x, y)


def test_importance_diagnostics_on_known_weights() -> None:
    assert importance_ess_fraction(torch.zeros(50)) == pytest.approx(1.0)
    # log-normal weights with sigma: ESS/n -> exp(-sigma^2)
    g = torch.Generator().manual_seed(1)
    log_w = 1.5 * torch.randn(200000, generator=g, dtype=torch.float64)
    assert importance_ess_fraction(log_w) == pytest.approx(math.exp(-(1.5**2)), rel=0.1)
    # one dominant draw in a pool of n: i-SIR leaves it only for one of K fresh copies of it,
    # K ~ Binomial(N - 1, 1/n): acceptance E[K / (1 + K)], checked within 4 Monte Carlo SE
    n, N, trials = 1000, 10, 20000
    spike = torch.zeros(n, dtype=torch.float64)
    spike[0] = 100.0
    binom = torch.distributions.Binomial(N - 1, torch.tensor(1.0 / n, dtype=torch.float64))
    k = torch.arange(N, dtype=torch.float64)
    p_k = binom.log_prob(k).exp()
    mean = float((p_k * k / (1 + k)).sum())
    se = math.sqrt(float((p_k * (k / (1 + k)) ** 2).sum()) - mean**2) / math.sqrt(trials)
    assert abs(isir_acceptance(spike, N, trials, g) - mean) < 4 * se
    assert mean < 0.01


@pytest.fixture
def data(tmp_path: Path) -> Path:
    write_idx(tmp_path, "train", *synthetic(256))
    write_idx(tmp_path, "t10k", *synthetic(200, seed=1))
    return tmp_path


def _module(data: Path, out: Path, **kw) -> DiscriminatorCalibration:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return DiscriminatorCalibration(
        FashionGenerator(latent_dim=4, ngf=4), FashionDiscriminator(ndf=4),
        held_out=FashionMNISTDataModule(data_dir=str(data), split="test"),
        out_path=str(out), n_held_out=100, **kw,
    )  # fmt: skip


def _trainer(tmp_path: Path, max_steps: int) -> pl.Trainer:
    return pl.Trainer(
        max_steps=max_steps, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip


def test_calibration_trains_writes_a_checkpoint_the_target_loads(
    data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "d.pt"
    module = _module(data, out, lr=2e-3, val_every_n_steps=5, patience=100)
    dm = FashionMNISTDataModule(data_dir=str(data), batch_size=32)
    _trainer(tmp_path, 60).fit(module, dm)
    report = json.loads(out.with_suffix(".json").read_text())
    before, after = report["before"], report["after"]
    # bright-half images vs an untrained generator's: held-out loss must fall
    assert after["log_loss"] < before["log_loss"] and after["accuracy"] > 0.9
    assert after["log_loss_scaled"] <= after["log_loss"] + 1e-9
    stored = torch.load(out, weights_only=True)
    target = GANLatentTarget(
        FashionGenerator(latent_dim=4, ngf=4),
        FashionDiscriminator(ndf=4),
        discriminator_ckpt=str(out),
    )
    assert target.logit_scale == pytest.approx(stored["logit_scale"]) and target.logit_scale > 0
    assert target.logit_bias == pytest.approx(stored["logit_bias"])
    z = torch.randn(5, 4)
    raw = target.discriminator(target.generator(z)).reshape(-1)
    expected = target.prior_log_prob(z) + target.logit_scale * raw + target.logit_bias
    torch.testing.assert_close(target.log_prob(z), expected)
    plain = GANLatentTarget(
        FashionGenerator(latent_dim=4, ngf=4), FashionDiscriminator(ndf=4), discriminator_ckpt=str(out),
        logit_scale=1.0, logit_bias=0.0,
    )  # fmt: skip
    assert plain.logit_scale == 1.0  # an explicit value wins over the stored one


def test_calibration_early_stops_and_keeps_the_best_weights(data: Path, tmp_path: Path) -> None:
    first = tmp_path / "first.pt"  # a discriminator that ranks reals above fakes
    _trainer(tmp_path, 20).fit(
        _module(data, first, lr=2e-3, val_every_n_steps=10, patience=100),
        FashionMNISTDataModule(data_dir=str(data), batch_size=32),
    )
    # a learning rate too small to improve the held-out loss: stops after `patience` checks
    module = _module(
        data, tmp_path / "d.pt", discriminator_ckpt=str(first), lr=1e-12, val_every_n_steps=2,
        patience=3, min_delta=1e-3,
    )  # fmt: skip
    start = {k: v.clone() for k, v in module.discriminator.state_dict().items()}
    trainer = _trainer(tmp_path, 1000)
    trainer.fit(module, FashionMNISTDataModule(data_dir=str(data), batch_size=32))
    assert module.report["stopped_early"] and trainer.global_step == 6
    assert module.report["best_step"] == 0
    for k, v in module.discriminator.state_dict().items():
        torch.testing.assert_close(v, start[k])


def test_bad_calibration_input_named(data: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"model\.loss"):
        _module(data, tmp_path / "d.pt", loss="bce")
    with pytest.raises(ValueError, match=r"model\.held_out"):
        DiscriminatorCalibration(
            FashionGenerator(latent_dim=4, ngf=4), FashionDiscriminator(ndf=4), held_out=object(),
            out_path=str(tmp_path / "d.pt"),
        )  # fmt: skip


@pytest.mark.parametrize(
    "name", ["fashion_calibrate", "cifar10_dcgan_calibrate", "cifar10_sngan_calibrate"]
)
def test_calibrate_configs_instantiate(name: str, tmp_path: Path) -> None:
    import yaml

    from lightning_ex2.lightning.cli import build_cli

    path = ROOT / f"configs/gan/{name}.yaml"
    cfg = yaml.safe_load(path.read_text())
    args = cfg["model"]["init_args"]
    if name.startswith("cifar10"):  # user files: instantiate the networks without them
        args.pop("generator_ckpt"), args.pop("discriminator_ckpt")
        assert args["loss"] == ("ns" if "dcgan" in name else "hinge")
        args["held_out"]["init_args"]["data_dir"] = "/nowhere"
        cfg["data"]["init_args"]["data_dir"] = "/nowhere"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    cli = build_cli(["--config", str(tmp_path / "c.yaml")], run=False)
    assert isinstance(cli.model, DiscriminatorCalibration)


def test_diagnostics_of_a_tiny_target_with_pilot() -> None:
    torch.manual_seed(0)
    target = GANLatentTarget(FashionGenerator(latent_dim=4, ngf=4), FashionDiscriminator(ndf=4))
    d = target_diagnostics(target, n=300, pilot_chains=4, pilot_steps=10)
    assert d["mala_step"] > 0 and 0 <= d["mala_pilot_accept"] <= 1
    assert 0 <= d["isir_accept_10"] <= 1 and d["in_paper_regime"] in (True, False)
