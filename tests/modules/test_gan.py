"""GANs as latent-space targets: architectures and checkpoints, the target, training, image data."""

from __future__ import annotations

import gzip
import importlib.util
import math
import pickle
from pathlib import Path

import jsonargparse
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import yaml
from torch import nn

import lightning_ex2 as lx
from lightning_ex2.data import (
    ChainDataModule,
    CIFAR10DataModule,
    DigitsDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
)
from lightning_ex2.gan import (
    LOSSES,
    DCGANDiscriminator32,
    DCGANGenerator32,
    DigitsDiscriminator,
    DigitsGenerator,
    GANLatentTarget,
    GANModule,
    MNISTDiscriminator,
    MNISTGenerator,
    SNGANDiscriminator32,
    SNGANGenerator32,
    image_grid,
    load_gan_checkpoint,
)
from lightning_ex2.modules import MCMCSampler
from lightning_ex2.targets.base import has_sampler


# ------------------------------------------------------ architectures, checkpoints
def _mimicry_keys(kind: str, sn: bool) -> set[str]:
    """state_dict keys of torch-mimicry's 32×32 nets, spelled out from its source."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    w = ("weight_orig", "weight_u", "weight_v", "bias") if sn else ("weight", "bias")
    keys: set[str] = set()
    if kind == "G":
        keys |= {"l1.weight", "l1.bias", "c5.weight", "c5.bias", *(f"b5.{k}" for k in bn)}
        for b in (2, 3, 4):
            keys |= {f"block{b}.{m}.{k}" for m in ("b1", "b2") for k in bn}
            keys |= {f"block{b}.{m}.{k}" for m in ("c1", "c2", "c_sc") for k in ("weight", "bias")}
        return keys
    keys |= {f"block1.{m}.{k}" for m in ("c1", "c2", "c_sc") for k in w}
    keys |= {f"block2.{m}.{k}" for m in ("c1", "c2", "c_sc") for k in w}  # downsamples
    keys |= {f"block{b}.{m}.{k}" for b in (3, 4) for m in ("c1", "c2") for k in w}
    return keys | {f"l5.{k}" for k in w}


@pytest.mark.parametrize(
    ("cls", "kind", "sn"),
    [
        (DCGANGenerator32, "G", False),
        (SNGANGenerator32, "G", False),
        (DCGANDiscriminator32, "D", False),
        (SNGANDiscriminator32, "D", True),
    ],
)
def test_mimicry_key_names(cls, kind, sn):
    assert set(cls().state_dict()) == _mimicry_keys(kind, sn)


def test_mimicry_sizes():
    g, d = SNGANGenerator32(), SNGANDiscriminator32()
    assert (g.nz, g.latent_dim, g.ngf, d.ndf) == (128, 128, 256, 128)
    assert g.state_dict()["l1.weight"].shape == (4 * 4 * 256, 128)
    assert d.state_dict()["l5.weight_orig"].shape == (1, 128)


def _pairs():
    return [
        (DCGANGenerator32(ngf=8), DCGANDiscriminator32(ndf=8), 128),
        (SNGANGenerator32(ngf=8), SNGANDiscriminator32(ndf=8), 128),
        (MNISTGenerator(latent_dim=2), MNISTDiscriminator(), 2),
        (DigitsGenerator(latent_dim=3), DigitsDiscriminator(), 3),
    ]


@pytest.mark.parametrize("index", range(4), ids=["dcgan", "sngan", "mnist", "digits"])
def test_checkpoint_round_trip(tmp_path, index):
    g, d, dim = _pairs()[index]
    z = torch.randn(4, dim)
    g.train()(z)  # move BatchNorm statistics and spectral-norm vectors away from init
    d.train()(g(z).detach())
    g.eval(), d.eval()
    for name, net in (("netG.pth", g), ("netD.pth", d)):
        torch.save({"model_state_dict": net.state_dict(), "global_step": 7}, tmp_path / name)
    g2, d2, _ = _pairs()[index]  # freshly initialised
    load_gan_checkpoint(g2, tmp_path / "netG.pth").eval()
    load_gan_checkpoint(d2, tmp_path / "netD.pth").eval()
    with torch.no_grad():
        x = g(z)
        assert x.shape[1:] == g.image_shape and x.abs().max() <= 1
        torch.testing.assert_close(g2(z), x, rtol=0, atol=0)
        torch.testing.assert_close(d2(x), d(x), rtol=0, atol=0)
    torch.save(d.state_dict(), tmp_path / "plain.pt")  # a plain state dict works too
    load_gan_checkpoint(_pairs()[index][1], tmp_path / "plain.pt")


def test_mismatched_checkpoint_lists_keys(tmp_path):
    # keys of no known layout (known variants and sizes: tests/test_mimicry_checkpoints.py)
    sd = {f"enc.{k}": v for k, v in SNGANDiscriminator32(ndf=8).state_dict().items()}
    torch.save({"model_state_dict": sd}, tmp_path / "d.pth")
    with pytest.raises(ValueError, match="does not fit DCGANDiscriminator32") as err:
        load_gan_checkpoint(DCGANDiscriminator32(ndf=8), tmp_path / "d.pth")
    text = str(err.value)
    assert "missing keys (22)" in text and "block1.c1.weight," in text
    assert "unexpected keys (44)" in text and "enc.block1.c1.weight_orig" in text
    assert "... and 12 more" in text and "... and 34 more" in text  # the first ten of each
    sd = DigitsGenerator(hidden=32).state_dict()
    sd["net.2.weight"] = sd["net.2.weight"][:, :-1]  # a shape no constructor argument explains
    torch.save(sd, tmp_path / "g.pt")
    with pytest.raises(ValueError, match=r"shape mismatches.*net\.2\.weight"):
        load_gan_checkpoint(DigitsGenerator(hidden=32), tmp_path / "g.pt")


def test_missing_checkpoint_says_what_to_put_there(tmp_path):
    path = tmp_path / "nope" / "netG.pth"
    with pytest.raises(FileNotFoundError) as err:
        load_gan_checkpoint(SNGANGenerator32(ngf=8), path)
    assert str(path) in str(err.value) and "model_state_dict" in str(err.value)
    assert "SNGANGenerator32" in str(err.value)
    with pytest.raises(FileNotFoundError, match=r"netD\.pth"):
        GANLatentTarget(
            DigitsGenerator(), DigitsDiscriminator(), discriminator_ckpt=str(tmp_path / "netD.pth")
        )


# ---------------------------------------------------------------------- target
class _TinyG(nn.Module):
    latent_dim = 2
    image_shape = (1, 2, 2)

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 4)

    def forward(self, z):
        return torch.tanh(self.lin(z)).view(-1, 1, 2, 2)


def _tiny_target(**kwargs) -> GANLatentTarget:
    torch.manual_seed(0)
    return GANLatentTarget(_TinyG(), nn.Sequential(nn.Flatten(), nn.Linear(4, 1)), **kwargs)


def test_energy_matches_hand_computation():
    target = _tiny_target(prior_scale=2.0, temperature=0.5)
    z = torch.randn(5, 7, 2, dtype=torch.float64)
    lin_g, lin_d = target.generator.lin, target.discriminator[1]
    x = torch.tanh(z @ lin_g.weight.double().T + lin_g.bias.double())
    d = (x @ lin_d.weight.double().T + lin_d.bias.double()).squeeze(-1)
    prior = -0.5 * (z / 2.0).square().sum(-1) - 2 * math.log(2.0) - math.log(2 * math.pi)
    expected = prior + d / 0.5
    out = target.log_prob(z)
    assert out.shape == (5, 7) and out.dtype == torch.float64
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert target.dim == 2 and not has_sampler(target)


def test_chunking_gradient_and_eval_mode():
    g, d = SNGANGenerator32(ngf=8), SNGANDiscriminator32(ndf=8)
    big = GANLatentTarget(g, d, batch_size=4096)
    small = GANLatentTarget(g, d, batch_size=3)
    big.train(), small.train()  # what LightningModule.train() does to its children
    assert not any(m.training for m in (g, d, *g.modules(), *d.modules()))
    assert not any(p.requires_grad for p in big.parameters())
    z = torch.randn(2, 5, 128, requires_grad=True)
    lp = small.log_prob(z)
    torch.testing.assert_close(lp, big.log_prob(z), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lp[0, 0], big.log_prob(z[0, :1].detach())[0], rtol=1e-5, atol=1e-5)
    (grad,) = torch.autograd.grad(lp.sum(), z)
    assert grad.shape == z.shape and torch.isfinite(grad).all() and grad.abs().sum() > 0
    images = small.decode(z)
    assert images.shape == (2, 5, 3, 32, 32) and not images.requires_grad
    assert small.discriminator_logit(z).shape == (2, 5)
    zs = small.prior_sample(6, generator=torch.Generator().manual_seed(0))
    assert zs.shape == (6, 128)


def test_target_drives_lightning_sampler():
    target = GANLatentTarget(DigitsGenerator(), DigitsDiscriminator(), batch_size=7)
    kernel = lx.Ex2MCMC(lx.proposals.GaussianProposal(2), n_particles=5, step_size=0.1)
    model = MCMCSampler(target, kernel, n_chains=6)
    trainer = pl.Trainer(
        max_steps=3, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, ChainDataModule(n_chains=6))
    assert bool(model.chain_ready.all()) and torch.isfinite(model.chain_log_prob).all()
    assert not target.generator.training and not target.discriminator.training


# ---------------------------------------------------------------------- training
def _trainer(tmp_path, **kwargs) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu", default_root_dir=tmp_path, enable_progress_bar=False,
        enable_model_summary=False, **kwargs,
    )  # fmt: skip


@pytest.mark.parametrize("loss", LOSSES)
def test_gan_module_trains_each_loss(tmp_path, loss):
    g, d = DigitsGenerator(latent_dim=2, hidden=16), DigitsDiscriminator(hidden=16)
    before = [p.detach().clone() for p in (*g.parameters(), *d.parameters())]
    model = GANModule(g, d, loss=loss, n_critic=2, weight_clip=0.05, n_grid_images=4)
    data = DigitsDataModule(batch_size=32, n_images=200)
    trainer = _trainer(tmp_path, max_epochs=1, limit_train_batches=4, logger=False)
    trainer.fit(model, data)
    after = [*g.parameters(), *d.parameters()]
    # every weight moved (D's last bias has zero gradient under hinge/WGAN losses)
    assert all(not torch.equal(a, b) for a, b in zip(after, before) if a.ndim > 1)
    metrics = trainer.logged_metrics
    assert torch.isfinite(metrics["loss/d"]) and torch.isfinite(metrics["loss/g"])
    if loss == "wgan":
        assert max(p.abs().max() for p in d.parameters()) <= 0.05 + 1e-7
    assert model.betas == ((0.0, 0.9) if loss in ("hinge", "wgan-gp") else (0.5, 0.999))


def test_gan_module_outputs_load_into_target(tmp_path):
    model = GANModule(
        DigitsGenerator(latent_dim=2, hidden=16), DigitsDiscriminator(hidden=16),
        n_grid_images=9, image_every_n_epochs=1, export_dir=str(tmp_path / "export"),
    )  # fmt: skip
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, save_top_k=0)
    logger = pl.loggers.TensorBoardLogger(tmp_path, name="gan", version="v")
    trainer = _trainer(
        tmp_path, max_epochs=1, limit_train_batches=3, callbacks=[ckpt], logger=logger
    )
    trainer.fit(model, DigitsDataModule(batch_size=16, n_images=100, val_fraction=0.2))
    assert "val/d_real" in trainer.logged_metrics
    z = torch.randn(3, 4, 2)
    expected = GANLatentTarget(model.generator, model.discriminator).log_prob(z)
    for g_path, d_path in (
        (tmp_path / "ckpt" / "last.ckpt",) * 2,  # the Lightning checkpoint itself
        (tmp_path / "export" / "generator.pt", tmp_path / "export" / "discriminator.pt"),
    ):
        target = GANLatentTarget(
            DigitsGenerator(latent_dim=2, hidden=16), DigitsDiscriminator(hidden=16),
            generator_ckpt=str(g_path), discriminator_ckpt=str(d_path),
        )  # fmt: skip
        torch.testing.assert_close(target.log_prob(z), expected)
    events = list((tmp_path / "gan" / "v").glob("events.out.tfevents.*"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[0]), size_guidance={"images": 0})
    acc.Reload()
    assert "samples" in acc.Tags()["images"]


def test_image_grid():
    grid = image_grid(-torch.ones(5, 1, 4, 4), nrow=3, padding=1)
    assert grid.shape == (1, 2 * 5 + 1, 3 * 5 + 1)
    assert grid[0, 1, 1] == 0 and grid[0, 0, 0] == 1  # image pixel, padding
    assert grid[0, 6:10, 11:15].eq(1).all()  # the empty last cell


# ---------------------------------------------------------------------- image data
def test_digits_datamodule():
    dm = DigitsDataModule(batch_size=50, val_fraction=0.1, seed=3)
    dm.setup("fit")
    assert len(dm.train_images) + len(dm.val_images) == 1797 and len(dm.val_images) == 180
    x = next(iter(dm.train_dataloader()))
    assert x.shape == (50, 1, 8, 8) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1 and x.min() == -1
    torch.testing.assert_close(dm.real_images(10), dm.real_images(10))
    big = DigitsDataModule(image_size=32, channels=3, n_images=20, batch_size=4)
    assert big.real_images(20).shape == (20, 3, 32, 32) and big.image_shape == (3, 32, 32)
    with pytest.raises(ValueError, match="only 20"):
        big.real_images(21)


def _write_idx(path, images: np.ndarray, compress: bool) -> None:
    n, h, w = images.shape
    raw = b"".join(v.to_bytes(4, "big") for v in (2051, n, h, w)) + images.tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_idx_reader(tmp_path, compress):
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    name = "train-images-idx3-ubyte" + (".gz" if compress else "")
    _write_idx(raw / name, images, compress)
    dm = MNISTDataModule(data_dir=str(tmp_path), batch_size=2, seed=0)
    x = dm.real_images(6)
    assert x.shape == (6, 1, 28, 28)
    order = torch.randperm(6, generator=torch.Generator().manual_seed(0))
    expected = torch.from_numpy(images).float()[order][:, None] / 255 * 2 - 1
    torch.testing.assert_close(x, expected)


def test_cifar10_pickle_reader(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    data = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data[name] = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data[name], b"labels": [0, 1, 2]}, f)
    train = CIFAR10DataModule(data_dir=str(tmp_path), batch_size=5)
    train.setup()
    assert train.train_images.shape == (15, 3, 32, 32)
    test = CIFAR10DataModule(data_dir=str(folder), split="test", batch_size=3, n_images=3)
    x = test.real_images(3)
    order = torch.randperm(3, generator=torch.Generator().manual_seed(0))
    expected = torch.from_numpy(data["test_batch"]).float().view(3, 3, 32, 32)[order]
    torch.testing.assert_close(x, expected / 255 * 2 - 1)


def test_missing_data_names_expected_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        MNISTDataModule(data_dir=str(tmp_path)).setup()
    with pytest.raises(FileNotFoundError, match=r"does not exist.*t10k-images-idx3-ubyte"):
        MNISTDataModule(data_dir=str(tmp_path / "absent"), split="test").setup()
    (tmp_path / "data_batch_1").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"missing data_batch_2, .*data_batch_5"):
        CIFAR10DataModule(data_dir=str(tmp_path)).setup()
    with pytest.raises(FileNotFoundError, match="PNG or JPEG"):
        ImageFolderDataModule(data_dir=str(tmp_path)).setup()


def test_image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    (tmp_path / "sub").mkdir()
    for i, size in enumerate([(10, 12), (12, 10), (10, 10)]):
        array = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        Image.fromarray(array).save(tmp_path / ("sub" if i else ".") / f"im{i}.png")
    with pytest.raises(ValueError, match="image_size"):
        ImageFolderDataModule(data_dir=str(tmp_path)).setup()
    dm = ImageFolderDataModule(data_dir=str(tmp_path), image_size=8, batch_size=2)
    x = dm.real_images(3)
    assert x.shape == (3, 3, 8, 8) and x.min() >= -1 and x.max() <= 1
    gray = ImageFolderDataModule(data_dir=str(tmp_path), image_size=8, channels=1, batch_size=2)
    assert gray.real_images(3).shape == (3, 1, 8, 8)


# ---------------------------------------------------------------------- configs
CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "gan"


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
    if path.stem.endswith("_calibrate"):  # tests/test_calibration.py instantiates these
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
