"""Isotropic / diagonal Gaussian global proposal for i-SIR and Ex2MCMC.

Every proposal in :mod:`lightning_ex2.proposals` is an ``nn.Module`` with

* ``dim``: the event dimension ``D``;
* ``sample_and_log_prob(shape, generator=None) -> (x [*shape, D], log_q [*shape])``;
* ``log_prob(x [..., D]) -> [...]``;
* ``standardize(x [..., D]) -> z [..., D]`` and
  ``unstandardize(z [..., D]) -> (x [..., D], log_q [...])``: a bijection onto a
  space in which the proposal is ``N(0, I)``.  i-SIR's *dependent proposals*
  (Samsonov et al. 2022, Sec. 3) correlate particles in that space.

Example:
    >>> q = GaussianProposal(dim=2, scale=3.0)
    >>> x, log_q = q.sample_and_log_prob((5, 4))
    >>> x.shape, log_q.shape
    (torch.Size([5, 4, 2]), torch.Size([5, 4]))
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from lightning_ex2.random import randn_rows

_LOG_2PI = math.log(2 * math.pi)


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """``log N(z; 0, I)`` summed over the last axis: ``[..., D] -> [...]``."""
    return -0.5 * (torch.linalg.vector_norm(z, dim=-1).square() + z.shape[-1] * _LOG_2PI)


class GaussianProposal(nn.Module):
    """``q = N(loc, diag(scale^2))``, the proposal of the paper's synthetic runs.

    Args:
        dim: event dimension ``D``.
        loc: mean, a float or a length-``D`` sequence/tensor.
        scale: standard deviation(s), a positive float or length-``D`` sequence/tensor.
    """

    def __init__(
        self,
        dim: int,
        loc: float | Sequence[float] | Tensor = 0.0,
        scale: float | Sequence[float] | Tensor = 1.0,
    ) -> None:
        super().__init__()
        if int(dim) != dim or dim < 1:
            raise ValueError(f"GaussianProposal: `dim` must be a positive integer, got {dim!r}")
        self.dim = int(dim)
        loc_t = torch.as_tensor(loc, dtype=torch.get_default_dtype()).expand(self.dim).clone()
        scale_t = torch.as_tensor(scale, dtype=torch.get_default_dtype()).expand(self.dim).clone()
        if not torch.all(scale_t > 0) or not torch.all(torch.isfinite(scale_t)):
            raise ValueError(
                f"GaussianProposal: `scale` must be positive and finite, got {scale!r}"
            )
        if not torch.all(torch.isfinite(loc_t)):
            raise ValueError(f"GaussianProposal: `loc` must be finite, got {loc!r}")
        self.register_buffer("loc", loc_t)
        self.register_buffer("scale", scale_t)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"

    def standardize(self, x: Tensor) -> Tensor:
        return (x - self.loc) / self.scale

    def unstandardize(self, z: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.addcmul(self.loc, self.scale, z)
        return x, standard_normal_log_prob(z) - self.scale.log().sum()

    def log_prob(self, x: Tensor) -> Tensor:
        return standard_normal_log_prob(self.standardize(x)) - self.scale.log().sum()

    def sample_and_log_prob(
        self, shape: int | Sequence[int], generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        norm = self.loc.new_empty(math.prod(shape))
        loc, scale = self.loc, self.scale

        def to_x(z: Tensor, start: int, stop: int) -> None:
            # one pass per block of rows while it is in cache: |z| for log q, then
            # x = loc + scale * z in place (the arithmetic of unstandardize, row by row)
            torch.linalg.vector_norm(z, dim=-1, out=norm[start:stop])
            torch.addcmul(loc, scale, z, out=z)

        x = randn_rows(
            (*shape, self.dim), to_x, generator=generator, device=loc.device, dtype=loc.dtype
        )
        log_q = -0.5 * (norm.square() + self.dim * _LOG_2PI) - scale.log().sum()
        return x, log_q.reshape(shape)

    def sample(
        self, shape: int | Sequence[int], generator: torch.Generator | None = None
    ) -> Tensor:
        return self.sample_and_log_prob(shape, generator)[0]
