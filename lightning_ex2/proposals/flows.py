"""Normalizing-flow global proposals for FlEx2MCMC (Samsonov et al. 2022, arXiv 2111.02702).

A :class:`FlowProposal` is ``q = (A ∘ T)_# N(0, I)`` where ``T`` is an `nflows
<https://github.com/bayesiains/nflows>`_ bijection initialised at the identity and
``A(y) = loc + scale * y`` is a fixed (buffer) affine map.  At initialisation the flow
therefore *is* the Gaussian proposal ``N(loc, diag(scale^2))`` -- the paper starts
FlEx2MCMC from such a wide Gaussian and trains ``T`` while sampling.

Three families of ``T`` are available (``flow=``):

* ``"realnvp"`` (default) -- affine coupling layers with alternating masks
  (Dinh, Sohl-Dickstein & Bengio, *Density estimation using Real NVP*, ICLR 2017).
  Sampling and density evaluation both cost one network pass per layer.
* ``"spline"`` -- rational-quadratic neural-spline coupling layers with linear tails
  (Durkan, Bekasov, Murray & Papamakarios, *Neural Spline Flows*, NeurIPS 2019).
* ``"maf"`` -- masked affine autoregressive layers (MADE conditioners) with alternating
  (natural / reversed) variable orders (Papamakarios, Pavlakou & Murray, *Masked Autoregressive Flow
  for Density Estimation*, NeurIPS 2017).  **Sampling is sequential in ``D``** (``D``
  network passes per layer), which is slow for i-SIR where many particles are drawn
  every step; density evaluation is a single pass.  Prefer ``"realnvp"``/``"spline"``.

Every proposal in :mod:`lightning_ex2.proposals` exposes ``dim``,
``sample_and_log_prob(shape, generator=None)``, ``log_prob(x)``, ``sample(shape)``,
``standardize(x) -> z`` and ``unstandardize(z) -> (x, log_q)``, where ``z`` lives in the
space in which the proposal is ``N(0, I)`` (here: the flow's base space), used by
i-SIR's dependent proposals.

Identity initialisation: the last linear layer of every conditioner is zero-initialised
and its bias is set so that each layer is exactly (affine) or to float precision
(spline, MAF) the identity map.  Without this, nflows' default initialisation of MAF
produces samples of order ``1e19`` and NaN log-densities in moderate dimension.

nflows conventions used here: ``transform(y) -> (z, log|det dz/dy|)`` maps data to noise
and ``transform.inverse(z) -> (y, log|det dy/dz|)`` maps noise to data, so
``log q(y) = log N(z) + log|det dz/dy| = log N(z) - log|det dy/dz|``.

Example:
    >>> import torch
    >>> q = FlowProposal(dim=2, flow="realnvp", scale=3.0)
    >>> x, log_q = q.sample_and_log_prob((5, 4), generator=torch.Generator().manual_seed(0))
    >>> x.shape, log_q.shape
    (torch.Size([5, 4, 2]), torch.Size([5, 4]))
    >>> torch.allclose(q.log_prob(x), log_q, atol=1e-5)
    True
    >>> from lightning_ex2.proposals.gaussian import GaussianProposal
    >>> torch.allclose(GaussianProposal(2, scale=3.0).log_prob(x), log_q, atol=1e-5)
    True
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from nflows.transforms import (
    AffineCouplingTransform,
    CompositeTransform,
    MaskedAffineAutoregressiveTransform,
    PiecewiseRationalQuadraticCouplingTransform,
    ReversePermutation,
    Transform,
)
from nflows.transforms.splines.rational_quadratic import DEFAULT_MIN_DERIVATIVE
from torch import Tensor, nn

from lightning_ex2.proposals.gaussian import GaussianProposal, standard_normal_log_prob
from lightning_ex2.random import randn

__all__ = ["ARCHITECTURE", "FLOW_TYPES", "FlowProposal", "build_flow_transform"]

#: Valid values of ``FlowProposal(flow=...)``.
FLOW_TYPES: tuple[str, ...] = ("realnvp", "spline", "maf")

_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "elu": F.elu,
    "gelu": F.gelu,
    "silu": F.silu,
    "tanh": torch.tanh,
}

# nflows' MaskedAffineAutoregressiveTransform uses scale = softplus(u) + 1e-3.
_MAF_EPSILON = 1e-3


def _inv_softplus(y: float) -> float:
    """``u`` such that ``softplus(u) = y`` (``y > 0``)."""
    return math.log(math.expm1(y))


class _ConditionerMLP(nn.Module):
    """Fully connected conditioner ``[B, in] -> [B, out]`` for coupling layers.

    ``n_hidden_layers`` hidden layers of width ``hidden_features``; the output layer is
    zero-initialised (so the coupling layer starts at the identity, given a suitable
    output bias set by :func:`build_flow_transform`).  The ``context`` argument required
    by nflows' coupling API is ignored (unconditional flows).  The ``hidden_features``
    attribute is read by nflows' spline coupling to rescale the bin logits.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_features: int,
        n_hidden_layers: int,
        activation: Callable[[Tensor], Tensor],
    ) -> None:
        super().__init__()
        self.hidden_features = hidden_features
        self.activation = activation
        sizes = [in_features] + [hidden_features] * n_hidden_layers
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.output = nn.Linear(hidden_features, out_features)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, inputs: Tensor, context: Tensor | None = None) -> Tensor:
        h = inputs
        for layer in self.hidden:
            h = self.activation(layer(h))
        return self.output(h)


