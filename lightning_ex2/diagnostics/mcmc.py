"""Convergence diagnostics for multi-chain MCMC output: effective sample size, split R-hat
and nested R-hat.

These are our own NumPy implementations, used during ``fit`` for TensorBoard
(:class:`~lightning_ex2.lightning.ChainDiagnostics`: ``diagnostics/ess``,
``diagnostics/rhat``) and by :meth:`Run.ess <lightning_ex2.Run.ess>` /
:meth:`Run.rhat <lightning_ex2.Run.rhat>`. They are the *classic* definitions:
:func:`ess` is ArviZ's ``ess(method="mean")`` and :func:`rhat` ArviZ's
``rhat(method="split")``, not ArviZ's defaults (bulk ESS, rank-normalized R-hat), which
``summary.json`` reports (:func:`lightning_ex2.diagnostics.summary.diagnostics`).

Both functions take draws in the ArviZ order ``(chain, draw)`` or ``(chain, draw, dim)`` as a
numpy array or a torch tensor (any device / dtype; it is copied to CPU ``float64``) and return a
``float64`` numpy array shaped ``()`` or ``(dim,)``.

References
----------
* C. J. Geyer (1992). Practical Markov chain Monte Carlo. *Statistical Science* 7(4), 473-483.
* A. Gelman, J. B. Carlin, H. S. Stern, D. B. Dunson, A. Vehtari, D. B. Rubin (2013).
  *Bayesian Data Analysis*, 3rd ed. (BDA3), Sec. 11.4-11.5.
* A. Vehtari, A. Gelman, D. Simpson, B. Carpenter, P.-C. Bürkner (2021). Rank-normalization,
  folding, and localization: an improved R-hat for assessing convergence of MCMC.
  *Bayesian Analysis* 16(2), 667-718.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["ess", "nested_rhat", "rhat", "split_chains"]

_MIN_DRAWS = 4


def _as_float64(x: Any, name: str) -> np.ndarray:
    """Convert a numpy array / torch tensor / array-like to a CPU ``float64`` numpy array.

    torch is only looked up in ``sys.modules``: if it was never imported, ``x`` cannot be a tensor,
    so this module stays numpy-only.
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        x = x.detach().to(device="cpu", dtype=torch.float64).numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"`{name}` must be convertible to a float array, got {type(x)!r}") from exc
    return arr


def _check_chains(samples: Any, name: str = "samples") -> tuple[np.ndarray, bool]:
    """Return draws as ``(chain, draw, dim)`` float64 and whether a trailing dim was given."""
    arr = _as_float64(samples, name)
    if arr.ndim == 2:
        arr, has_dim = arr[:, :, None], False
    elif arr.ndim == 3:
        has_dim = True
    else:
        raise ValueError(
            f"`{name}` must be shaped (chain, draw) or (chain, draw, dim), got shape "
            f"{tuple(arr.shape)}; a single chain of draws is passed as x[None]"
        )
    n_chain, n_draw, n_dim = arr.shape
    if n_chain < 1 or n_dim < 1:
        raise ValueError(f"`{name}` needs at least one chain and one dim, got {tuple(arr.shape)}")
    if n_draw < _MIN_DRAWS:
        raise ValueError(
            f"`{name}` needs at least {_MIN_DRAWS} draws per chain, got {n_draw} "
            f"(shape {tuple(arr.shape)}, expected (chain, draw[, dim]))"
        )
    return arr, has_dim


def split_chains(samples: np.ndarray) -> np.ndarray:
    """Split every chain into its first and last halves: ``(c, n, ...) -> (2c, n // 2, ...)``.

    For an odd number of draws the middle draw is dropped, so both halves have ``n // 2`` draws.
    """
    half = samples.shape[1] // 2
    return np.concatenate([samples[:, :half], samples[:, samples.shape[1] - half :]], axis=0)


