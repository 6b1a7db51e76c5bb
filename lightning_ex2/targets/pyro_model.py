"""Pyro models as batched targets: hundreds of chains of a plate-annotated model at once.

Pyro's own MCMC evaluates one chain's ``potential_fn`` (a dict of unconstrained values to
a scalar) per process. :class:`PyroModel` turns a Pyro model into a target of this
library: ``dim`` and a batched ``log_prob(x [..., D])`` on the unconstrained space
(log-Jacobians included, through Pyro's own transforms ``biject_to(site.support)``), so
every kernel runs all chains (and i-SIR's particles) in one pass.

Three evaluation paths, tried in this order at construction and checked against Pyro's
own scalar ``potential_fn`` (from :func:`pyro.infer.mcmc.util.initialize_model`) at
random points, value and gradient; the first that agrees is used:

* ``"plate"``: the model runs once for the whole batch, under an outer
  ``pyro.plate`` left of the model's own plates, conditioned on the batched values;
  log-probabilities are summed over the model's plate and event dimensions only.
  Works when the model's code broadcasts over leading dimensions (``x @ beta`` does not:
  ``(x * beta).sum(-1)`` does).
* ``"vmap"``: :func:`torch.func.vmap` over the model's trace at one point (its
  log-probabilities and the log-Jacobians summed): for models written for one point,
  ``x @ beta`` included, as long as they take no Python value of a latent
  (``float(beta)``, ``if beta > 0``); about 100x the loop on a 5-D regression.
* ``"loop"``: Pyro's scalar potential point by point (always right, slow).

Refused in one line at construction: discrete latent sites (enumeration), subsampling
plates, and models whose latent sites or shapes change from run to run.

Example:
    >>> import torch, pyro, pyro.distributions as dist
    >>> import lightning_ex2 as lx
    >>> def model(y):
    ...     mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    ...     sigma = pyro.sample("sigma", dist.HalfNormal(2.0))
    ...     with pyro.plate("data", len(y)):
    ...         pyro.sample("y", dist.Normal(mu, sigma), obs=y)
    >>> target = lx.targets.PyroModel(model, torch.tensor([0.5, 1.5, 1.0]), verbose=False)
    >>> target.dim, target.evaluation, target.flat_names()
    (2, 'plate', ['mu', 'sigma'])
    >>> target.log_prob(torch.zeros(7, 2)).shape
    torch.Size([7])
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

__all__ = ["PyroModel", "PyroModelError"]

BATCH_PLATE = "_lightning_ex2_batch"
PATHS = ("plate", "vmap", "loop")


class PyroModelError(ValueError):
    """A Pyro model this adapter cannot sample (the message is one line)."""


class _Site(NamedTuple):
    """One latent sample site: its constrained ``shape``, the ``batch_ndim`` of its
    distribution (dims under the model's plates), its unconstrained shape, the slice of
    ``x`` it takes, and the bijection unconstrained -> constrained."""

    name: str
    shape: torch.Size
    batch_ndim: int
    unconstrained_shape: torch.Size
    offset: int
    numel: int
    transform: Any


def _pyro():  # type: ignore[no-untyped-def]
    try:
        import pyro
        from pyro import poutine
        from pyro.infer.mcmc.util import initialize_model
    except ImportError:  # pragma: no cover - pyro-ppl is a dev dependency
        raise ImportError(
            "PyroModel needs pyro-ppl: pip install pyro-ppl (it installs beside torch)"
        ) from None
    return pyro, poutine, initialize_model


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Run the model with ``dtype`` as torch's default: a Python float in the model
    (``HalfCauchy(5.0)``) is then a tensor of the data's dtype, not float32."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def _sample_sites(trace) -> list[dict]:  # type: ignore[no-untyped-def]
    """The trace's sample sites, less the plates' own (subsample) sites."""
    from pyro.poutine.util import site_is_subsample

    return [s for s in trace.nodes.values() if s["type"] == "sample" and not site_is_subsample(s)]


def _latent_sites(trace) -> list[dict]:  # type: ignore[no-untyped-def]
    return [s for s in _sample_sites(trace) if not s["is_observed"]]


def _structure(trace) -> list[tuple[str, tuple[int, ...]]]:  # type: ignore[no-untyped-def]
    return [(s["name"], tuple(s["value"].shape)) for s in _latent_sites(trace)]


class PyroModel(nn.Module):
    """A Pyro model as a batched target on its unconstrained space.

    Args:
        model: a Pyro model (a callable that calls ``pyro.sample``); its latent sites
            must be continuous, its plates without subsampling.
        *args, **kwargs: the model's arguments (data), passed on every evaluation.
        check_points: random points (unconstrained ``N(0, I)``, seeded) at which each
            path is compared with Pyro's ``potential_fn`` (value and gradient).
        rtol: the agreement the check asks for, relative to ``max(1, |log density|)``
            and ``max(1, max |gradient|)``.
        path: force one of ``"plate"``, ``"vmap"``, ``"loop"`` (checked all the same);
            default: the first that agrees.
        verbose: print the one line that says which path was chosen (stderr).

    Attributes:
        dim: ``D``, the total size of the unconstrained latent sites.
        evaluation: the path in use.
        sites: the latent sites in the model's order.

    Raises:
        PyroModelError: discrete latent sites, subsampling plates, latent sites or shapes
            that change between runs, or no path that agrees with Pyro's potential.
    """

    def __init__(
        self,
        model: Callable[..., Any],
        *args: Any,
        check_points: int = 4,
        rtol: float = 1e-6,
        path: str | None = None,
        verbose: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        _, poutine, _ = _pyro()
        if path is not None and path not in PATHS:
            raise PyroModelError(f"path: must be one of {', '.join(PATHS)}, got {path!r}")
        self.model, self.args, self.kwargs = model, args, kwargs
        name = getattr(model, "__name__", type(model).__name__)
        from pyro.infer.autoguide.initialization import InitMessenger, init_to_uniform

        def init(site):  # type: ignore[no-untyped-def]  # Pyro's, discrete sites drawn (refused below)
            if site["fn"].support.is_discrete:
                return site["fn"].sample()
            return init_to_uniform(site, radius=2.0)

        data_dtypes = [v.dtype for v in (*args, *kwargs.values())
                       if isinstance(v, Tensor) and v.is_floating_point()]  # fmt: skip
        # the model's dtype (its data's), which lx.sample reads from the target's buffers
        self.register_buffer(
            "_dtype", torch.zeros((), dtype=(data_dtypes or [torch.get_default_dtype()])[0])
        )
        with poutine.block(), torch.random.fork_rng(), _default_dtype(self._dtype.dtype):
            traces = []  # two runs, at Pyro's init points
            for seed in (0, 1):
                torch.manual_seed(seed)
                traces.append(poutine.trace(InitMessenger(init)(model)).get_trace(*args, **kwargs))
        first, second = traces
        self._refuse(name, first)
        self._refuse_dependent_supports(name, first, second)
        if _structure(first) != _structure(second):
            raise PyroModelError(
                f"PyroModel({name}): its latent sites or their shapes change between runs "
                f"({_structure(first)} then {_structure(second)}); a target needs a fixed D"
            )
        sites, offset = [], 0
        for site in _latent_sites(first):
            transform = torch.distributions.biject_to(site["fn"].support)
            unconstrained = transform.inv(site["value"])
            numel = unconstrained.numel()
            sites.append(_Site(
                site["name"], site["value"].shape, len(site["fn"].batch_shape),
                unconstrained.shape, offset, numel, transform,
            ))  # fmt: skip
            offset += numel
        if not sites:
            raise PyroModelError(f"PyroModel({name}): the model has no latent sample site")
        self.sites: list[_Site] = sites
        self.dim = offset
        frames = [f.dim for s in _sample_sites(first) for f in s["cond_indep_stack"]
                  if f.vectorized]  # fmt: skip
        plates = -min(frames) if frames else 0
        batch_dims = [len(s["fn"].batch_shape) for s in _sample_sites(first)]
        # the batch plate's dim is left of every plate and of every batch dim of the model
        self._nesting = max([plates, *batch_dims])
        self._plates = plates
        self._potential_fn = self._make_potential()
        self.evaluation = self._choose(name, path, check_points, rtol)
        if verbose:
            print(
                f"PyroModel({name}): D={self.dim}, {len(sites)} latent site(s), evaluated "
                f"{self._describe()} (checked against Pyro's potential_fn at "
                f"{check_points} point(s))",
                file=sys.stderr,
            )

    # ------------------------------------------------------------------ refusals
    @staticmethod
    def _refuse(name: str, trace) -> None:  # type: ignore[no-untyped-def]
        for site in _sample_sites(trace):
            for frame in site["cond_indep_stack"]:
                if frame.full_size is not None and frame.size != frame.full_size:
                    raise PyroModelError(
                        f"PyroModel({name}): plate {frame.name!r} subsamples "
                        f"({frame.size} of {frame.full_size}); MCMC needs the full data"
                    )
            if site["is_observed"]:
                continue
            fn = site["fn"]
            if fn.support.is_discrete or getattr(fn, "has_enumerate_support", False):
                raise PyroModelError(
                    f"PyroModel({name}): latent site {site['name']!r} is discrete "
                    f"({type(fn).__name__}); marginalise it out in the model (gradient "
                    "kernels need a continuous space)"
                )

    @staticmethod
    def _refuse_dependent_supports(name: str, first, second) -> None:  # type: ignore[no-untyped-def]
        """A support whose bounds move with other latent values (Stan's
        ``<upper=(1 - alpha1)>``): one fixed bijection cannot map onto it."""
        seconds = {s["name"]: s for s in _latent_sites(second)}
        for site in _latent_sites(first):
            other = seconds.get(site["name"])
            if other is None:
                continue
            a, b = site["fn"].support, other["fn"].support
            for attr in ("lower_bound", "upper_bound", "loc", "scale"):
                va, vb = getattr(a, attr, None), getattr(b, attr, None)
                moved = (
                    isinstance(va, Tensor)
                    and isinstance(vb, Tensor)
                    and (va.shape != vb.shape or not torch.equal(va, vb))
                )
                if moved:
                    raise PyroModelError(
                        f"PyroModel({name}): the support of latent site "
                        f"{site['name']!r} depends on other latent values ({attr}); "
                        "sample a fixed-support variable and transform it in the model"
                    )

    # ------------------------------------------------------------------ the paths
    def _split(self, flat: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor], Tensor]:
        """``flat [B, D]`` -> unconstrained and constrained values per site (``[B, ...]``)
        and the log-Jacobian ``[B]``."""
        b = flat.shape[0]
        raw, constrained, log_jac = {}, {}, flat.new_zeros(b)
        for s in self.sites:
            u = flat[:, s.offset : s.offset + s.numel].reshape(b, *s.unconstrained_shape)
            c = s.transform(u)
            log_jac = log_jac + s.transform.log_abs_det_jacobian(u, c).reshape(b, -1).sum(-1)
            raw[s.name], constrained[s.name] = u, c
        return raw, constrained, log_jac

    def _plate(self, flat: Tensor) -> Tensor:
        pyro, poutine, _ = _pyro()
        b = flat.shape[0]
        _, constrained, log_jac = self._split(flat)
        data = {}
        for s in self.sites:  # the batch dim left of the model's plates
            pad = [1] * (self._nesting - s.batch_ndim)
            data[s.name] = constrained[s.name].reshape(b, *pad, *s.shape)
        with pyro.plate(BATCH_PLATE, b, dim=-(self._nesting + 1)):
            trace = poutine.trace(poutine.condition(self.model, data=data)).get_trace(
                *self.args, **self.kwargs
            )
        trace.compute_log_prob()
        total = log_jac
        for site in _sample_sites(trace):  # [B, *plates] (scale and mask applied)
            lp = site["log_prob"]
            lp = lp.reshape(1) if lp.dim() == 0 else lp
            if lp.shape[0] != b:
                lp = lp.expand(b, *lp.shape[1:])
            total = total + lp.reshape(b, -1).sum(-1)
        return total

    def _point(self, u: Tensor) -> Tensor:
        """Pyro's own scalar log density at one unconstrained point ``u [D]``."""
        params = {
            s.name: u[s.offset : s.offset + s.numel].reshape(s.unconstrained_shape)
            for s in self.sites
        }
        return -self._potential_fn(params)

    def _single(self, u: Tensor) -> Tensor:
        """The log density at one unconstrained point ``u [D]`` by the model's own trace
        (no enumeration machinery, whose ``.data`` reads ``vmap`` refuses)."""
        _, poutine, _ = _pyro()
        _, constrained, log_jac = self._split(u[None])
        data = {s.name: constrained[s.name][0] for s in self.sites}
        trace = poutine.trace(poutine.condition(self.model, data=data)).get_trace(
            *self.args, **self.kwargs
        )
        trace.compute_log_prob()
        total = log_jac[0]
        for site in _sample_sites(trace):
            total = total + site["log_prob"].sum()
        return total

    def _vmap(self, flat: Tensor) -> Tensor:
        return torch.func.vmap(self._single, randomness="different")(flat)

    def _loop(self, flat: Tensor) -> Tensor:
        return torch.stack([self._point(u) for u in flat])

    def _evaluate(self, flat: Tensor, path: str) -> Tensor:
        """The log density of ``flat [B, D]`` by ``path``, with the model run at ``flat``'s
        dtype as torch's default (a Python float in the model, ``HalfCauchy(5.0)``, is a
        float32 tensor otherwise, and some distributions cast the value to it)."""
        pyro, _, _ = _pyro()
        # a proposal may leave the finite region: the kernel rejects it, Pyro need not check
        with _default_dtype(flat.dtype), pyro.validation_enabled(False):
            return {"plate": self._plate, "vmap": self._vmap, "loop": self._loop}[path](flat)

    def _choose(self, name: str, path: str | None, n: int, rtol: float) -> str:
        g = torch.Generator().manual_seed(0)
        dtype = self._dtype.dtype
        points = torch.randn(n, self.dim, generator=g, dtype=torch.float64).to(dtype)
        rtol = max(rtol, 1e-4) if dtype != torch.float64 else rtol
        want, want_grad = [], []
        for u in points:
            u = u.clone().requires_grad_(True)
            value = self._evaluate(u[None], "loop")[0]
            (grad,) = torch.autograd.grad(value, u)
            want.append(value.detach())
            want_grad.append(grad)
        want_t, want_g = torch.stack(want), torch.stack(want_grad)
        reasons = []
        for candidate in [path] if path else PATHS:
            try:
                x = points.clone().requires_grad_(True)
                got = self._evaluate(x, candidate)
                (got_g,) = torch.autograd.grad(got.sum(), x)
            except Exception as err:  # a path the model does not support
                reasons.append(f"{candidate}: {type(err).__name__}: {str(err).splitlines()[0]}")
                continue
            scale = want_t.abs().clamp_min(1.0)
            gscale = want_g.abs().amax(-1, keepdim=True).clamp_min(1.0)
            err_v = float(((got.detach() - want_t).abs() / scale).max())
            err_g = float(((got_g - want_g).abs() / gscale).max())
            if math.isfinite(err_v) and err_v <= rtol and err_g <= rtol:
                return candidate
            reasons.append(f"{candidate}: differs from Pyro (value {err_v:.1e}, grad {err_g:.1e})")
        raise PyroModelError(f"PyroModel({name}): no evaluation path agrees with Pyro's "
                             f"potential_fn ({'; '.join(reasons)})")  # fmt: skip

    def _describe(self) -> str:
        return {
            "plate": "in one batched pass (an outer pyro.plate)",
            "vmap": "by torch.func.vmap over the model's trace at one point",
            "loop": "point by point (the model does not broadcast over a batch dim)",
        }[self.evaluation]

    def _make_potential(self) -> Callable[[dict], Tensor]:
        """Pyro's scalar ``potential_fn`` over the model's current arguments."""
        _, _, initialize_model = _pyro()
        with _default_dtype(self._dtype.dtype):
            return initialize_model(
                self.model, model_args=self.args, model_kwargs=self.kwargs,
                max_plate_nesting=self._plates,
            )[1]  # fmt: skip

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def,override]
        """``.to(device, dtype)`` moves the model's tensor arguments (its data) too, and
        rebuilds Pyro's potential over them (the ``vmap``/``loop`` paths use it)."""
        super()._apply(fn, recurse)
        self.args = tuple(fn(a) if isinstance(a, Tensor) else a for a in self.args)
        self.kwargs = {k: fn(v) if isinstance(v, Tensor) else v for k, v in self.kwargs.items()}
        if getattr(self, "_potential_fn", None) is not None:
            self._potential_fn = self._make_potential()
        return self

    # ------------------------------------------------------------------ the target
    def log_prob(self, x: Tensor) -> Tensor:
        """Log density ``[..., D] -> [...]`` on the unconstrained space (Jacobians
        included), up to Pyro's constant; in ``x``'s dtype. Where the model's arithmetic
        breaks down (a transform overflows: ``sigma = exp(800)``), NaN becomes ``-inf``:
        the point is outside the model's finite region, and kernels reject it."""
        batch = x.shape[:-1]
        flat = x.reshape(-1, self.dim)
        out = self._evaluate(flat, self.evaluation)
        out = torch.where(torch.isnan(out), torch.full_like(out, -math.inf), out)
        return out.to(x.dtype).reshape(batch)

    def constrain(self, x: Tensor) -> dict[str, Tensor]:
        """Named constrained values ``{site: [..., *shape]}`` of ``x [..., D]``."""
        batch = x.shape[:-1]
        _, constrained, _ = self._split(x.reshape(-1, self.dim))
        return {s.name: constrained[s.name].reshape(*batch, *s.shape) for s in self.sites}

    def unconstrain(self, values: dict[str, Tensor]) -> Tensor:
        """The inverse of :meth:`constrain`: ``{site: [..., *shape]}`` (e.g. the draws of
        Pyro's own MCMC) -> ``x [..., D]``."""
        parts = []
        for s in self.sites:
            v = torch.as_tensor(values[s.name], dtype=self._dtype.dtype)
            batch = v.shape[: v.dim() - len(s.shape)]
            parts.append(s.transform.inv(v).reshape(*batch, s.numel))
        return torch.cat(parts, -1)

    def flat_names(self) -> list[str]:
        """One name per constrained scalar, e.g. ``theta[1]`` (1-based, as Stan and
        posteriordb write them)."""
        names = []
        for s in self.sites:
            if len(s.shape) == 0:
                names.append(s.name)
                continue
            for idx in (
                torch.cartesian_prod(*[torch.arange(n) for n in s.shape])
                .reshape(-1, len(s.shape))
                .tolist()
            ):
                names.append(f"{s.name}[{','.join(str(i + 1) for i in idx)}]")
        return names

    def flatten(self, values: dict[str, Tensor]) -> Tensor:
        """Named constrained values ``{site: [..., *shape]}`` -> ``[..., M]`` in
        :meth:`flat_names` order."""
        parts = []
        for s in self.sites:
            v = values[s.name]
            batch = v.shape[: v.dim() - len(s.shape)]
            parts.append(v.reshape(*batch, -1))
        return torch.cat(parts, -1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, evaluation={getattr(self, 'evaluation', None)!r}"