class _AffineCoupling(AffineCouplingTransform):
    """nflows affine coupling with the scale ``exp(c * tanh(u / c))``.

    nflows 0.14 parametrises the coupling scale as ``sigmoid(u + 2) + 1e-3``, which lies
    in ``(0.001, 1.001)``: the data->noise direction can (almost) never expand, so a
    flow started from a *wide* Gaussian cannot learn to contract towards a narrower
    target, and the identity needs ``u ≈ 4.9`` where the sigmoid is saturated
    (gradient ``≈ 1e-3``).  The soft-clamped exponential here equals 1 at ``u = 0``
    (exact identity with a zero-initialised conditioner), has unit gradient there, and
    keeps each layer's log-scale in ``(-c, c)`` for stability.
    """

    def __init__(self, mask: Tensor, transform_net_create_fn, log_scale_clamp: float) -> None:
        super().__init__(mask, transform_net_create_fn)
        self.log_scale_clamp = float(log_scale_clamp)

    def _scale_and_shift(self, transform_params: Tensor) -> tuple[Tensor, Tensor]:
        unconstrained = transform_params[:, self.num_transform_features :, ...]
        shift = transform_params[:, : self.num_transform_features, ...]
        c = self.log_scale_clamp
        return torch.exp(c * torch.tanh(unconstrained / c)), shift


#: The arguments of :class:`FlowProposal` that shape its bijection; their defaults are
#: :class:`FlowProposal`'s, written there only.
ARCHITECTURE: tuple[str, ...] = (
    "flow", "n_blocks", "hidden_features", "n_hidden_layers", "num_bins", "tail_bound",
    "activation", "log_scale_clamp",
)  # fmt: skip


