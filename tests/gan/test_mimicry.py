"""Our 32×32 DCGAN/SNGAN networks against torch-mimicry 0.1.16's own, by execution.

The paper's CIFAR-10 checkpoints were written by torch-mimicry 0.1.16's
``DCGANGenerator32``/``DCGANDiscriminator32``/``SNGANGenerator32``/``SNGANDiscriminator32``.
This file builds those mimicry modules, gives them non-trivial BatchNorm statistics and
spectral-norm vectors, saves them as mimicry checkpoints (``{"model_state_dict": ...}``),
loads them through ``GANLatentTarget(generator_ckpt=..., discriminator_ckpt=...)`` and
compares G(z), D(x), ``log pi(z) = log N(z) + d(G(z))`` and its gradient in ``z``, in eval
mode, and one training-mode forward (outputs and updated buffers).

mimicry is not a dependency: ``bash scripts/setup_mimicry.sh`` unpacks its sdist into
``third_party/`` (git-ignored), or ``LX_MIMICRY_PATH`` names an unpacked sdist, or an
installed ``torch_mimicry`` is used. Only its ``nets``/``modules`` are imported: its package
``__init__`` imports torchvision/tensorflow training code, so a stub parent package stands in
for it. Without mimicry those tests skip, saying so; the tests at the end pin the behaviour
they check (the shortcut of a ``DBlock`` sees ``relu(x)``) without it.

``python tests/gan/test_mimicry.py`` prints the largest differences.
"""

from __future__ import annotations

import importlib
import math
import os
import re
import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from lightning_ex2.gan import (
    DCGANDiscriminator32,
    DCGANGenerator32,
    GANLatentTarget,
    SNGANDiscriminator32,
    SNGANGenerator32,
)
from lightning_ex2.gan.networks import DBlock, DBlockOptimized

VERSION = "0.1.16"
REPO = Path(__file__).resolve().parents[2]
TOL = 1e-5  # largest allowed |ours - mimicry| / max |mimicry| (float32)


# ------------------------------------------------------------------ loading mimicry
def _find_mimicry() -> tuple[Path | None, str]:
    """The ``torch_mimicry`` package directory of version 0.1.16, or ``None`` and why not."""
    roots = []
    if os.environ.get("LX_MIMICRY_PATH"):
        roots.append(Path(os.environ["LX_MIMICRY_PATH"]))
    roots.append(REPO / "third_party" / f"torch_mimicry-{VERSION}")
    for root in roots:
        pkg = root if root.name == "torch_mimicry" else root / "torch_mimicry"
        if (pkg / "nets" / "__init__.py").is_file():
            break
    else:
        spec = importlib.util.find_spec("torch_mimicry")  # finds, does not run, __init__
        if spec is None or not spec.submodule_search_locations:
            return None, (
                f"torch-mimicry {VERSION} not found: run `bash scripts/setup_mimicry.sh` "
                "(unpacks its sdist into third_party/) or set LX_MIMICRY_PATH"
            )
        pkg = Path(next(iter(spec.submodule_search_locations)))
    init = (pkg / "__init__.py").read_text() if (pkg / "__init__.py").is_file() else ""
    found = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", init)
    if not found or found.group(1) != VERSION:
        have = found.group(1) if found else "unknown"
        return None, f"torch-mimicry at {pkg} is version {have}, these tests need {VERSION}"
    return pkg, ""


def _load_mimicry(pkg: Path) -> types.SimpleNamespace:
    """Import mimicry's ``nets`` under a stub parent package (its ``__init__`` is skipped)."""
    saved = {k: v for k, v in sys.modules.items() if k.split(".")[0] == "torch_mimicry"}
    for k in saved:
        del sys.modules[k]
    stub = types.ModuleType("torch_mimicry")
    stub.__path__ = [str(pkg)]
    sys.modules["torch_mimicry"] = stub
    try:
        dcgan = importlib.import_module("torch_mimicry.nets.dcgan.dcgan_32")
        sngan = importlib.import_module("torch_mimicry.nets.sngan.sngan_32")
        ssgan = importlib.import_module("torch_mimicry.nets.ssgan.ssgan_32")
        layers = importlib.import_module("torch_mimicry.modules.layers")
    finally:
        for k in [k for k in sys.modules if k.split(".")[0] == "torch_mimicry"]:
            del sys.modules[k]
        sys.modules.update(saved)
    return types.SimpleNamespace(
        dcgan=(dcgan.DCGANGenerator32, dcgan.DCGANDiscriminator32),
        sngan=(sngan.SNGANGenerator32, sngan.SNGANDiscriminator32),
        ssgan_d=ssgan.SSGANDiscriminator32,
        layers=layers,
    )


_PKG, _WHY = _find_mimicry()
MIMICRY = _load_mimicry(_PKG) if _PKG is not None else None
needs_mimicry = pytest.mark.skipif(MIMICRY is None, reason=_WHY)
OURS = {
    "dcgan": (DCGANGenerator32, DCGANDiscriminator32),
    "sngan": (SNGANGenerator32, SNGANDiscriminator32),
}


