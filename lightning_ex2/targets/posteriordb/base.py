"""Posteriors of posteriordb as torch targets on Stan's unconstrained space.

posteriordb (https://github.com/stan-dev/posteriordb, BSD-3) is the Stan
community's reference set of posteriors: a Stan program, its data and, for many,
gold-standard draws from Stan's NUTS (10 chains x 1000 draws). A port here is a
:class:`PosteriorDBTarget` subclass that declares the Stan program's parameters
(name, shape, constraint) and writes its ``model`` block on the *constrained*
parameters; the base class does the rest the way Stan does:

* the unconstrained vector ``x [..., D]`` holds the parameters in declaration
  order, each flattened in Stan's (column-major) order, so ``x`` is the very
  vector Stan's ``log_prob(unconstrained_parameters)`` takes;
* :meth:`constrain` maps ``x`` to the named constrained values;
* :meth:`log_prob` is ``log p(constrain(x)) + log |J|`` (Stan's
  ``log_prob(..., adjust_transform=True)``) up to an additive constant.

Ports are checked against Stan itself (value up to a constant, and gradient) at
random unconstrained points: ``scripts/posteriordb_stan_check.py``.

Example:
    >>> import torch
    >>> class Toy(PosteriorDBTarget):
    ...     name = "toy-toy"
    ...     stan_parameters = (Param("mu", ()), Param("sigma", (), Lower(0.0)))
    ...     def log_density(self, p):
    ...         return -0.5 * (p["mu"] / p["sigma"]).square() - p["sigma"].log() - p["sigma"]
    >>> t = Toy({})
    >>> t.dim, t.flat_names()
    (2, ['mu', 'sigma'])
    >>> t.constrain(torch.zeros(3, 2, dtype=torch.float64))["sigma"]
    tensor([1., 1., 1.], dtype=torch.float64)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_ex2.targets.base import TargetBase

Bound = float | Callable[[dict[str, Tensor]], Tensor]


class Transform:
    """A Stan constraint: ``forward(y [..., n]) -> (value [..., m], log|J| [...])``.

    ``n`` unconstrained numbers give ``m`` constrained ones (``m = n`` except for
    the simplex, ``m = n + 1``). ``done`` holds the parameters already constrained
    (declaration order), for bounds that depend on them (e.g. garch's
    ``real<upper=(1 - alpha1)> beta1``).
    """

    def size(self, m: int) -> int:
        """Unconstrained numbers for ``m`` constrained ones."""
        return m

    def forward(self, y: Tensor, done: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def inverse(self, x: Tensor, done: dict[str, Tensor]) -> Tensor:
        """``value [..., m] -> y [..., n]``, the inverse of :meth:`forward` (``done``: every
        constrained value, for bounds that depend on other parameters)."""
        raise NotImplementedError


def _bound(b: Bound, done: dict[str, Tensor], like: Tensor) -> Tensor:
    """A bound as a tensor broadcastable to ``like`` ``[..., n]``."""
    if callable(b):
        value = b(done)
        return value.unsqueeze(-1) if value.ndim == like.ndim - 1 else value
    return torch.as_tensor(b, dtype=like.dtype, device=like.device)


class Real(Transform):
    """Unconstrained ``real``/``vector``."""

    def forward(self, y: Tensor, done: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        return y, y.new_zeros(y.shape[:-1])

    def inverse(self, x: Tensor, done: dict[str, Tensor]) -> Tensor:
        return x


@dataclass
class Lower(Transform):
    """``<lower=lb>``: ``x = lb + exp(y)``, ``log|J| = y``."""

    lb: Bound = 0.0

    def forward(self, y: Tensor, done: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        return _bound(self.lb, done, y) + y.exp(), y.sum(-1)

    def inverse(self, x: Tensor, done: dict[str, Tensor]) -> Tensor:
        return (x - _bound(self.lb, done, x)).log()


@dataclass
class Upper(Transform):
    """``<upper=ub>``: ``x = ub - exp(y)``, ``log|J| = y``."""

    ub: Bound = 0.0

    def forward(self, y: Tensor, done: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        return _bound(self.ub, done, y) - y.exp(), y.sum(-1)

    def inverse(self, x: Tensor, done: dict[str, Tensor]) -> Tensor:
        return (_bound(self.ub, done, x) - x).log()


@dataclass
class Bounded(Transform):
    """``<lower=lb, upper=ub>``: ``x = lb + (ub - lb) * sigmoid(y)``."""

    lb: Bound = 0.0
    ub: Bound = 1.0

    def forward(self, y: Tensor, done: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        lb, ub = _bound(self.lb, done, y), _bound(self.ub, done, y)
        width = ub - lb
        log_j = width.log() + F.logsigmoid(y) + F.logsigmoid(-y)
        return lb + width * torch.sigmoid(y), log_j.expand_as(y).sum(-1)

    def inverse(self, x: Tensor, done: dict[str, Tensor]) -> Tensor:
        lb, ub = _bound(self.lb, done, x), _bound(self.ub, done, x)
        return torch.logit((x - lb) / (ub - lb))


class Ordered(Transform):
    """``ordered[K]``: ``x_1 = y_1``, ``x_k = x_{k-1} + exp(y_k)``, ``log|J| = sum_{k>1} y_k``."""

    def forward(self, y: Tensor, done: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        steps = torch.cat([y[..., :1], y[..., 1:].exp()], dim=-1)
        return steps.cumsum(-1), y[..., 1:].sum(-1)

    def inverse(self, x: Tensor, done: dict[str, Tensor]) -> Tensor:
        return torch.cat([x[..., :1], x.diff(dim=-1).log()], dim=-1)


class PositiveOrdered(Transform):
    """``positive_ordered[K]``: ``x_k = x_{k-1} + exp(y_k)`` from 0, ``log|J| = sum y``."""

    def forward(self, y: Tensor, done: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        return y.exp().cumsum(-1), y.sum(-1)

    def inverse(self, x: Tensor, done: dict[str, Tensor]) -> Tensor:
        return torch.cat([x[..., :1].log(), x.diff(dim=-1).log()], dim=-1)


class Simplex(Transform):
    """``simplex[K]`` from ``K - 1`` numbers by Stan's stick-breaking transform.

    ``z_k = sigmoid(y_k - log(K - k))`` (``k = 1..K-1``), ``x_k = (1 - sum_{j<k} x_j) z_k``,
    ``x_K`` the rest; ``log|J| = sum_k log z_k + log(1 - z_k) + log(1 - sum_{j<k} x_j)``.
    (Check a port that uses it against the Stan version at hand: Stan may change
    its simplex transform between releases.)
    """

    def size(self, m: int) -> int:
        return m - 1

    def forward(self, y: Tensor, done: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        k = y.shape[-1] + 1
        offset = torch.log(torch.arange(k - 1, 0, -1, dtype=y.dtype, device=y.device))
        u = y - offset
        log_z, log_1mz = F.logsigmoid(u), F.logsigmoid(-u)
        # log of the stick left before piece k: cumulative sum of log(1 - z_j), j < k
        log_left = torch.cat([y.new_zeros((*y.shape[:-1], 1)), log_1mz.cumsum(-1)], dim=-1)
        x = torch.cat([(log_left[..., :-1] + log_z).exp(), log_left[..., -1:].exp()], dim=-1)
        log_j = (log_z + log_1mz + log_left[..., :-1]).sum(-1)
        return x, log_j

    def inverse(self, x: Tensor, done: dict[str, Tensor]) -> Tensor:
        k = x.shape[-1]
        offset = torch.log(torch.arange(k - 1, 0, -1, dtype=x.dtype, device=x.device))
        left = 1 - torch.cat([x.new_zeros((*x.shape[:-1], 1)), x[..., :-2].cumsum(-1)], dim=-1)
        return torch.logit(x[..., :-1] / left) + offset


@dataclass
class Param:
    """One Stan parameter: its name, constrained shape and constraint.

    ``shape`` is Stan's (``()`` for a ``real``, ``(K,)`` for a ``vector[K]`` or an
    array, ``(M, N)`` for a ``matrix[M, N]``); a vector constraint (ordered,
    simplex) applies along the last axis.
    """

    name: str
    shape: tuple[int, ...] = ()
    transform: Transform = field(default_factory=Real)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def free(self) -> int:
        """Unconstrained numbers."""
        if not self.shape:
            return 1
        return math.prod(self.shape[:-1]) * self.transform.size(self.shape[-1])


class PosteriorDBTarget(TargetBase):
    """A posteriordb posterior on Stan's unconstrained space (see the module docstring).

    Subclasses set ``name`` (posteriordb's posterior name, e.g. ``"garch-garch11"``)
    and ``stan_parameters`` (Stan's ``parameters`` block in order; may depend on the data:
    then override :meth:`declare`), and write :meth:`log_density` (the ``model``
    block, up to a constant) on the dict of constrained values ``[..., *shape]``.
    Data arrive as posteriordb's data dict; :meth:`tensor` turns an entry into a
    registered float buffer (moved by ``.to(device, dtype)``).

    posteriordb records some posteriors by other quantities than the parameters (e.g.
    ``eight_schools_noncentered``: ``theta = mu + tau * theta_trans`` from the
    ``transformed parameters`` block, not ``theta_trans``). Such a port sets
    ``reported`` (the recorded names, in posteriordb's order), computes the extra
    ones in :meth:`transformed` and, for :meth:`unconstrain`, recovers the parameters
    from them in :meth:`parameters_from`.

    Args:
        data: posteriordb's data for this posterior (``load_data``).
        dtype: the dtype of the data buffers (and so of the run); float64 by default,
            like Stan.
    """

    name: ClassVar[str]
    #: Stan's ``parameters`` block (not ``parameters``: that would hide
    #: ``nn.Module.parameters()``)
    stan_parameters: ClassVar[tuple[Param, ...]] = ()
    #: the constrained quantities posteriordb records, in its order (default: the parameters)
    reported: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, data: Mapping[str, Any], dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self._dtype = dtype
        self.params: tuple[Param, ...] = tuple(self.declare(data))
        self.dim = sum(p.free for p in self.params)
        self.setup(data)

    def declare(self, data: Mapping[str, Any]) -> tuple[Param, ...]:
        """The parameters (override when their shapes depend on the data)."""
        return self.stan_parameters

    def setup(self, data: Mapping[str, Any]) -> None:
        """Register the data as buffers (override; use :meth:`tensor`)."""

    def tensor(self, name: str, value: Any, *, integer: bool = False) -> Tensor:
        """Register ``value`` as buffer ``name`` (float in the target's dtype, or int64)."""
        array = np.asarray(value)
        t = torch.as_tensor(array, dtype=torch.int64 if integer else self._dtype)
        self.register_buffer(name, t)
        return t

    def log_density(self, p: dict[str, Tensor]) -> Tensor:
        """Stan's ``model`` block: ``log p(params, data)`` up to a constant ``[...]``."""
        raise NotImplementedError

    def transformed(self, p: dict[str, Tensor]) -> dict[str, Tensor]:
        """Stan's ``transformed parameters`` that posteriordb records (override; default none)."""
        return {}

    def parameters_from(self, values: dict[str, Tensor]) -> dict[str, Tensor]:
        """The parameters from the :attr:`reported` quantities (override when they differ)."""
        return values

    def constrain_with_jacobian(self, x: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """``x [..., D]`` -> (named constrained values ``[..., *shape]``, ``log|J| [...]``)."""
        if x.shape[-1] != self.dim:
            raise ValueError(
                f"{self.name}: x must have last dimension {self.dim}, got {x.shape[-1]}"
            )
        batch = x.shape[:-1]
        done: dict[str, Tensor] = {}
        log_j = x.new_zeros(batch)
        start = 0
        for p in self.params:
            y = x[..., start : start + p.free]
            start += p.free
            if not p.shape:
                value, lj = p.transform.forward(y, done)
                done[p.name] = value[..., 0]
            elif len(p.shape) == 1:
                value, lj = p.transform.forward(y, done)
                done[p.name] = value
            elif len(p.shape) == 2 and isinstance(p.transform, Real):
                # matrix[M, N]: Stan's unconstrained order is column-major
                m, n = p.shape
                value, lj = y.reshape(*batch, n, m).transpose(-1, -2), y.new_zeros(batch)
                done[p.name] = value
            else:
                raise NotImplementedError(
                    f"{self.name}: parameter {p.name} of shape {p.shape} with "
                    f"{type(p.transform).__name__}: override constrain_with_jacobian"
                )
            log_j = log_j + lj.reshape(*batch, -1).sum(-1) if lj.ndim > len(batch) else log_j + lj
        return done, log_j

    def constrain(self, x: Tensor) -> dict[str, Tensor]:
        """The named constrained values of ``x [..., D]``, shapes ``[..., *shape]``: the
        parameters and the :meth:`transformed` quantities."""
        values = self.constrain_with_jacobian(x)[0]
        return {**values, **self.transformed(values)}

    def unconstrain(self, values: dict[str, Tensor]) -> Tensor:
        """The inverse of :meth:`constrain`: named values (the parameters, or the
        :attr:`reported` quantities) ``[..., *shape]`` -> ``x [..., D]``."""
        values = self.parameters_from(dict(values))
        parts = []
        for p in self.params:
            v = torch.as_tensor(values[p.name])
            if not p.shape:
                v = v.unsqueeze(-1)
            elif len(p.shape) == 2 and isinstance(p.transform, Real):
                v = v.transpose(-1, -2)
                parts.append(v.reshape(*v.shape[:-2], p.numel))
                continue
            elif len(p.shape) != 1:
                raise NotImplementedError(
                    f"{self.name}: parameter {p.name} of shape {p.shape}: override unconstrain"
                )
            parts.append(p.transform.inverse(v, values))
        return torch.cat(parts, dim=-1)

    def log_prob(self, x: Tensor) -> Tensor:
        p, log_j = self.constrain_with_jacobian(x)
        return self.log_density(p) + log_j

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """The :attr:`reported` quantities (default: the parameters) and their shapes."""
        if self.reported is None:
            return {p.name: p.shape for p in self.params}
        like = next((b for b in self.buffers() if b.is_floating_point()), None)
        zero = torch.zeros(self.dim, dtype=self._dtype if like is None else like.dtype)
        values = self.constrain(zero if like is None else zero.to(like.device))
        return {name: tuple(values[name].shape) for name in self.reported}

    def flat_names(self) -> list[str]:
        """posteriordb's names of the reported constrained values (``theta[1]``,
        ``L[2,1]``, ...) in the order of :meth:`flatten`."""
        names: list[str] = []
        for name, shape in self.shapes().items():
            if not shape:
                names.append(name)
                continue
            for idx in np.ndindex(*shape):
                names.append(f"{name}[{','.join(str(i + 1) for i in idx)}]")
        return names

    def flatten(self, values: dict[str, Tensor]) -> Tensor:
        """Constrained values ``[..., *shape]`` -> ``[..., M]`` in :meth:`flat_names` order."""
        parts = []
        for name, shape in self.shapes().items():
            v = values[name]
            batch = v.shape[: v.ndim - len(shape)]
            parts.append(v.reshape(*batch, math.prod(shape)))
        return torch.cat(parts, dim=-1)

    def unflatten(self, flat: Tensor) -> dict[str, Tensor]:
        """``[..., M]`` in :meth:`flat_names` order -> the named values ``[..., *shape]``."""
        values, start = {}, 0
        for name, shape in self.shapes().items():
            n = math.prod(shape)
            values[name] = flat[..., start : start + n].reshape(*flat.shape[:-1], *shape)
            start += n
        return values
