"""Checkpoints of another variant or size get an error that names it, not a key dump."""

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


def _old_mimicry_sn(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """What mimicry's own SNConv2d/SNLinear (``default=False``) write for the same layers.

    Their keys are ``weight``, ``bias``, ``sn_u [1, out]`` and ``sn_sigma [1]`` (checked
    against torch-mimicry 0.1.16's ``modules.spectral_norm``) instead of
    ``weight_orig``, ``weight_u``, ``weight_v``, ``bias``.
    """
    out = {}
    for k, v in sd.items():
        if k.endswith(".weight_orig"):
            base = k[: -len(".weight_orig")]
            out[f"{base}.weight"] = v
            out[f"{base}.sn_u"] = torch.randn(1, v.shape[0])
            out[f"{base}.sn_sigma"] = torch.ones(1)
        elif not k.endswith((".weight_u", ".weight_v")):
            out[k] = v
    return out


def _save(tmp_path, sd, name="net.pth"):
    path = tmp_path / name
    torch.save({"model_state_dict": sd, "global_step": 100000}, path)
    return path


def _error(module, path) -> str:
    with pytest.raises(ValueError) as err:
        load_gan_checkpoint(module, path)
    text = str(err.value)
    assert "missing keys" not in text and "unexpected keys" not in text  # no key dump
    assert f"does not fit {type(module).__name__}" in text and str(path) in text
    return text


def test_old_mimicry_spectral_norm_is_named(tmp_path):
    path = _save(tmp_path, _old_mimicry_sn(SNGANDiscriminator32(ndf=8).state_dict()))
    text = _error(SNGANDiscriminator32(ndf=8), path)
    assert "SpectralNorm" in text and "sn_u" in text and "sn_sigma" in text
    assert "torch.nn.utils.spectral_norm" in text  # what was expected
    assert "no class for that variant" in text
    # through the target, as a config would load it
    with pytest.raises(ValueError, match="sn_u"):
        GANLatentTarget(
            SNGANGenerator32(ngf=8), SNGANDiscriminator32(ndf=8), discriminator_ckpt=str(path)
        )


@pytest.mark.parametrize(
    ("have", "want", "use"),
    [
        (SNGANDiscriminator32, DCGANDiscriminator32, "SNGANDiscriminator32"),
        (DCGANDiscriminator32, SNGANDiscriminator32, "DCGANDiscriminator32"),
    ],
)
def test_spectral_norm_or_not_is_named(tmp_path, have, want, use):
    text = _error(want(ndf=8), _save(tmp_path, have(ndf=8).state_dict()))
    assert f"Load it into {use}." in text
    assert ("with spectral norm" in text) and ("without spectral norm" in text)


def test_generator_given_as_discriminator(tmp_path):
    path = _save(tmp_path, SNGANGenerator32(ngf=8).state_dict(), "netG.pth")
    text = _error(SNGANDiscriminator32(ndf=8), path)
    assert "ResNet generator" in text and "swapped" in text
    assert "DCGANGenerator32 or SNGANGenerator32" in text


def test_other_mimicry_architectures_are_named(tmp_path):
    sd = SNGANDiscriminator32(ndf=8).state_dict()
    sagan = {
        **sd,
        "attn_block.gamma": torch.zeros(()),
        "attn_block.theta.weight_orig": torch.ones(1, 8, 1, 1),
    }
    assert "SAGAN" in _error(SNGANDiscriminator32(ndf=8), _save(tmp_path, sagan))
    head = {**sd, "l_y.weight_orig": torch.ones(10, 8)}
    assert "`l_y`" in _error(SNGANDiscriminator32(ndf=8), _save(tmp_path, head))
    big = {
        **sd,
        **{f"block5.{k.split('.', 1)[1]}": v for k, v in sd.items() if k.startswith("block4.")},
    }
    assert "larger than 32×32" in _error(SNGANDiscriminator32(ndf=8), _save(tmp_path, big))


@pytest.mark.parametrize(
    ("make", "built", "needed"),
    [
        (lambda: SNGANGenerator32(ngf=8), lambda: SNGANGenerator32(ngf=16), "ngf=8"),
        (lambda: DCGANGenerator32(nz=16, ngf=8), lambda: DCGANGenerator32(ngf=8), "nz=16"),
        (lambda: SNGANDiscriminator32(ndf=8), lambda: SNGANDiscriminator32(ndf=16), "ndf=8"),
        (
            lambda: MNISTGenerator(latent_dim=3),
            lambda: MNISTGenerator(latent_dim=2),
            "latent_dim=3",
        ),
        (lambda: DigitsGenerator(hidden=16), lambda: DigitsGenerator(hidden=32), "hidden=16"),
        (lambda: DigitsDiscriminator(hidden=16), lambda: DigitsDiscriminator(), "hidden=16"),
    ],
)
def test_other_sizes_are_named(tmp_path, make, built, needed):
    text = _error(built(), _save(tmp_path, make().state_dict()))
    assert text.endswith(f"build it with {needed}.")


def test_wgan_critic_vs_gan_discriminator(tmp_path):
    text = _error(
        MNISTDiscriminator(), _save(tmp_path, MNISTDiscriminator(bias=False).state_dict())
    )
    assert "WGAN critic" in text and "MNISTDiscriminator(bias=False)" in text


def test_unknown_layout_still_lists_keys(tmp_path):
    sd = {f"enc.{k}": v for k, v in DCGANDiscriminator32(ndf=8).state_dict().items()}
    with pytest.raises(ValueError, match=r"missing keys \(22\).*\n.*unexpected keys \(22\)"):
        load_gan_checkpoint(DCGANDiscriminator32(ndf=8), _save(tmp_path, sd))