def build_flow_transform(dim: int, **architecture: Any) -> Transform:
    """Build an identity-initialised nflows bijection ``T`` on ``R^dim``.

    The returned ``CompositeTransform`` follows nflows' convention: calling it maps
    data ``y [B, D]`` to noise ``z [B, D]`` and returns ``(z, log|det dz/dy| [B])``;
    ``.inverse(z)`` returns ``(y, log|det dy/dz| [B])``.  See :class:`FlowProposal` for
    the meaning of ``architecture`` (any of :data:`ARCHITECTURE`; :class:`FlowProposal`'s
    defaults for those left out).

    Raises:
        TypeError: an argument not in :data:`ARCHITECTURE`.
        ValueError: for an unknown ``flow`` or ``activation``, non-positive sizes, or
            ``dim < 2`` with a coupling flow (``"realnvp"``/``"spline"``).
    """
    defaults = inspect.signature(FlowProposal).parameters
    unknown = sorted(set(architecture) - set(ARCHITECTURE))
    if unknown:
        raise TypeError(f"build_flow_transform: unknown arguments {unknown}; valid: {ARCHITECTURE}")
    flow, n_blocks, hidden_features, n_hidden_layers, num_bins, tail_bound, activation, clamp = (
        architecture.get(name, defaults[name].default) for name in ARCHITECTURE
    )
    if flow not in FLOW_TYPES:
        raise ValueError(f"Unknown flow {flow!r}; valid names are {', '.join(FLOW_TYPES)}")
    if activation not in _ACTIVATIONS:
        raise ValueError(
            f"Unknown activation {activation!r}; valid names are {', '.join(_ACTIVATIONS)}"
        )
    if int(dim) != dim or dim < 1:
        raise ValueError(f"FlowProposal: `dim` must be a positive integer, got {dim!r}")
    dim = int(dim)
    for name, value in (
        ("n_blocks", n_blocks),
        ("hidden_features", hidden_features),
        ("n_hidden_layers", n_hidden_layers),
        ("num_bins", num_bins),
    ):
        if int(value) != value or value < 1:
            raise ValueError(f"FlowProposal: `{name}` must be a positive integer, got {value!r}")
    if not tail_bound > 0:
        raise ValueError(f"FlowProposal: `tail_bound` must be positive, got {tail_bound!r}")
    if not clamp > 0:
        raise ValueError(f"FlowProposal: `log_scale_clamp` must be positive, got {clamp!r}")
    if dim < 2 and flow != "maf":
        raise ValueError(
            f"flow={flow!r} is a coupling flow and needs dim >= 2 (got dim={dim}); "
            "use flow='maf' (an elementwise affine map when dim == 1) or a GaussianProposal"
        )
    act = _ACTIVATIONS[activation]

    def make_net(in_features: int, out_features: int) -> _ConditionerMLP:
        return _ConditionerMLP(in_features, out_features, hidden_features, n_hidden_layers, act)

    layers: list[Transform] = []
    for block in range(n_blocks):
        if flow == "maf":
            maf = MaskedAffineAutoregressiveTransform(
                features=dim,
                hidden_features=hidden_features,
                num_blocks=n_hidden_layers - 1,
                use_residual_blocks=False,
                activation=act,
            )
            final = maf.autoregressive_net.final_layer
            nn.init.zeros_(final.weight)
            with torch.no_grad():
                # params.view(B, D, 2): [..., 0] = unconstrained scale, [..., 1] = shift.
                bias = final.bias.view(dim, 2)
                bias[:, 0] = _inv_softplus(1.0 - _MAF_EPSILON)
                bias[:, 1] = 0.0
            # Odd blocks use the reversed autoregressive order, Rev ∘ MAF ∘ Rev, so the
            # orderings alternate while the composite stays the identity map at init.
            layers.extend(
                [ReversePermutation(dim), maf, ReversePermutation(dim)] if block % 2 else [maf]
            )
            continue
        mask = (torch.arange(dim) + block) % 2  # > 0: transformed, <= 0: conditioned on
        if flow == "realnvp":
            layers.append(_AffineCoupling(mask, make_net, clamp))
        else:  # spline
            layer = PiecewiseRationalQuadraticCouplingTransform(
                mask,
                make_net,
                num_bins=num_bins,
                tails="linear",
                tail_bound=tail_bound,
                min_derivative=DEFAULT_MIN_DERIVATIVE,
            )
            # Zero logits give equal bins (identity), but knot derivatives
            # min_derivative + softplus(0) ≈ 0.69; set them to exactly 1 like the tails.
            with torch.no_grad():
                bias = layer.transform_net.output.bias.view(
                    layer.num_transform_features, 3 * num_bins - 1
                )
                bias[:, 2 * num_bins :] = _inv_softplus(1.0 - DEFAULT_MIN_DERIVATIVE)
            layers.append(layer)
    return CompositeTransform(layers)