def _autocov(x: np.ndarray) -> np.ndarray:
    """Biased autocovariance along axis 1 of ``(chain, draw, dim)`` via zero-padded FFT.

    ``acov[c, t, d] = (1 / n) * sum_{s < n - t} (x[c, s, d] - mean) (x[c, s + t, d] - mean)``.
    """
    n = x.shape[1]
    centred = x - x.mean(axis=1, keepdims=True)
    n_fft = 1 << int(2 * n - 1).bit_length()  # power of two >= 2n: no circular wrap-around
    spec = np.fft.rfft(centred, n=n_fft, axis=1)
    acov = np.fft.irfft(spec * np.conj(spec), n=n_fft, axis=1)[:, :n]
    return acov / n


def _ess_chains(x: np.ndarray) -> np.ndarray:
    """ESS of ``(chain, draw, dim)`` draws (chains used as given, no splitting) -> ``(dim,)``."""
    n_chain, n_draw, _ = x.shape
    n_total = n_chain * n_draw

    acov = _autocov(x)  # (c, n, d)
    mean_acov = acov.mean(axis=0)  # (n, d)
    within = mean_acov[0] * n_draw / (n_draw - 1.0)  # W: mean of unbiased within-chain variances
    var_plus = within * (n_draw - 1.0) / n_draw  # BDA3 (11.3): (n-1)/n W + B/n
    if n_chain > 1:
        var_plus = var_plus + x.mean(axis=1).var(axis=0, ddof=1)

    with np.errstate(divide="ignore", invalid="ignore"):
        # Combined autocorrelation estimate (BDA3 eq. 11.7 / Vehtari et al. 2021 eq. 10).
        rho = 1.0 - (within[None, :] - mean_acov) / var_plus[None, :]  # (n, d)
    rho[0] = 1.0

    # Geyer (1992): sums of consecutive pairs Gamma_j = rho_{2j} + rho_{2j+1}.  As in Stan and
    # ArviZ the pairs (2j, 2j+1) are only examined while 2j + 1 <= n - 2 (pair 0 always is).
    n_pairs = max(1, (n_draw - 1) // 2)
    pairs = rho[: 2 * n_pairs].reshape(n_pairs, 2, -1).sum(axis=1)  # (J, d)

    # Initial positive sequence: k = index of the first non-positive pair (last pair if none).
    nonpos = pairs <= 0.0
    k = np.where(nonpos.any(axis=0), nonpos.argmax(axis=0), n_pairs - 1)  # (d,)
    # Initial monotone sequence: replace each pair by the running minimum of the pairs before it.
    mono = np.minimum.accumulate(pairs, axis=0)
    cum = np.concatenate([np.zeros_like(mono[:1]), np.cumsum(mono, axis=0)], axis=0)
    cols = np.arange(pairs.shape[1])
    head = cum[k, cols]  # sum of the monotone pairs j < k
    # Stan's "improved" tail: the even lag of the stopping pair is kept with weight 1 when positive
    # (or when the pair itself is non-negative, i.e. the loop stopped on the draw limit).
    rho_even = rho[2 * k, cols]
    tail = np.where(pairs[k, cols] >= 0.0, rho_even, np.maximum(rho_even, 0.0))

    tau = -1.0 + 2.0 * head + tail
    # Guard against tiny / negative tau for antithetic chains (caps ESS at N log10 N).
    tau = np.maximum(tau, 1.0 / np.log10(n_total))
    out = n_total / tau
    out[~np.isfinite(rho).all(axis=0)] = np.nan
    return out


def ess(samples: Any, *, split: bool = True, relative: bool = False) -> np.ndarray:
    """Multi-chain effective sample size of the mean (Geyer's initial monotone sequence).

    Per-chain autocovariances are computed by FFT and combined across chains as in BDA3
    (Gelman et al. 2013, Sec. 11.5) and Stan: with ``W`` the mean within-chain variance and
    ``var_plus = (n - 1) / n * W + B / n``, ``rho_t = 1 - (W - mean_chain(acov_t)) / var_plus``.
    The autocorrelation sum is truncated with Geyer's (1992) initial positive sequence and
    smoothed with his initial monotone sequence, and ``ESS = N / tau`` with
    ``tau = -1 + 2 sum_{t < 2k} rho_t + rho_{2k}`` (Stan's variance-reducing tail term) and
    ``tau >= 1 / log10(N)``.  This is the *non*-rank-normalised "ESS of the mean" of
    Vehtari et al. (2021), the same quantity as ``arviz.ess(..., method="mean")``.

    Args:
        samples: draws shaped ``(chain, draw)`` or ``(chain, draw, dim)`` (ArviZ order), numpy
            array or torch tensor; at least 4 draws per chain.
        split: split each chain in two halves first (Vehtari et al. 2021; default, as ArviZ),
            which makes the estimate sensitive to within-chain drift.  With an odd number of
            draws the middle draw is dropped.
        relative: return ``ESS / N`` (``N`` = total number of draws used) instead of ``ESS``.

    Returns:
        float64 array shaped ``()`` for ``(chain, draw)`` input or ``(dim,)`` otherwise.
        A coordinate that is exactly constant over all chains and draws, or that contains a
        non-finite value, gets ``nan`` (ArviZ returns ``N`` for constant input instead; ``nan``
        is used here so that a sampler that never moves cannot report a perfect ESS).

    Raises:
        ValueError: if ``samples`` is not 2-D / 3-D or has fewer than 4 draws per chain.
    """
    arr, has_dim = _check_chains(samples)
    x = split_chains(arr) if split else arr
    finite = np.isfinite(x).all(axis=(0, 1))
    x_safe = np.where(np.isfinite(x), x, 0.0)
    constant = np.ptp(x_safe, axis=(0, 1)) == 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        out = _ess_chains(x_safe)
    out[~finite | constant] = np.nan
    if relative:
        out = out / (x.shape[0] * x.shape[1])
    return out if has_dim else out.reshape(())


def rhat(samples: Any, *, split: bool = True) -> np.ndarray:
    """Split potential scale reduction factor R-hat (BDA3, Gelman et al. 2013, Sec. 11.4).

    Each chain is split into halves (``split=True``), then with ``n`` draws per (half-)chain,
    ``W`` the mean within-chain variance and ``B / n`` the variance of the chain means,
    ``R-hat = sqrt(((n - 1) / n * W + B / n) / W)``.  This is the classic split-R-hat (not the
    rank-normalised version of Vehtari et al. 2021), like ``arviz.rhat(..., method="split")``.
    Values close to 1 indicate mixing; Vehtari et al. (2021) recommend requiring R-hat < 1.01
    (1.1 is the older BDA3 threshold).

    Args:
        samples: draws shaped ``(chain, draw)`` or ``(chain, draw, dim)`` (ArviZ order), numpy
            array or torch tensor; at least 4 draws per chain.
        split: split each chain in two halves first (default).  A single chain is accepted
            (its two halves are compared; ArviZ returns ``nan`` for fewer than 2 chains).
            Without splitting, a single chain gives ``nan`` (no between-chain variance).

    Returns:
        float64 array shaped ``()`` or ``(dim,)``; ``nan`` where a coordinate is constant
        within every chain (``W == 0``) or contains non-finite values.

    Raises:
        ValueError: if ``samples`` is not 2-D / 3-D or has fewer than 4 draws per chain.
    """
    arr, has_dim = _check_chains(samples)
    x = split_chains(arr) if split else arr
    n_chain, n_draw, _ = x.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        within = x.var(axis=1, ddof=1).mean(axis=0)
        if n_chain > 1:
            between_over_n = x.mean(axis=1).var(axis=0, ddof=1)
        else:
            between_over_n = np.full_like(within, np.nan)
        out = np.sqrt(((n_draw - 1.0) / n_draw * within + between_over_n) / within)
    # W == 0 exactly: test with ptp, since float round-off can leave var(const) ~ 1e-32.
    stuck = np.ptp(np.where(np.isfinite(x), x, 0.0), axis=1).max(axis=0) == 0.0
    out[~np.isfinite(x).all(axis=(0, 1)) | stuck] = np.nan
    return out if has_dim else out.reshape(())


def nested_rhat(samples: Any, superchains: Any) -> np.ndarray:
    """Nested R-hat of chains grouped into superchains (Margossian et al. 2024).

    For many short chains where the chains of a superchain share their start point,
    R-hat compares superchains instead of chains. With ``K`` superchains of ``M``
    chains each, ``N`` draws per chain, chain means ``f_mk``, superchain means
    ``f_k``, overall mean ``f``:

    * ``B = 1 / (K - 1) sum_k (f_k - f)^2`` (between superchains),
    * ``W = 1 / K sum_k (B_k + W_k)``, with ``B_k = 1 / (M - 1) sum_m (f_mk - f_k)^2``
      (between the chains of superchain ``k``; 0 when ``M = 1``) and ``W_k`` the mean
      unbiased within-chain variance (0 when ``N = 1``),
    * ``nR-hat = sqrt(1 + B / W)``.

    With ``M = 1`` it is a non-split R-hat variant of the chains themselves. For
    independent draws ``nR-hat^2 - 1`` tends to ``1 / (M (N + 1))`` (the ratio of the
    expected ``B`` and ``W``), so ``nR-hat`` reaches 1 as ``M N`` grows, not as
    ``N`` alone does. Chains are not split.

    Reference: C. C. Margossian, M. D. Hoffman, P. Sountsov, L. Riou-Durand,
    A. Vehtari, A. Gelman (2024). Nested R-hat: assessing the convergence of Markov
    chain Monte Carlo when running many short chains. *Bayesian Analysis*
    (arXiv 2110.13017).

    Args:
        samples: draws ``(chain, draw)`` or ``(chain, draw, dim)``, at least 1 draw.
        superchains: ``(chain,)`` integer ids; every superchain must hold the same
            number of chains, and there must be at least 2 superchains.

    Returns:
        float64 array ``()`` or ``(dim,)``; ``nan`` where ``W == 0`` or non-finite.

    Example:
        >>> x = np.array([[0., 1.], [1., 2.], [4., 5.], [5., 6.]])
        >>> float(nested_rhat(x, [0, 0, 1, 1]))  # B = 8, W = 1, sqrt(1 + 8)
        3.0
    """
    arr = _as_float64(samples, "samples")
    has_dim = arr.ndim == 3
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[1] < 1:
        raise ValueError(f"`samples` must be shaped (chain, draw[, dim]), got {arr.shape}")
    ids = np.asarray(superchains).reshape(-1)
    if ids.shape[0] != arr.shape[0]:
        raise ValueError(
            f"`superchains` needs one id per chain ({arr.shape[0]}), got {ids.shape[0]}"
        )
    labels, counts = np.unique(ids, return_counts=True)
    if len(labels) < 2 or (counts != counts[0]).any():
        raise ValueError(
            "`superchains` must form at least 2 superchains of equal size, got sizes "
            f"{counts.tolist()}"
        )
    n_super, n_sub, n_draw = len(labels), int(counts[0]), arr.shape[1]
    order = np.argsort(ids, kind="stable")
    x = arr[order].reshape(n_super, n_sub, n_draw, -1)  # (K, M, N, dim)
    chain_mean = x.mean(axis=2)  # (K, M, dim)
    super_mean = chain_mean.mean(axis=1)  # (K, dim)
    between = super_mean.var(axis=0, ddof=1)
    between_chains = chain_mean.var(axis=1, ddof=1) if n_sub > 1 else np.zeros_like(super_mean)
    within = x.var(axis=2, ddof=1).mean(axis=1) if n_draw > 1 else np.zeros_like(super_mean)
    w = (between_chains + within).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.sqrt(1.0 + between / w)
    out[~np.isfinite(x).all(axis=(0, 1, 2)) | (w <= 0)] = np.nan
    return out if has_dim else out.reshape(())
