"""The GAN configs under ``configs/gan``: generated, up to date, and each instantiates."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import jsonargparse
import pytest
import pytorch_lightning as pl
import yaml

from lightning_ex2.gan import GANLatentTarget, GANModule
from lightning_ex2.lightning import MCMCSampler

# ---------------------------------------------------------------------- configs
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "gan"


def _instantiate(section: dict, base: type):
    parser = jsonargparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--obj", type=base)
    return parser.instantiate(parser.parse_object({"obj": section})).obj


def test_gan_sampling_configs_are_up_to_date():
    spec = importlib.util.spec_from_file_location("make_gan", CONFIGS / "make_gan_configs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(check=True) == 0, "run: python configs/gan/make_gan_configs.py"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_gan_config_instantiates(path):
    config = yaml.safe_load(path.read_text())
    model = config["model"]
    if path.stem.endswith("_train"):
        assert isinstance(_instantiate(model, pl.LightningModule), GANModule)
        assert _instantiate(config["data"], pl.LightningDataModule).batch_size == 64
        return
    if path.stem.endswith("_calibrate"):  # tests/gan/test_calibration.py instantiates these
        assert model["class_path"] == "lightning_ex2.gan.DiscriminatorCalibration"
        return
    target_args = model["init_args"]["target"]["init_args"]
    assert {"generator_ckpt", "discriminator_ckpt"} <= set(target_args)
    target_args.update(generator_ckpt=None, discriminator_ckpt=None)  # user-filled paths
    if "cifar10" in path.stem:  # full-size nets are slow to build; shrink them
        target_args["generator"]["init_args"] = {"ngf": 8}
        target_args["discriminator"]["init_args"] = {"ndf": 8}
    model["init_args"]["n_chains"] = config["data"]["n_chains"]  # linked by the CLI
    sampler = _instantiate(model, pl.LightningModule)
    assert isinstance(sampler, MCMCSampler) and isinstance(sampler.target, GANLatentTarget)
    dims = {"cifar10": 128, "fashion": 64}
    assert sampler.dim == dims.get(path.stem.split("_")[0], 2)