class FlowProposal(nn.Module):
    """Normalizing-flow proposal ``x = loc + scale * T^{-1}(z)``, ``z ~ N(0, I)``.

    ``T`` (data -> noise) is an identity-initialised nflows transform, so an untrained
    ``FlowProposal(dim, loc=m, scale=s)`` equals ``GaussianProposal(dim, m, s)``.
    All methods are differentiable w.r.t. the flow parameters (the samples are
    reparameterised, as needed by the backward-KL loss of FlEx2MCMC).

    Args:
        dim: event dimension ``D`` (``>= 2`` for the coupling flows; ``"maf"`` also
            accepts ``D = 1``, where it is an elementwise affine map).
        flow: ``"realnvp"`` (affine coupling, Dinh et al. 2017; default), ``"spline"``
            (rational-quadratic coupling with linear tails, Durkan et al. 2019) or
            ``"maf"`` (masked affine autoregressive, Papamakarios et al. 2017; sampling
            costs ``D`` sequential network passes per layer -- slow for i-SIR).
        n_blocks: number of coupling / autoregressive layers.  Coupling layers alternate
            the masks (even/odd coordinates); MAF layers alternate the autoregressive
            order (odd blocks are wrapped in ``ReversePermutation``).
        hidden_features: width of the conditioner networks (MLP / MADE).
        n_hidden_layers: number of hidden layers of each conditioner.
        num_bins: spline bins (``"spline"`` only).
        tail_bound: splines act on ``[-tail_bound, tail_bound]`` of the standardised
            space and are the identity outside (``"spline"`` only).
        activation: conditioner nonlinearity, one of ``relu, elu, gelu, silu, tanh``.
        log_scale_clamp: per-layer bound ``c`` on ``|log scale|`` of the affine coupling,
            ``log scale = c * tanh(u / c)`` (``"realnvp"`` only).
        loc: mean of the fixed outer affine map, float or length-``D`` sequence/tensor.
        scale: positive scale of the fixed outer affine map, float or length-``D``.

    Shapes: ``x`` and ``z`` are ``[..., D]``; densities are ``[...]``.

    Example:
        >>> q = FlowProposal(dim=3, flow="spline", scale=2.0)
        >>> x, log_q = q.sample_and_log_prob(7)
        >>> x.shape, log_q.shape
        (torch.Size([7, 3]), torch.Size([7]))
        >>> loss = -q.log_prob(torch.randn(16, 3)).mean()  # e.g. forward KL
        >>> loss.backward()
    """

    def __init__(
        self,
        dim: int,
        flow: str = "realnvp",
        n_blocks: int = 4,
        hidden_features: int = 64,
        n_hidden_layers: int = 2,
        num_bins: int = 8,
        tail_bound: float = 5.0,
        activation: str = "relu",
        log_scale_clamp: float = 3.0,
        loc: float | Sequence[float] | Tensor = 0.0,
        scale: float | Sequence[float] | Tensor = 1.0,
    ) -> None:
        super().__init__()
        given = locals()  # the architecture arguments, by name (their defaults: above only)
        self.transform = build_flow_transform(dim, **{name: given[name] for name in ARCHITECTURE})
        self.dim = int(dim)
        self.flow = flow
        loc_t = torch.as_tensor(loc, dtype=torch.get_default_dtype()).expand(self.dim).clone()
        scale_t = torch.as_tensor(scale, dtype=torch.get_default_dtype()).expand(self.dim).clone()
        if not torch.all(scale_t > 0) or not torch.all(torch.isfinite(scale_t)):
            raise ValueError(f"FlowProposal: `scale` must be positive and finite, got {scale!r}")
        if not torch.all(torch.isfinite(loc_t)):
            raise ValueError(f"FlowProposal: `loc` must be finite, got {loc!r}")
        self.register_buffer("loc", loc_t)
        self.register_buffer("scale", scale_t)

    @classmethod
    def from_gaussian(cls, gaussian: GaussianProposal, **kwargs) -> FlowProposal:
        """A flow whose initial distribution equals ``gaussian`` (same ``loc``/``scale``)."""
        return cls(gaussian.dim, loc=gaussian.loc.clone(), scale=gaussian.scale.clone(), **kwargs)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, flow={self.flow!r}"

    def _flat(self, t: Tensor) -> tuple[Tensor, torch.Size]:
        if t.shape[-1] != self.dim:
            raise ValueError(f"FlowProposal: expected last dimension {self.dim}, got {t.shape}")
        return t.reshape(-1, self.dim), t.shape[:-1]

    def _log_det_outer(self) -> Tensor:
        return self.scale.log().sum()

    def _forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x [..., D] -> (z [..., D], log q(x) [...])``."""
        flat, batch = self._flat(x)
        z, logabsdet = self.transform((flat - self.loc) / self.scale)
        log_q = standard_normal_log_prob(z) + logabsdet - self._log_det_outer()
        return z.reshape(*batch, self.dim), log_q.reshape(batch)

    def standardize(self, x: Tensor) -> Tensor:
        """Map ``x [..., D]`` to the base space ``z [..., D]`` where ``q`` is ``N(0, I)``."""
        return self._forward(x)[0]

    def unstandardize(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Map base noise ``z [..., D]`` to ``(x [..., D], log q(x) [...])``."""
        flat, batch = self._flat(z)
        y, logabsdet = self.transform.inverse(flat)  # log|det dy/dz|
        x = self.loc + self.scale * y
        log_q = standard_normal_log_prob(flat) - logabsdet - self._log_det_outer()
        return x.reshape(*batch, self.dim), log_q.reshape(batch)

    def log_prob(self, x: Tensor) -> Tensor:
        """``log q(x)`` for ``x [..., D]``; returns ``[...]``."""
        return self._forward(x)[1]

    def sample_and_log_prob(
        self, shape: int | Sequence[int], generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Reparameterised draw: ``(x [*shape, D], log q(x) [*shape])``."""
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        z = randn(
            (*shape, self.dim), generator=generator, device=self.loc.device, dtype=self.loc.dtype
        )
        return self.unstandardize(z)

    def sample(
        self, shape: int | Sequence[int], generator: torch.Generator | None = None
    ) -> Tensor:
        """Draw ``x [*shape, D]`` (reparameterised)."""
        return self.sample_and_log_prob(shape, generator)[0]