# -------------------------------------------------------------------- the fixtures
def _randomise(g: nn.Module, d: nn.Module, seed: int) -> None:
    """Move BatchNorm statistics/affines and spectral-norm vectors far from their init.

    A few training-mode forwards update running statistics and (in the SNGAN
    discriminator) run power iterations on ``weight_u``/``weight_v``; then BatchNorm's
    affine parameters and statistics are perturbed so that every term matters.
    """
    gen = torch.Generator().manual_seed(seed)
    g.train(), d.train()
    with torch.no_grad():
        for _ in range(3):
            x = g(2.0 * torch.randn(4, g.nz, generator=gen))
            d(x)
            d(2 * torch.rand(4, 3, 32, 32, generator=gen) - 1)
        for m in g.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(1 + 0.3 * torch.randn(c, generator=gen))
                m.bias.copy_(0.2 * torch.randn(c, generator=gen))
                m.running_mean.add_(0.3 * torch.randn(c, generator=gen))
                m.running_var.mul_(0.5 + torch.rand(c, generator=gen))
    g.eval(), d.eval()


def _rel(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(max |a - b|, max |a - b| / max |b|)."""
    err = (a.detach() - b.detach()).abs().max().item()
    return err, err / max(b.detach().abs().max().item(), 1e-30)


def measure(variant: str, tmp: Path, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Largest absolute and relative differences, ours vs mimicry, for ``variant``.

    Keys: ``G`` (images), ``D(G(z))``, ``D(noise)`` (uniform images in [-1, 1]),
    ``log pi`` and ``grad log pi`` (through ``GANLatentTarget``, eval mode), and
    ``train D`` / ``train G`` (one training-mode forward: outputs, then every buffer
    it updated: BatchNorm running statistics, spectral-norm ``weight_u``/``weight_v``).
    """
    assert MIMICRY is not None
    torch.manual_seed(seed)
    mg_cls, md_cls = getattr(MIMICRY, variant)
    mg, md = mg_cls(), md_cls()
    _randomise(mg, md, seed)
    torch.save({"model_state_dict": mg.state_dict(), "global_step": 100000}, tmp / "netG.pth")
    torch.save({"model_state_dict": md.state_dict(), "global_step": 100000}, tmp / "netD.pth")
    g_cls, d_cls = OURS[variant]
    target = GANLatentTarget(
        g_cls(),
        d_cls(),
        generator_ckpt=str(tmp / "netG.pth"),
        discriminator_ckpt=str(tmp / "netD.pth"),
    )
    gen = torch.Generator().manual_seed(seed + 1)
    z = torch.randn(6, 128, generator=gen)
    noise = 2 * torch.rand(6, 3, 32, 32, generator=gen) - 1
    out: dict[str, tuple[float, float]] = {}
    with torch.no_grad():
        x_ref = mg(z)
        out["G"] = _rel(target.generator(z), x_ref)
        out["D(G(z))"] = _rel(target.discriminator(x_ref.clone()), md(x_ref.clone()))
        out["D(noise)"] = _rel(target.discriminator(noise.clone()), md(noise.clone()))
    z_ours, z_ref = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    lp = target.log_prob(z_ours)
    lp_ref = -0.5 * z_ref.square().sum(-1) - 64 * math.log(2 * math.pi) + md(mg(z_ref)).reshape(-1)
    out["log pi"] = _rel(lp, lp_ref)
    (grad,) = torch.autograd.grad(lp.sum(), z_ours)
    (grad_ref,) = torch.autograd.grad(lp_ref.sum(), z_ref)
    out["grad log pi"] = _rel(grad, grad_ref)
    # training mode (as mimicry trains): both sides from the same weights, same batch
    for name, ours, ref, inp in (
        ("train G", g_cls(), mg_cls(), z),
        ("train D", d_cls(), md_cls(), noise),
    ):
        ours.load_state_dict(
            target.generator.state_dict() if "G" in name else target.discriminator.state_dict()
        )
        ref.load_state_dict(mg.state_dict() if "G" in name else md.state_dict())
        ours.train(), ref.train()
        with torch.no_grad():
            diffs = [_rel(ours(inp.clone()), ref(inp.clone()))]
        sd, sd_ref = ours.state_dict(), ref.state_dict()
        diffs += [
            _rel(sd[k].float(), sd_ref[k].float())
            for k in sd_ref
            if "weight_" in k or "running" in k
        ]
        out[name] = (max(a for a, _ in diffs), max(r for _, r in diffs))
    return out


# --------------------------------------------------------- against mimicry itself
@needs_mimicry
@pytest.mark.parametrize("variant", ["dcgan", "sngan"])
def test_same_function_as_mimicry(tmp_path, variant):
    diffs = measure(variant, tmp_path)
    print(variant, diffs)  # visible with -s
    bad = {k: v for k, v in diffs.items() if not v[1] <= TOL}
    assert not bad, f"{variant}: relative differences above {TOL}: {bad}"


@needs_mimicry
@pytest.mark.parametrize("variant", ["dcgan", "sngan"])
def test_same_state_dict_layout_as_mimicry(variant):
    (mg_cls, md_cls), (g_cls, d_cls) = getattr(MIMICRY, variant), OURS[variant]
    for ref, ours in ((mg_cls(), g_cls()), (md_cls(), d_cls())):
        shapes = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
        assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == shapes


@needs_mimicry
def test_mimicry_own_spectral_norm_file_is_named(tmp_path):
    """A discriminator built from mimicry's own SNConv2d/SNLinear (``default=False``)."""
    ours = SNGANDiscriminator32(ndf=8)
    sd = {}
    for name, m in ours.named_modules():
        if isinstance(m, nn.Conv2d):
            k, p = m.kernel_size[0], m.padding[0]
            layer = MIMICRY.layers.SNConv2d(m.in_channels, m.out_channels, k, 1, p, default=False)
        elif isinstance(m, nn.Linear):
            layer = MIMICRY.layers.SNLinear(m.in_features, m.out_features, default=False)
        else:
            continue
        sd.update({f"{name}.{k}": v for k, v in layer.state_dict().items()})
    assert any(k.endswith(".sn_u") for k in sd)
    torch.save({"model_state_dict": sd}, tmp_path / "netD.pth")
    with pytest.raises(ValueError, match="own SpectralNorm class") as err:
        GANLatentTarget(
            SNGANGenerator32(ngf=8), ours, discriminator_ckpt=str(tmp_path / "netD.pth")
        )
    assert "sn_u" in str(err.value) and "missing keys" not in str(err.value)


@needs_mimicry
def test_mimicry_ssgan_discriminator_is_named(tmp_path):
    torch.save({"model_state_dict": MIMICRY.ssgan_d().state_dict()}, tmp_path / "netD.pth")
    with pytest.raises(ValueError, match=r"extra head `l_y`.*no class for that variant"):
        GANLatentTarget(
            SNGANGenerator32(ngf=8),
            SNGANDiscriminator32(),
            discriminator_ckpt=str(tmp_path / "netD.pth"),
        )


# ----------------------------------------- pinned without mimicry (CI, offline)
def _identity_shortcut_block(c: int, downsample: bool) -> DBlock:
    """A DBlock whose residual branch is zero, so its output is its shortcut alone."""
    block = DBlock(c, c, downsample=downsample, spectral_norm=False).eval()
    with torch.no_grad():
        for name, p in block.named_parameters():
            p.zero_()
            if name == "c_sc.weight":
                p.copy_(torch.eye(c).view(c, c, 1, 1))  # a 1×1 identity conv
    return block


@pytest.mark.parametrize("downsample", [False, True])
def test_dblock_shortcut_sees_relu_of_input(downsample):
    """mimicry's ``DBlock`` rectifies its input in place before the shortcut reads it.

    So the trained weights expect ``shortcut(relu(x))``; with ``shortcut(x)`` negative
    inputs would pass through. The input tensor itself must stay unchanged here.
    """
    block = _identity_shortcut_block(4, downsample)
    assert block.learnable_sc == downsample
    x = torch.randn(2, 4, 8, 8)
    assert (x < 0).any()
    x_before = x.clone()
    with torch.no_grad():
        y = block(x)
    expected = torch.relu(x)
    if downsample:
        expected = torch.nn.functional.avg_pool2d(expected, 2)
    torch.testing.assert_close(y, expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(x, x_before)


def test_dblock_residual_and_gradient_see_relu_of_input():
    """Residual branch on relu(x) too; the gradient is zero where the input is negative."""
    torch.manual_seed(0)
    block = DBlock(3, 3, downsample=False, spectral_norm=False).eval()
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    block(x).sum().backward()
    assert (x.grad[x.detach() < 0] == 0).all() and (x.grad[x.detach() > 0] != 0).any()
    with torch.no_grad():
        assert torch.equal(block(x), block(torch.relu(x)))


def test_first_block_does_not_rectify_the_image():
    """``DBlockOptimized`` (block1) reads the raw image on both branches, as mimicry's does."""
    torch.manual_seed(0)
    block = DBlockOptimized(3, 4, spectral_norm=False).eval()
    x = -torch.rand(1, 3, 8, 8)  # all negative: relu(x) would be zero
    with torch.no_grad():
        assert not torch.equal(block(x), block(torch.relu(x)))


if __name__ == "__main__":  # python tests/gan/test_mimicry.py: print the largest differences
    import tempfile

    if MIMICRY is None:
        sys.exit(_WHY)
    print(f"torch-mimicry {VERSION} from {_PKG}")
    print(f"{'variant':8s} {'quantity':12s} {'max abs diff':>14s} {'max rel diff':>14s}")
    for v in ("dcgan", "sngan"):
        with tempfile.TemporaryDirectory() as d:
            for k, (a, r) in measure(v, Path(d)).items():
                print(f"{v:8s} {k:12s} {a:14.3e} {r:14.3e}")
