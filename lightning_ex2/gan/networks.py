"""GAN generators and discriminators whose ``state_dict`` keys match published checkpoints.

Samsonov et al. 2022 (arXiv 2111.02702, Sec. 5) sample the latent space of
pretrained GANs seen as energy-based models. Their CIFAR-10 models are
torch-mimicry's (Lee & Town 2020, github.com/kwotsin/mimicry) ``DCGANGenerator32``/
``DCGANDiscriminator32`` (non-saturating loss, checkpoint ``DCGAN_NS/netG_100000_steps.pth``)
and ``SNGANGenerator32``/``SNGANDiscriminator32`` (hinge loss, ``SNGAN_Hinge/netG.pth``),
loaded from mimicry's ``{"model_state_dict": ...}`` files; their MNIST models are small
conv nets with a 2-D latent space (``GeneratorMNIST``/``DiscriminatorMNIST`` of the
reference code, trained as a vanilla GAN and as a WGAN).

Every generator maps ``z [B, latent_dim] -> images [B, C, H, W]`` in ``[-1, 1]``
(``tanh``) and has ``latent_dim`` and ``image_shape``; every discriminator maps
images to logits ``[B, 1]``.

**Key names, semantics and how sure we are.** The 32×32 classes compute what
torch-mimicry 0.1.16's ``DCGANGenerator32``/``DCGANDiscriminator32``/``SNGANGenerator32``/
``SNGANDiscriminator32`` compute, with the same ``state_dict`` (the paper's code pins
mimicry at commit ``a7fda06``; its ``modules/{resblocks,layers,spectral_norm}.py`` and
``nets/{dcgan,sngan}/*_{32,base}.py`` are byte-identical to 0.1.16's). This is
checked by execution, not by reading: ``tests/test_mimicry.py`` builds mimicry's own
modules (``bash scripts/setup_mimicry.sh`` fetches its sdist), gives them non-trivial
BatchNorm statistics and spectral-norm vectors, saves mimicry checkpoints and loads them
through :class:`~lightning_ex2.gan.target.GANLatentTarget`: G(z), D(x), ``log N(z) + d(G(z))``
and its gradient in ``z`` agree bit for bit in eval mode (largest difference 0.0), and
so do one training-mode forward and the buffers it updates (BatchNorm running statistics,
spectral-norm ``weight_u``/``weight_v``). One mimicry detail matters a lot: its
``DBlock`` feeds ``relu(x)``, not ``x``, to its shortcut (an in-place ReLU, see
:class:`DBlock`); without it the discriminator logits differed by up to 20 (DCGAN) and
9 (SNGAN). Layout:

* generators: ``l1`` (Linear ``nz -> 4·4·ngf``), ``block2..block4`` (``GBlock``:
  ``b1``, ``c1``, ``b2``, ``c2``, ``c_sc``), ``b5`` (BatchNorm), ``c5`` (3×3 conv to RGB);
  ``nz = 128``, ``ngf = 256`` for both DCGAN and SNGAN (mimicry's "DCGAN" at 32×32 is
  the same ResNet backbone, without spectral norm in the discriminator);
* discriminators: ``block1`` (``DBlockOptimized``: ``c1``, ``c2``, ``c_sc``),
  ``block2..block4`` (``DBlock``: ``c1``, ``c2``, ``c_sc`` in ``block2`` only, which
  downsamples), ``l5`` (Linear ``ndf -> 1``), ``ndf = 128``, global *sum* pooling;
* spectral norm: mimicry's ``SNConv2d``/``SNLinear`` default to
  ``torch.nn.utils.spectral_norm`` (keys ``weight_orig``, ``weight_u``, ``weight_v``,
  ``bias``), and so do these classes: in eval mode no power iteration runs and
  ``sigma = u^T W v`` from the stored vectors; in training mode one power iteration per
  forward updates ``u``/``v``, exactly as in mimicry. mimicry's own ``SpectralNorm``
  class (buffers ``sn_u``, ``sn_sigma``; its ``default=False`` path, also used directly
  by some layers of its SSGAN/cGAN-PD discriminators; in the public history since
  March 2020 never the default) is a different variant, which
  :func:`~lightning_ex2.gan.load_gan_checkpoint` rejects, naming it. The SNGAN discriminator normalises every conv and ``l5``.

What stays unverified: that the paper's released files were written by this mimicry
version (their keys are what it writes; the files themselves cannot be fetched here).

The MNIST classes follow the reference code's ``GeneratorMNIST``/``DiscriminatorMNIST``
(``l1.{0,2,4}``, ``conv_blocks.{1,3,5}``; ``model.{0,3,6,9}``, ``adv_layer.0``), same
confidence. ``DigitsGenerator``/``DigitsDiscriminator`` are ours: MLPs for scikit-learn's
8×8 digits that train on a CPU in a minute or two. ``FashionGenerator``/
``FashionDiscriminator`` are ours too: a CPU-sized DCGAN (64-D latent) for Fashion-MNIST
(Xiao, Rasul, Vollgraf 2017, arXiv 1708.07747), the CPU analogue of the paper's CIFAR-10
experiment (``configs/gan/fashion_gan_train.yaml``; shipped weights
``lightning_ex2/gan/weights/fashion_gan_*.pt``).

Example:
    >>> import torch
    >>> g, d = SNGANGenerator32(ngf=16), SNGANDiscriminator32(ndf=16)
    >>> x = g(torch.randn(2, g.latent_dim))
    >>> x.shape, d(x).shape
    (torch.Size([2, 3, 32, 32]), torch.Size([2, 1]))
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import spectral_norm as _sn

__all__ = [
    "DBlock",
    "DBlockOptimized",
    "DCGANDiscriminator32",
    "DCGANGenerator32",
    "DigitsDiscriminator",
    "DigitsGenerator",
    "FashionDiscriminator",
    "FashionGenerator",
    "GBlock",
    "MNISTDiscriminator",
    "MNISTGenerator",
    "SNGANDiscriminator32",
    "SNGANGenerator32",
]


def _conv(c_in: int, c_out: int, k: int, sn: bool, gain: float) -> nn.Module:
    """``k×k`` conv, stride 1, "same" padding, Xavier-uniform init, optionally spectral-normed."""
    conv = nn.Conv2d(c_in, c_out, k, 1, k // 2)
    nn.init.xavier_uniform_(conv.weight, gain)
    return _sn(conv) if sn else conv


# ----------------------------------------------------------------- residual blocks
class GBlock(nn.Module):
    """Generator residual block (Miyato et al. 2018; mimicry ``GBlock``).

    ``[B, c_in, H, W] -> [B, c_out, 2H, 2W]`` (bilinear upsampling, ``align_corners=False``)
    or same size. Residual: BN-ReLU-(up)-conv3-BN-ReLU-conv3; shortcut: (up)-conv1
    when learnable. Keys ``b1``, ``c1``, ``b2``, ``c2`` (+ ``c_sc``).
    """

    def __init__(self, c_in: int, c_out: int, upsample: bool = False) -> None:
        super().__init__()
        self.upsample = upsample
        self.b1 = nn.BatchNorm2d(c_in)
        self.c1 = _conv(c_in, c_out, 3, False, math.sqrt(2.0))
        self.b2 = nn.BatchNorm2d(c_out)
        self.c2 = _conv(c_out, c_out, 3, False, math.sqrt(2.0))
        self.learnable_sc = c_in != c_out or upsample
        if self.learnable_sc:
            self.c_sc = _conv(c_in, c_out, 1, False, 1.0)

    def _up(self, x: Tensor) -> Tensor:
        if not self.upsample:
            return x
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x: Tensor) -> Tensor:
        h = self.c1(self._up(F.relu(self.b1(x))))
        h = self.c2(F.relu(self.b2(h)))
        return h + (self.c_sc(self._up(x)) if self.learnable_sc else x)


class DBlock(nn.Module):
    """Discriminator residual block (mimicry ``DBlock``), both branches on ``relu(x)``.

    ``y = avgpool(conv3(relu(conv3(r)))) + avgpool(conv1(r))`` with ``r = relu(x)``
    (no pooling unless ``downsample``; shortcut ``r`` itself unless ``c_in != c_out`` or
    downsampling). ``[B, c_in, H, W] -> [B, c_out, H/2, W/2]`` when ``downsample``.
    Keys ``c1``, ``c2`` (+ ``c_sc``, the 1×1 conv).

    Note the shortcut: in torch-mimicry 0.1.16 ``DBlock._residual`` begins with
    ``h = x; h = self.activation(h)`` where the activation is ``nn.ReLU(inplace=True)``,
    so it rectifies the block's input tensor itself, and the ``_shortcut(x)`` that runs
    next reads ``relu(x)``, not ``x``. Every published mimicry discriminator was trained
    that way, so its weights only make sense with it; here it is written out explicitly
    (no in-place op; the caller's tensor is left unchanged).
    """

    def __init__(
        self, c_in: int, c_out: int, downsample: bool = False, spectral_norm: bool = True
    ) -> None:
        super().__init__()
        self.downsample = downsample
        self.c1 = _conv(c_in, c_in, 3, spectral_norm, math.sqrt(2.0))
        self.c2 = _conv(c_in, c_out, 3, spectral_norm, math.sqrt(2.0))
        self.learnable_sc = c_in != c_out or downsample
        if self.learnable_sc:
            self.c_sc = _conv(c_in, c_out, 1, spectral_norm, 1.0)

    def _down(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: Tensor) -> Tensor:
        # relu(x) feeds the shortcut too: mimicry's in-place ReLU (see the class docstring).
        x = F.relu(x)
        h = self._down(self.c2(F.relu(self.c1(x))))
        return h + (self._down(self.c_sc(x)) if self.learnable_sc else x)


class DBlockOptimized(nn.Module):
    """First discriminator block (mimicry ``DBlockOptimized``), always downsamples.

    Residual conv3-ReLU-conv3-avgpool; shortcut avgpool-conv1. Keys ``c1``, ``c2``, ``c_sc``.
    """

    def __init__(self, c_in: int, c_out: int, spectral_norm: bool = True) -> None:
        super().__init__()
        self.c1 = _conv(c_in, c_out, 3, spectral_norm, math.sqrt(2.0))
        self.c2 = _conv(c_out, c_out, 3, spectral_norm, math.sqrt(2.0))
        self.c_sc = _conv(c_in, c_out, 1, spectral_norm, 1.0)

    def forward(self, x: Tensor) -> Tensor:
        h = F.avg_pool2d(self.c2(F.relu(self.c1(x))), 2)
        return h + self.c_sc(F.avg_pool2d(x, 2))


# ---------------------------------------------------------------------- 32 × 32
class _ResNetGenerator32(nn.Module):
    """``z [B, nz] -> [B, 3, 32, 32]``: Linear to 4×4·ngf, three upsampling GBlocks, BN-ReLU-conv-tanh."""

    image_shape = (3, 32, 32)

    def __init__(self, nz: int = 128, ngf: int = 256, bottom_width: int = 4) -> None:
        super().__init__()
        self.nz = self.latent_dim = nz
        self.ngf, self.bottom_width = ngf, bottom_width
        self.l1 = nn.Linear(nz, bottom_width**2 * ngf)
        self.block2 = GBlock(ngf, ngf, upsample=True)
        self.block3 = GBlock(ngf, ngf, upsample=True)
        self.block4 = GBlock(ngf, ngf, upsample=True)
        self.b5 = nn.BatchNorm2d(ngf)
        self.c5 = nn.Conv2d(ngf, 3, 3, 1, padding=1)
        nn.init.xavier_uniform_(self.l1.weight, 1.0)
        nn.init.xavier_uniform_(self.c5.weight, 1.0)

    def forward(self, z: Tensor) -> Tensor:
        h = self.l1(z).view(z.shape[0], self.ngf, self.bottom_width, self.bottom_width)
        h = self.block4(self.block3(self.block2(h)))
        return torch.tanh(self.c5(F.relu(self.b5(h))))


class _ResNetDiscriminator32(nn.Module):
    """``[B, 3, 32, 32] -> logits [B, 1]``: four DBlocks, ReLU, global sum pooling, linear."""

    spectral_norm = True

    def __init__(self, ndf: int = 128) -> None:
        super().__init__()
        sn = self.spectral_norm
        self.ndf = ndf
        self.block1 = DBlockOptimized(3, ndf, spectral_norm=sn)
        self.block2 = DBlock(ndf, ndf, downsample=True, spectral_norm=sn)
        self.block3 = DBlock(ndf, ndf, downsample=False, spectral_norm=sn)
        self.block4 = DBlock(ndf, ndf, downsample=False, spectral_norm=sn)
        l5 = nn.Linear(ndf, 1)
        nn.init.xavier_uniform_(l5.weight, 1.0)
        self.l5 = _sn(l5) if sn else l5

    def forward(self, x: Tensor) -> Tensor:
        h = self.block4(self.block3(self.block2(self.block1(x))))
        return self.l5(F.relu(h).sum(dim=(2, 3)))


class DCGANGenerator32(_ResNetGenerator32):
    """torch-mimicry ``DCGANGenerator32`` (ResNet backbone, ``nz=128``, ``ngf=256``), NS loss."""


class DCGANDiscriminator32(_ResNetDiscriminator32):
    """torch-mimicry ``DCGANDiscriminator32``: the SNGAN discriminator without spectral norm."""

    spectral_norm = False


class SNGANGenerator32(_ResNetGenerator32):
    """torch-mimicry ``SNGANGenerator32`` (Miyato et al. 2018), ``nz=128``, ``ngf=256``, hinge loss."""


class SNGANDiscriminator32(_ResNetDiscriminator32):
    """torch-mimicry ``SNGANDiscriminator32``: spectral norm on every conv and on ``l5``, ``ndf=128``."""


# ------------------------------------------------------------------------ MNIST
class MNISTGenerator(nn.Module):
    """The paper's MNIST generator: ``z [B, latent_dim] -> [B, 1, 28, 28]``.

    MLP ``latent_dim -> 64 -> 128 -> 128·7·7`` (LeakyReLU 0.2), then two (nearest ×2
    upsample, 3×3 conv, LeakyReLU) stages and a 3×3 conv to one channel, ``tanh``.
    The paper uses ``latent_dim = 2`` so that the latent energy can be plotted.
    """

    image_shape = (1, 28, 28)

    def __init__(self, latent_dim: int = 2) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.l1 = nn.Sequential(
            nn.Linear(latent_dim, 64),
            nn.LeakyReLU(0.2),
            nn.Linear(64, 128),
            nn.LeakyReLU(0.2),
            nn.Linear(128, 128 * 7 * 7),
        )
        self.conv_blocks = nn.Sequential(
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 128, 3, 1, 1),
            nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 64, 3, 1, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(64, 1, 3, 1, 1),
            nn.Tanh(),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.conv_blocks(self.l1(z).view(z.shape[0], 128, 7, 7))


class MNISTDiscriminator(nn.Module):
    """The paper's MNIST discriminator/critic: ``[B, 1, 28, 28] -> [B, 1]``.

    Four stride-2 3×3 convs (16, 32, 64, 128 channels, LeakyReLU 0.2; 28 -> 2), then a
    linear layer on the 512 features. ``bias=False`` drops the last bias, as the
    reference's WGAN critic does.

    ``weight_clip``: the reference's WGAN critic (``DiscriminatorMNISTWGAN``) clamps all
    its parameters in place to ``[-0.06, 0.06]`` at the start of every forward, so a
    file saved after an optimizer step may hold values just outside that range which
    it never computes with. With ``weight_clip=c`` the forward uses the parameters
    clamped to ``[-c, c]`` (they are not modified), which reproduces the reference's
    logits from its file (``bias=False, weight_clip=0.06``). Default ``None``: no clamp.
    """

    def __init__(self, bias: bool = True, weight_clip: float | None = None) -> None:
        super().__init__()
        if weight_clip is not None and not weight_clip > 0:
            raise ValueError(f"MNISTDiscriminator: `weight_clip` must be > 0, got {weight_clip}")
        self.weight_clip = weight_clip
        layers: list[nn.Module] = []
        for c_in, c_out in ((1, 16), (16, 32), (32, 64), (64, 128)):
            layers += [nn.Conv2d(c_in, c_out, 3, 2, 1), nn.LeakyReLU(0.2), nn.Dropout2d(0.0)]
        self.model = nn.Sequential(*layers)
        self.adv_layer = nn.Sequential(nn.Linear(512, 1, bias=bias))

    def forward(self, x: Tensor) -> Tensor:
        if self.weight_clip is None:
            return self.adv_layer(self.model(x).flatten(1))
        c = self.weight_clip
        h = x
        for layer in self.model:
            if isinstance(layer, nn.Conv2d):
                w, b = layer.weight.clamp(-c, c), layer.bias.clamp(-c, c)
                h = F.conv2d(h, w, b, layer.stride, layer.padding)
            else:
                h = layer(h)
        last = self.adv_layer[0]
        bias = None if last.bias is None else last.bias.clamp(-c, c)
        return F.linear(h.flatten(1), last.weight.clamp(-c, c), bias)


# ------------------------------------------------------------------- 8 × 8 digits
class DigitsGenerator(nn.Module):
    """MLP ``z [B, latent_dim] -> [B, 1, 8, 8]`` for scikit-learn's digits (CPU demos).

    ``latent_dim -> hidden -> 2·hidden -> 64``, LeakyReLU 0.2, ``tanh``. Keys ``net.{0,2,4}``.
    """

    image_shape = (1, 8, 8)

    def __init__(self, latent_dim: int = 2, hidden: int = 256) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, 2 * hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(2 * hidden, 64),
        )

    def forward(self, z: Tensor) -> Tensor:
        return torch.tanh(self.net(z)).view(z.shape[0], *self.image_shape)


class DigitsDiscriminator(nn.Module):
    """MLP ``[B, 1, 8, 8] -> [B, 1]``: ``64 -> 2·hidden -> hidden -> 1``, LeakyReLU 0.2."""

    def __init__(self, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(64, 2 * hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(2 * hidden, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))


class FashionGenerator(nn.Module):
    """DCGAN generator ``z [B, latent_dim] -> [B, 1, 28, 28]`` in ``[-1, 1]``.

    ``Linear(latent_dim -> 2·ngf·7·7)``, BatchNorm, ReLU; ``ConvTranspose 4×4 /2``
    (``2·ngf -> ngf``, 7 -> 14), BatchNorm, ReLU; ``ConvTranspose 4×4 /2`` (``ngf -> 1``,
    14 -> 28), ``tanh``. Keys ``l1``, ``b1``, ``c2``, ``b2``, ``c3``.
    """

    image_shape = (1, 28, 28)

    def __init__(self, latent_dim: int = 64, ngf: int = 64) -> None:
        super().__init__()
        for name, value in (("latent_dim", latent_dim), ("ngf", ngf)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"FashionGenerator: {name} must be a positive int, got {value!r}")
        self.latent_dim, self.ngf = latent_dim, ngf
        self.l1 = nn.Linear(latent_dim, 2 * ngf * 7 * 7)
        self.b1 = nn.BatchNorm2d(2 * ngf)
        self.c2 = nn.ConvTranspose2d(2 * ngf, ngf, 4, 2, 1)
        self.b2 = nn.BatchNorm2d(ngf)
        self.c3 = nn.ConvTranspose2d(ngf, 1, 4, 2, 1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.l1(z).view(z.shape[0], 2 * self.ngf, 7, 7)
        # channels-last: oneDNN's transposed convolutions run ~1.5x faster on CPUs that way
        h = F.relu(self.b1(h)).contiguous(memory_format=torch.channels_last)
        h = F.relu(self.b2(self.c2(h)))
        return torch.tanh(self.c3(h)).contiguous()


class FashionDiscriminator(nn.Module):
    """DCGAN discriminator ``[B, 1, 28, 28] -> logits [B, 1]``.

    ``Conv 4×4 /2`` (``1 -> ndf``, 28 -> 14), LeakyReLU 0.2; ``Conv 4×4 /2``
    (``ndf -> 2·ndf``, 14 -> 7), LeakyReLU 0.2; ``Linear(2·ndf·7·7 -> 1)``. No
    normalisation, so ``d(G(z))`` is the same function in train and eval mode.
    Keys ``c1``, ``c2``, ``l3``.
    """

    def __init__(self, ndf: int = 64) -> None:
        super().__init__()
        if not isinstance(ndf, int) or ndf < 1:
            raise ValueError(f"FashionDiscriminator: ndf must be a positive int, got {ndf!r}")
        self.ndf = ndf
        self.c1 = nn.Conv2d(1, ndf, 4, 2, 1)
        self.c2 = nn.Conv2d(ndf, 2 * ndf, 4, 2, 1)
        self.l3 = nn.Linear(2 * ndf * 7 * 7, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = F.leaky_relu(self.c1(x.contiguous(memory_format=torch.channels_last)), 0.2)
        h = F.leaky_relu(self.c2(h), 0.2)
        return self.l3(h.flatten(1))
