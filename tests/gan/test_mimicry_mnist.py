"""Our MNIST GAN/WGAN nets against the paper's reference definitions, by execution.

The reference code's ``GeneratorMNIST``/``DiscriminatorMNIST`` (vanilla GAN) and
``GeneratorMNISTWGAN``/``DiscriminatorMNISTWGAN`` (WGAN with weight clipping) live in
``code_submission/mnist_experiments/models/{vanilla_gan_mnist,wgan_cp_mnist}.py`` of
github.com/svsamsonov/ex2mcmc_new. They are *not* in the PyPI package ``ex2mcmc==0.0.4``
(its ``models`` hold only wrappers of torch-mimicry's CIFAR-10 nets and the samplers'
flows), so no package registry delivers them: point ``LX_EX2MCMC_MNIST_MODELS`` at a
directory holding those two files to run these tests; without it they skip, saying so.

Reference weights are saved as a checkpoint, loaded through ``GANLatentTarget`` into
``MNISTGenerator``/``MNISTDiscriminator`` and G(z), D(x), ``log pi`` and its gradient are
compared. The WGAN critic clamps its parameters to ±0.06 in place at every forward; the
reference nets are freshly initialised here, so most of their weights lie outside that
range, which is what ``MNISTDiscriminator(weight_clip=0.06)`` must reproduce.
"""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path

import pytest
import torch

from lightning_ex2.gan import GANLatentTarget, MNISTDiscriminator, MNISTGenerator

TOL = 1e-5
_DIR = os.environ.get("LX_EX2MCMC_MNIST_MODELS")
_FILES = ("vanilla_gan_mnist.py", "wgan_cp_mnist.py")
_WHY = (
    "set LX_EX2MCMC_MNIST_MODELS to a directory with the reference code's "
    "vanilla_gan_mnist.py and wgan_cp_mnist.py (github.com/svsamsonov/ex2mcmc_new, "
    "code_submission/mnist_experiments/models; not part of the ex2mcmc PyPI package)"
)
_HAVE = bool(_DIR) and all((Path(_DIR) / f).is_file() for f in _FILES)
needs_reference = pytest.mark.skipif(not _HAVE, reason=_WHY)


def _module(name: str):
    spec = importlib.util.spec_from_file_location(f"_ex2mcmc_ref_{name}", Path(_DIR) / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rel(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    err = (a.detach() - b.detach()).abs().max().item()
    return err, err / max(b.detach().abs().max().item(), 1e-30)


def measure(kind: str, tmp: Path, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Largest (absolute, relative) differences, ours vs the reference, ``kind`` gan|wgan."""
    torch.manual_seed(seed)
    if kind == "gan":
        mod = _module("vanilla_gan_mnist")
        ref_g, ref_d = mod.GeneratorMNIST(2), mod.DiscriminatorMNIST()
        ours_d = MNISTDiscriminator()
    else:
        mod = _module("wgan_cp_mnist")
        ref_g, ref_d = mod.GeneratorMNISTWGAN(2), mod.DiscriminatorMNISTWGAN()
        ours_d = MNISTDiscriminator(bias=False, weight_clip=0.06)
    ref_g.eval(), ref_d.eval()
    torch.save({"model_state_dict": ref_g.state_dict()}, tmp / "g.pth")
    torch.save({"model_state_dict": ref_d.state_dict()}, tmp / "d.pth")  # before any clamp
    target = GANLatentTarget(
        MNISTGenerator(latent_dim=2),
        ours_d,
        generator_ckpt=str(tmp / "g.pth"),
        discriminator_ckpt=str(tmp / "d.pth"),
    )
    if kind == "wgan":  # the case weight_clip is there for: values outside the clamp range
        assert max(p.abs().max().item() for p in ours_d.parameters()) > 0.06
    gen = torch.Generator().manual_seed(seed + 1)
    z = 2 * torch.randn(16, 2, generator=gen)
    noise = 2 * torch.rand(16, 1, 28, 28, generator=gen) - 1
    out = {}
    with torch.no_grad():
        x_ref = ref_g(z)
        out["G"] = _rel(target.generator(z), x_ref)
        out["D(G(z))"] = _rel(target.discriminator(x_ref), ref_d(x_ref))
        out["D(noise)"] = _rel(target.discriminator(noise), ref_d(noise))
    z1, z2 = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    lp = target.log_prob(z1)
    lp_ref = -0.5 * z2.square().sum(-1) - math.log(2 * math.pi) + ref_d(ref_g(z2)).reshape(-1)
    out["log pi"] = _rel(lp, lp_ref)
    out["grad log pi"] = _rel(
        torch.autograd.grad(lp.sum(), z1)[0], torch.autograd.grad(lp_ref.sum(), z2)[0]
    )
    return out


@needs_reference
@pytest.mark.parametrize("kind", ["gan", "wgan"])
def test_same_function_as_reference(tmp_path, kind):
    diffs = measure(kind, tmp_path)
    print(kind, diffs)
    bad = {k: v for k, v in diffs.items() if not v[1] <= TOL}
    assert not bad, f"{kind}: relative differences above {TOL}: {bad}"


def test_weight_clip_uses_clamped_parameters_without_changing_them():
    torch.manual_seed(0)
    d = MNISTDiscriminator(bias=False, weight_clip=0.06).eval()
    before = {k: v.clone() for k, v in d.state_dict().items()}
    assert max(v.abs().max().item() for v in before.values()) > 0.06
    clamped = MNISTDiscriminator(bias=False).eval()
    clamped.load_state_dict({k: v.clamp(-0.06, 0.06) for k, v in before.items()})
    plain = MNISTDiscriminator(bias=False).eval()
    plain.load_state_dict(before)
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(d(x), clamped(x), rtol=1e-6, atol=1e-6)
        assert not torch.allclose(d(x), plain(x))
    assert all(torch.equal(v, d.state_dict()[k]) for k, v in before.items())
    with pytest.raises(ValueError, match="weight_clip"):
        MNISTDiscriminator(weight_clip=0.0)


if __name__ == "__main__":  # python tests/gan/test_mimicry_mnist.py: print the largest differences
    import sys
    import tempfile

    if not _HAVE:
        sys.exit(_WHY)
    print(f"{'net':6s} {'quantity':12s} {'max abs diff':>14s} {'max rel diff':>14s}")
    for k in ("gan", "wgan"):
        with tempfile.TemporaryDirectory() as d:
            for q, (a, r) in measure(k, Path(d)).items():
                print(f"{k:6s} {q:12s} {a:14.3e} {r:14.3e}")
