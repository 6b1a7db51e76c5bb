"""GAN generator/discriminator networks: torch-mimicry's state_dict layouts, sizes and checkpoint loading."""

from __future__ import annotations

import pytest
import torch

from lightning_ex2.gan import (
    DCGANDiscriminator32,
    DCGANGenerator32,
    DigitsDiscriminator,
    DigitsGenerator,
    GANLatentTarget,
    MNISTDiscriminator,
    MNISTGenerator,
    SNGANDiscriminator32,
    SNGANGenerator32,
    load_gan_checkpoint,
)


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
    # keys of no known layout (known variants and sizes: tests/gan/test_mimicry_checkpoints.py)
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


def test_weights_path_of_earlier_versions_names_the_shipped_file():
    from pathlib import Path

    from lightning_ex2.gan import FashionDiscriminator, FashionGenerator

    package = Path(__file__).resolve().parents[2] / "lightning_ex2"
    old = package / "weights" / "fashion_gan_discriminator_calibrated.pt"
    with pytest.raises(FileNotFoundError, match=r"weights are in lightning_ex2/gan/weights/"):
        load_gan_checkpoint(FashionDiscriminator(ndf=32), old)
    target = GANLatentTarget(
        FashionGenerator(ngf=32),
        FashionDiscriminator(ndf=32),
        generator_ckpt=str(package / "gan" / "weights" / "fashion_gan_generator.pt"),
        discriminator_ckpt=str(package / "gan" / "weights" / old.name),
    )
    assert target.logit_scale != 1.0  # the calibration stored in the shipped file was read
