"""Gaussian mixture targets, the multimodal benchmarks of Samsonov et al. 2022."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .base import LOG_2PI, TargetBase, as_float_tensor, check_int, check_n, check_positive
from .gaussian import cholesky_checked, tril_inverse

#: largest ``|mu_k|^2 / s_k^2`` for which isotropic components use the expansion
_EXPAND_MAX = 1000.0
#: terms below exp(-80) of the largest are dropped from sums of exponentials: their
#: relative weight is < 2e-35 (invisible in float32/float64) and computing them as
#: denormals is ~100x slower than normal numbers on x86
_LOG_TINY = -80.0


def _logsumexp(t: Tensor, dim: int) -> Tensor:
    """``log sum exp`` along ``dim`` (as ``torch.logsumexp``, including -inf/+inf/NaN
    rows, without computing denormals; differentiable)."""
    top_raw = t.amax(dim, keepdim=True).detach()
    top = torch.where(torch.isfinite(top_raw), top_raw, torch.zeros_like(top_raw))
    out = (t - top).clamp_min(_LOG_TINY).exp().sum(dim).log() + top.squeeze(dim)
    top_raw = top_raw.squeeze(dim)
    return torch.where(top_raw == -torch.inf, top_raw, out)


def _add_mixture(out: Tensor, resp: Tensor, rows: Tensor) -> None:
    """``out += resp^T @ rows`` (``resp [K, B]``, ``rows [K, D]``, ``out [B, D]``) in
    place; for few components a pass per component beats a GEMM with inner size K."""
    if rows.shape[0] <= 8:
        for k in range(rows.shape[0]):
            out.addcmul_(resp[k].unsqueeze(-1), rows[k])
    else:
        out.add_(resp.mT @ rows)


class GaussianMixture(TargetBase):
    """``sum_k w_k N(means[k], Sigma_k)`` with exact sampler and mode diagnostics.

    Give exactly one of ``covs`` (full ``[K, D, D]``) or ``scales`` (standard
    deviations: a float shared by all, ``[K]`` one isotropic scale per component,
    or ``[K, D]`` per-coordinate scales, i.e. diagonal covariances).
    ``weights`` (positive, ``[K]``) default to uniform and are normalized.

    :meth:`component_probs` (posterior responsibilities) and :meth:`assign`
    measure how sampler output is spread over the modes (e.g. the 25-mode grid
    :meth:`grid`, Samsonov et al. 2022, arXiv:2111.02702, Sec. 6).

    Shapes:
        ``log_prob``: ``[..., D] -> [...]``; ``component_probs``: ``[..., D] -> [..., K]``;
        ``assign``: ``[..., D] -> [...]`` (long); ``sample(n)``: ``[n, D]``.

    Example:
        >>> gm = GaussianMixture(torch.tensor([[-3.0, 0.0], [3.0, 0.0]]), scales=1.0)
        >>> x = gm.sample(5, generator=torch.Generator().manual_seed(0))
        >>> gm.log_prob(x).shape, gm.component_probs(x).shape
        (torch.Size([5]), torch.Size([5, 2]))
    """

    def __init__(
        self,
        means: Any,
        covs: Any = None,
        scales: Any = None,
        weights: Any = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        loc = as_float_tensor(means, "means", name, ndim=2, what="[K, D] tensor")
        k, dim = loc.shape
        if (covs is None) == (scales is None):
            raise ValueError(f"{name}: give exactly one of `covs` or `scales`")
        if covs is not None:
            cov_t = as_float_tensor(covs, "covs", name)
            if cov_t.shape != (k, dim, dim):
                raise ValueError(
                    f"{name}: `covs` must have shape ({k}, {dim}, {dim}), got {tuple(cov_t.shape)}"
                )
            chol = cholesky_checked(cov_t, "covs", name)
        else:
            sc = as_float_tensor(scales, "scales", name)
            if sc.ndim == 0:
                sc = sc.expand(k, dim)
            elif sc.shape == (k,):
                sc = sc[:, None].expand(k, dim)
            elif sc.shape != (k, dim):
                raise ValueError(
                    f"{name}: `scales` must be a float, [{k}] or [{k}, {dim}], got shape {tuple(sc.shape)}"
                )
            if not (sc > 0).all():
                raise ValueError(f"{name}: `scales` must be positive")
            chol = torch.diag_embed(sc)
        if weights is None:
            w = torch.full((k,), 1.0 / k, dtype=torch.float64)
        else:
            w = as_float_tensor(weights, "weights", name)
            if w.shape != (k,):
                raise ValueError(f"{name}: `weights` must have shape ({k},), got {tuple(w.shape)}")
            if not (w > 0).all():
                raise ValueError(f"{name}: `weights` must be positive")
            w = w / w.sum()
        dtype = torch.get_default_dtype()
        self.dim = dim
        self.n_components = k
        self.register_buffer("loc", loc.to(dtype))
        self.register_buffer("scale_tril", chol.to(dtype))
        self.register_buffer("_inv_tril", tril_inverse(chol).to(dtype))
        self.register_buffer("weights", w.to(dtype))
        # diagonal covariances (all `scales` forms): a fused elementwise path
        diag = chol.diagonal(dim1=-2, dim2=-1)  # [K, D]
        self._diagonal = bool(torch.equal(chol, torch.diag_embed(diag)))
        # isotropic components with means near the origin in their own scale: squared
        # distances by expansion (one pass over x); its float32 rounding error
        # ~ 4 eps |mu_k|^2 / s_k^2 stays below ~1e-4 within _EXPAND_MAX
        self._expand = (
            self._diagonal
            and bool((diag == diag[:, :1]).all())
            and float((loc.square().sum(-1) / diag[:, 0].square()).max()) <= _EXPAND_MAX
        )

    # ------------------------------------------------------------ constructors
    @classmethod
    def grid(
        cls, k: int = 5, spacing: float = 5.0, scale: float = 1.0, dim: int = 2
    ) -> GaussianMixture:
        """The ``k x k`` grid of equally weighted isotropic Gaussians (25 modes for ``k=5``).

        Means are ``spacing * (i - (k - 1) / 2)`` for ``i in range(k)`` in each of the
        first two coordinates (row-major: component ``i * k + j`` sits at
        ``(c_i, c_j)``); further coordinates have mean 0. Every component has
        standard deviation ``scale`` in all coordinates.
        """
        name = f"{cls.__name__}.grid"
        k = check_int(k, "k", name, 1)
        dim = check_int(dim, "dim", name, 2)
        spacing = check_positive(spacing, "spacing", name)
        scale = check_positive(scale, "scale", name)
        c = spacing * (torch.arange(k, dtype=torch.float64) - (k - 1) / 2)
        means = torch.zeros(k * k, dim, dtype=torch.float64)
        means[:, 0] = c.repeat_interleave(k)
        means[:, 1] = c.repeat(k)
        return cls(means, scales=scale)

    @classmethod
    def symmetric(
        cls, dim: int, n_modes: int = 2, distance: float = 8.0, scale: float = 1.0
    ) -> GaussianMixture:
        """Equally weighted modes on the diagonal line of ``R^dim``, symmetric about 0.

        Mode ``i`` (``i in range(n_modes)``) has mean
        ``distance * (i - (n_modes - 1) / 2) * (1, ..., 1) / sqrt(dim)`` and covariance
        ``scale^2 I``. Neighbouring modes are ``distance`` apart in Euclidean norm
        whatever ``dim``; with ``n_modes=2`` the means are ``±a (1, ..., 1)``,
        ``a = distance / (2 sqrt(dim))``: the high-dimensional bimodal benchmark
        on which global (i-SIR) moves are needed to jump between modes.
        """
        name = f"{cls.__name__}.symmetric"
        dim = check_int(dim, "dim", name, 1)
        n_modes = check_int(n_modes, "n_modes", name, 1)
        distance = check_positive(distance, "distance", name)
        scale = check_positive(scale, "scale", name)
        offsets = distance * (torch.arange(n_modes, dtype=torch.float64) - (n_modes - 1) / 2)
        means = offsets[:, None].expand(n_modes, dim) / math.sqrt(dim)
        return cls(means, scales=scale)

    # ---------------------------------------------------------------- moments
    @property
    def mean(self) -> Tensor:
        """``[D]`` mixture mean ``sum_k w_k mu_k``."""
        return self.weights @ self.loc

    @property
    def covariance(self) -> Tensor:
        """``[D, D]`` mixture covariance ``sum_k w_k (Sigma_k + mu_k mu_k^T) - mu mu^T``."""
        sig = self.scale_tril @ self.scale_tril.mT
        second = torch.einsum(
            "k,kij->ij", self.weights, sig + self.loc[:, :, None] * self.loc[:, None, :]
        )
        mu = self.mean
        return second - mu[:, None] * mu[None, :]

    @property
    def variance(self) -> Tensor:
        """``[D]`` marginal variances."""
        return self.covariance.diagonal()

    # ---------------------------------------------------------------- density
    def _standardized(self, x: Tensor) -> Tensor:
        """``z_k = L_k^{-1} (x - mu_k)``: ``[..., D] -> [..., K, D]``.

        Diagonal covariances (``scales``): one fused pass ``x / s_k - mu_k / s_k``.
        """
        if self._diagonal:
            inv = self._inv_tril.diagonal(dim1=-2, dim2=-1).to(x)  # [K, D]
            return torch.addcmul(-self.loc.to(x) * inv, x.unsqueeze(-2), inv)
        diff = x.unsqueeze(-2) - self.loc.to(x)
        return torch.einsum("kij,...kj->...ki", self._inv_tril.to(x), diff)

    def _flat_component_log_probs(self, flat: Tensor) -> tuple[Tensor, Tensor | None]:
        """``log w_k + log N(x_b; mu_k, Sigma_k)`` component-major, ``[K, B]`` for
        ``flat [B, D]`` (reductions over the components then run along contiguous rows),
        and ``z [B, K, D]`` of :meth:`_standardized` (``None`` on the expanded path).

        Isotropic components near the origin (``_expand``): ``|x - mu_k|^2 / s_k^2 =
        (|x|^2 - 2 <x, mu_k> + |mu_k|^2) / s_k^2``, one read of ``x`` for the norm and
        one ``[K, D] x [D, B]`` product.
        """
        if self._expand:
            inv_var = self._inv_tril[:, 0, 0].to(flat).square()  # [K]
            loc = self.loc.to(flat)
            xx = torch.linalg.vector_norm(flat, dim=-1).square()  # [B]
            base = torch.addcmul(
                (loc.square().sum(-1) * inv_var).unsqueeze(-1), inv_var.unsqueeze(-1), xx
            )  # [K, B]
            weighted = loc * inv_var.unsqueeze(-1)  # [K, D]
            if self.n_components <= 8:  # a matrix-vector product per component (GEMM
                sq = base  # with an inner size of a few is slow)
                for k in range(self.n_components):
                    sq[k].addmv_(flat, weighted[k], alpha=-2.0)
            else:
                sq = torch.addmm(base, weighted, flat.mT, alpha=-2.0)
            z = None
        else:
            z = self._standardized(flat)
            sq = torch.linalg.vector_norm(z, dim=-1).square().mT.contiguous()
        half_logdet = self.scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1).to(flat)
        const = self.weights.log().to(flat) - half_logdet - 0.5 * self.dim * LOG_2PI
        return torch.add(const.unsqueeze(-1), sq, alpha=-0.5), z

    def component_log_probs(self, x: Tensor) -> Tensor:
        """``log w_k + log N(x; mu_k, Sigma_k)``: ``[..., D] -> [..., K]``."""
        comp, _ = self._flat_component_log_probs(x.reshape(-1, self.dim))
        return comp.mT.reshape(*x.shape[:-1], self.n_components)

    def log_prob(self, x: Tensor) -> Tensor:
        """Log density ``[..., D] -> [...]``; differentiable in ``x``."""
        comp, _ = self._flat_component_log_probs(x.reshape(-1, self.dim))
        return _logsumexp(comp, 0).reshape(x.shape[:-1])

    @torch.no_grad()
    def log_prob_and_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(log pi(x) [...], grad log pi(x) [..., D])`` in closed form, no autograd graph.

        ``grad = -sum_k P(k | x) Sigma_k^{-1} (x - mu_k)``; with diagonal covariances
        ``= -x sum_k P_k s_k^-2 + sum_k P_k mu_k s_k^-2``.
        """
        flat = x.reshape(-1, self.dim)
        comp, z = self._flat_component_log_probs(flat)
        log_prob = _logsumexp(comp, 0)  # [B]
        # P(k | x) [K, B]; terms below exp(-80) clamped there (denormals are slow)
        resp = (comp - log_prob).clamp_min_(_LOG_TINY).exp_()
        if self._expand:
            inv_var = self._inv_tril[:, 0, 0].to(x).square()
            grad = flat * (inv_var @ resp).neg_().unsqueeze(-1)
            _add_mixture(grad, resp, self.loc.to(x) * inv_var.unsqueeze(-1))
        elif self._diagonal:
            prec = self._inv_tril.diagonal(dim1=-2, dim2=-1).to(x).square()  # [K, D]
            grad = flat * (resp.mT @ prec).neg_()
            _add_mixture(grad, resp, self.loc.to(x) * prec)
        else:
            grad = -torch.einsum("kb,kji,bkj->bi", resp, self._inv_tril.to(x), z)
        return log_prob.reshape(x.shape[:-1]), grad.reshape(x.shape)

    def component_probs(self, x: Tensor) -> Tensor:
        """Posterior responsibilities ``P(k | x)``: ``[..., D] -> [..., K]``, rows sum to 1."""
        return torch.softmax(self.component_log_probs(x), dim=-1)

    def assign(self, x: Tensor) -> Tensor:
        """Most likely component ``argmax_k P(k | x)``: ``[..., D] -> [...]`` (long)."""
        return self.component_log_probs(x).argmax(-1)

    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator | None = None, return_components: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """``n`` exact draws ``[n, D]`` (and their components ``[n]`` if ``return_components``)."""
        n = check_n(n)
        ref = self.loc
        if n == 0:
            comp = torch.zeros(0, dtype=torch.long, device=ref.device)
        else:
            comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=ref.dtype, device=ref.device)
        x = self.loc[comp] + torch.einsum("nij,nj->ni", self.scale_tril[comp], z)
        return (x, comp) if return_components else x

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n_components={self.n_components}"


class GridMixture(GaussianMixture):
    """:meth:`GaussianMixture.grid` as a class, so a YAML config can name it.

    Example:
        >>> GridMixture(k=5).n_components
        25
    """

    def __init__(self, k: int = 5, spacing: float = 5.0, scale: float = 1.0, dim: int = 2):
        grid = GaussianMixture.grid(k=k, spacing=spacing, scale=scale, dim=dim)
        super().__init__(grid.loc.double(), scales=scale)


class SymmetricMixture(GaussianMixture):
    """:meth:`GaussianMixture.symmetric` as a class, so a YAML config can name it.

    Example:
        >>> SymmetricMixture(dim=50, n_modes=2).dim
        50
    """

    def __init__(self, dim: int, n_modes: int = 2, distance: float = 8.0, scale: float = 1.0):
        mix = GaussianMixture.symmetric(dim=dim, n_modes=n_modes, distance=distance, scale=scale)
        super().__init__(mix.loc.double(), scales=scale)
