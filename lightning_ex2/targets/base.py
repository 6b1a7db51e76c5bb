"""The built-in targets' base class and the checks of a target.

What a target is is written once, in :class:`lightning_ex2.protocols.Target` (required
``dim`` and ``log_prob``, optional hooks ``sample``, ``log_prob_and_grad``, ``constrain``,
``dim_names``). :class:`TargetBase` is a convenience base class implementing it (the
built-in targets); any ``nn.Module`` (or any object) with ``log_prob`` and ``dim`` is a
target too, accepted by :func:`check_target`, :func:`target_dim` and :func:`has_sampler`.

Example:
    >>> import torch
    >>> class StdNormal(torch.nn.Module):
    ...     dim = 3
    ...     def log_prob(self, x):
    ...         return -0.5 * x.square().sum(-1)
    >>> t = check_target(StdNormal())
    >>> target_dim(t), has_sampler(t)
    (3, False)
"""

from __future__ import annotations

import math
import operator
from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor, nn

from lightning_ex2.protocols import target_hook

# for the targets
from lightning_ex2.validation import check_finite, check_int, check_positive  # noqa: F401

LOG_2PI = math.log(2 * math.pi)


class TargetBase(nn.Module, ABC):
    """Base class of the built-in targets (a :class:`~lightning_ex2.protocols.Target`):
    ``dim`` plus an abstract ``log_prob``.

    All distribution parameters are registered *buffers* (never ``nn.Parameter``),
    so ``target.to(device, dtype)`` moves them. ``forward`` is ``log_prob``.

    It deliberately defines no ``sample``: subclasses with an exact sampler add one,
    and :func:`has_sampler` tells them apart.
    """

    dim: int

    @abstractmethod
    def log_prob(self, x: Tensor) -> Tensor:
        """Log density ``[..., D] -> [...]``, in ``x``'s dtype, differentiable in ``x``."""

    def forward(self, x: Tensor) -> Tensor:
        return self.log_prob(x)

    def _scalar_buffers(self, **values: float) -> None:
        """Register each value as a 0-d buffer in the default dtype."""
        for key, value in values.items():
            self.register_buffer(key, torch.tensor(value, dtype=torch.get_default_dtype()))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class CenteredUncorrelated:
    """Mixin of targets of mean 0 whose coordinates are uncorrelated: ``mean`` ``[D]``
    zeros and ``covariance`` ``diag(variance)`` ``[D, D]`` from the subclass's
    ``variance`` ``[D]``."""

    variance: Tensor

    @property
    def mean(self) -> Tensor:
        """``[D]`` zeros."""
        return torch.zeros_like(self.variance)

    @property
    def covariance(self) -> Tensor:
        """``[D, D]`` diagonal covariance."""
        return torch.diag(self.variance)


def has_sampler(target: Any) -> bool:
    """True iff ``target`` has the optional hook ``sample`` (an exact sampler)."""
    return target_hook(target, "sample") is not None


def target_dim(target: Any) -> int:
    """The event dimension ``D`` read from ``target.dim`` as a positive ``int``.

    Raises:
        TypeError: no ``dim`` attribute, or it is not an integer.
        ValueError: ``dim < 1``.
    """
    if not hasattr(target, "dim"):
        raise TypeError(
            f"{type(target).__name__} has no attribute `dim`; a target must define "
            "`dim` (int, the event dimension)"
        )
    raw = target.dim
    try:
        dim = operator.index(raw)
    except TypeError:
        raise TypeError(
            f"{type(target).__name__}.dim must be an int, got {type(raw).__name__} {raw!r}"
        ) from None
    if isinstance(raw, bool) or dim < 1:
        raise ValueError(f"{type(target).__name__}.dim must be a positive int, got {raw!r}")
    return dim


def check_target(target: Any) -> Any:
    """Check that ``target`` has a callable ``log_prob``; return it unchanged.

    Raises:
        TypeError: naming the class when ``log_prob`` is missing or not callable.
    """
    if not callable(getattr(target, "log_prob", None)):  # the required member
        raise TypeError(
            f"{type(target).__name__} is not a valid target: it has no callable "
            "`log_prob(x [..., D]) -> [...]`"
        )
    return target


# ----------------------------------------------------------------------- helpers
def as_float_tensor(
    value: Any, name: str, cls: str, ndim: int | None = None, what: str = ""
) -> Tensor:
    """``value`` as a finite float64 tensor (for validation); error names ``name``.

    With ``ndim``, the tensor must also be non-empty with ``ndim`` dimensions
    (``what`` describes that shape in the message, e.g. ``"[K, D] tensor"``).
    """
    try:
        t = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{cls}: `{name}` must be numeric, got {value!r}") from err
    if not torch.isfinite(t).all():
        raise ValueError(f"{cls}: `{name}` must be finite")
    if ndim is not None and (t.ndim != ndim or t.numel() == 0):
        raise ValueError(f"{cls}: `{name}` must be a non-empty {what}, got shape {tuple(t.shape)}")
    return t.detach().clone()


def check_n(n: Any) -> int:
    """Number of draws for ``sample``: an ``int >= 0``."""
    try:
        out = operator.index(n)
    except TypeError:
        raise TypeError(f"sample: `n` must be an int, got {type(n).__name__}") from None
    if out < 0:
        raise ValueError(f"sample: `n` must be >= 0, got {n}")
    return out


def normal_log_prob(x: Tensor, loc: Tensor | float, log_scale: Tensor | float) -> Tensor:
    """Elementwise ``log N(x; loc, exp(log_scale)^2)``."""
    if not isinstance(log_scale, Tensor):
        log_scale = torch.tensor(log_scale, dtype=x.dtype, device=x.device)
    z = (x - loc) * torch.exp(-log_scale)
    return -0.5 * (z.square() + LOG_2PI) - log_scale
