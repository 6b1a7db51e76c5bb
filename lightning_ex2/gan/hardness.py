"""How sharp a GAN latent target is: the numbers that say whether explore-exploit can pay.

For ``log pi(z) = log N(z; 0, I) + t(z)`` (``t`` the tilt, the calibrated discriminator logit
over the temperature) and the prior ``q = N(0, I)`` as i-SIR's proposal, the importance weights
are ``w = pi / q ∝ exp(t)``. From ``n`` prior draws :func:`target_diagnostics` reports:

* ``tilt_std``: the standard deviation of ``t`` under the prior;
* ``importance_ess_fraction``: ``(sum w)^2 / (n sum w^2)``, the prior's efficiency as an
  importance sampler of pi (1: pi is the prior; small: pi lives where the prior rarely goes);
* ``isir_accept_N``: the implied stationary acceptance of i-SIR with ``N`` particles drawn from
  the prior, ``E[1 - w_0 / sum_j w_j]`` with ``z_0 ~ pi`` (sampling-importance-resampled from
  the same draws) and ``N - 1`` fresh prior draws, by Monte Carlo; and ``isir_accept_N_lognormal``,
  the log-normal approximation ``(N - 1) / (N - 1 + exp(tilt_std^2 / 2))``;
* ``mala_step``: the step size a short MALA pilot (``lightning_ex2.sample``, dual averaging to
  acceptance 0.67 during its burn-in, from the prior) adapts to, with ``mala_pilot_accept`` its
  acceptance after adaptation. The pilot is too short to converge and is not meant to: its
  verdict is recorded (``mala_pilot_converged``, ``mala_pilot_failed_checks``), with the
  warnings it raised (``mala_pilot_warnings``), never shown as if the user's run had raised
  them.

**The paper's regime** (Samsonov et al. 2022, Sec. 5: their CIFAR-10 DCGAN has a log pi std of
about 10 over prior draws) is where this project expects global moves to pay: importance
ESS <= 0.1 n and tilt std >= 2 (:func:`in_paper_regime`). A target with ESS near n is the prior
mildly reweighted; every corrected sampler reaches it in a few steps and FID cannot order them.

Command (any GAN sampling config; prints JSON)::

    python -m lightning_ex2.gan.hardness --config configs/gan/fashion_calibrated_mala.yaml

It is computed when asked (this command, :func:`target_diagnostics`, ``scripts/fashion_table.py``),
never while a ``sample`` run writes its output set.

**Tempering** (``GANLatentTarget(beta=...)``, ``pi_beta ∝ N(0, I) exp(beta l)``, ``l`` the
calibrated logit): :func:`beta_grid` reports, for each ``beta`` of a grid and each seed, the
tilt std, the importance ESS / n and the importance-weighted mean tilt of ``pi_beta`` from
``n`` prior draws, and the FID/IS of ``k`` of them drawn without replacement with
probabilities ``∝ exp(beta l)`` (:func:`gumbel_top_k`), a crude stand-in for exact samples of
``pi_beta``; ``scripts/beta_grid.py`` writes it into ``docs/gans.md``.

Example:
    >>> from lightning_ex2.gan import DigitsDiscriminator, DigitsGenerator, GANLatentTarget
    >>> target = GANLatentTarget(DigitsGenerator(latent_dim=2), DigitsDiscriminator())
    >>> d = target_diagnostics(target, n=500, pilot_chains=0)
    >>> 0 < d["importance_ess_fraction"] <= 1, "mala_step" in d
    (True, False)
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "PAPER_REGIME",
    "beta_grid",
    "gumbel_top_k",
    "importance_ess_fraction",
    "in_paper_regime",
    "target_diagnostics",
    "tempered_summary",
]

#: The thresholds of "the paper's regime": importance ESS / n at most, tilt std at least.
PAPER_REGIME = {"importance_ess_fraction": 0.1, "tilt_std": 2.0}


def importance_ess_fraction(log_w: Tensor) -> float:
    """``(sum w)^2 / (n sum w^2)`` of log-weights ``[n]`` (stable in log space).

    >>> round(importance_ess_fraction(torch.zeros(10)), 6)
    1.0
    """
    log_w = log_w.double()
    return float(
        torch.exp(2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0)) / len(log_w)
    )


def isir_acceptance(
    log_w: Tensor, n_particles: int, n_trials: int, generator: torch.Generator
) -> float:
    """Monte Carlo ``E[1 - w_0 / sum_j w_j]``: ``z_0 ~ pi`` (resampled), ``N - 1`` prior draws.

    >>> g = torch.Generator().manual_seed(0)
    >>> round(isir_acceptance(torch.zeros(100), 10, 1000, g), 2)  # flat weights: (N-1)/N
    0.9
    """
    log_w = log_w.double()
    n = log_w.shape[0]
    i0 = torch.multinomial(torch.softmax(log_w, 0), n_trials, replacement=True, generator=generator)
    rest = torch.randint(0, n, (n_trials, n_particles - 1), generator=generator)
    lw = torch.cat([log_w[i0][:, None], log_w[rest]], dim=1)
    return float((1 - torch.softmax(lw, dim=1)[:, 0]).mean())


def tempered_summary(logit: Tensor, beta: float) -> dict[str, float]:
    """What ``pi_beta ∝ N(0, I) exp(beta l)`` looks like from prior draws' logits ``l [n]``.

    Returns ``tilt_std`` (of ``beta l``), ``importance_ess_fraction`` and
    ``tilt_mean_pi`` / ``logit_mean_pi``: the self-normalised importance-weighted means of
    ``beta l`` and ``l`` under ``pi_beta`` (what an exact sampler of ``pi_beta`` reaches;
    from ``n`` draws, biased low when the ESS is a handful of draws).

    >>> out = tempered_summary(torch.tensor([0.0, 1.0, 2.0]), 0.0)
    >>> round(out["importance_ess_fraction"], 6), out["logit_mean_pi"]
    (1.0, 1.0)
    """
    d = logit.double()
    t = beta * d
    w = torch.softmax(t, 0)
    return {
        "beta": float(beta),
        "tilt_std": float(t.std()),
        "importance_ess_fraction": importance_ess_fraction(t),
        "tilt_mean_pi": float((w * t).sum()),
        "logit_mean_pi": float((w * d).sum()),
        "logit_mean_prior": float(d.mean()),
    }


def gumbel_top_k(log_w: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """``k`` distinct indices drawn without replacement with probabilities ``∝ exp(log_w)``
    (successive sampling; the Gumbel-top-k trick): the ``k`` largest ``log_w + Gumbel``.

    >>> g = torch.Generator().manual_seed(0)
    >>> sorted(gumbel_top_k(torch.tensor([0.0, -1e9, 0.0, 5.0]), 2, g).tolist()) in ([0, 3], [2, 3])
    True
    """
    u = torch.rand(log_w.shape, generator=generator, dtype=torch.float64).clamp_min(1e-300)
    keys = log_w.double().cpu() - torch.log(-torch.log(u))
    return torch.topk(keys, k).indices


@torch.no_grad()
def beta_grid(
    target: Any,
    betas: dict[str, float],
    score: Any = None,
    seeds: tuple[int, ...] | list[int] = (0, 1, 2),
    n: int = 10000,
    k: int = 300,
) -> list[dict[str, Any]]:
    """The tempering grid of a GAN latent target; one row per ``(beta, seed)``.

    Args:
        target: a :class:`~lightning_ex2.gan.GANLatentTarget` (its ``beta`` is ignored:
            the grid tempers its untempered logit ``(a d + b) / T``).
        betas: label -> ``beta`` (e.g. ``{"0": 0.0, "platt": 1.6649}``).
        score: ``latents [k, D] -> {"fid": ..., "is": ...}`` (e.g. an ``ImageQualityMetrics``'
            ``evaluate(z, target.decode)``); ``None``: no image scores.
        seeds: each seed draws its own ``n`` prior latents and its own Gumbel keys.
        n, k: prior draws, and how many of them are resampled (``k <= n``).

    Returns:
        rows ``{"label", "seed", **tempered_summary, "logit_mean_resampled", "fid", "is"}``.
    """
    if not 0 < k <= n:
        raise ValueError(f"beta_grid: need 0 < k <= n, got k={k}, n={n}")
    rows = []
    for seed in seeds:
        device = next((p.device for p in target.parameters()), torch.device("cpu"))
        g = torch.Generator(device=device).manual_seed(seed)
        z = target.prior_sample(n, generator=g)
        logit = torch.cat([target.discriminator_logit(c) for c in z.split(1000)])
        logit = (logit / target.temperature).cpu()
        finite = torch.isfinite(logit)
        z, logit = z[finite.to(z.device)], logit[finite]
        for label, beta in betas.items():
            row: dict[str, Any] = {
                "label": label,
                "seed": int(seed),
                **tempered_summary(logit, beta),
            }
            gumbel = torch.Generator().manual_seed(seed + 1)  # the same keys for every beta
            pick = gumbel_top_k(beta * logit.double(), k, gumbel)
            row["logit_mean_resampled"] = float(logit[pick].double().mean())
            if score is not None:
                res = score(z[pick.to(z.device)])
                row["fid"], row["is"] = float(res["fid"]), float(res["is"])
            rows.append(row)
    return rows


def in_paper_regime(diagnostics: dict[str, Any]) -> bool:
    """Whether ``diagnostics`` meets :data:`PAPER_REGIME`."""
    return (
        diagnostics["importance_ess_fraction"] <= PAPER_REGIME["importance_ess_fraction"]
        and diagnostics["tilt_std"] >= PAPER_REGIME["tilt_std"]
    )


@torch.no_grad()
def _tilt(target: Any, z: Tensor) -> Tensor:
    return torch.cat([target.log_prob(c) - target.prior_log_prob(c) for c in z.split(1000)])


def target_diagnostics(
    target: Any,
    n: int = 4000, n_particles: int = 10, n_trials: int = 20000,  # the prior as proposal
    pilot_chains: int = 32, pilot_steps: int = 100, pilot_step_size: float = 0.01,  # MALA
    seed: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """Tilt std, importance ESS / n, implied i-SIR acceptance and pilot MALA step of ``target``.

    Args:
        target: a GAN latent target (``log_prob``, ``prior_log_prob``, ``prior_sample``, ``dim``).
        n: prior draws.
        n_particles: ``N`` of the implied i-SIR acceptance.
        n_trials: Monte Carlo trials of that acceptance.
        pilot_chains, pilot_steps: the MALA pilot (``0`` chains: no pilot); its first half
            adapts the step from ``pilot_step_size``, its second half measures acceptance.
        seed: seeds every draw (the global RNG is untouched).

    Returns:
        plain floats (see the module docstring), plus ``n`` and ``in_paper_regime``.
    """
    device = next((p.device for p in target.parameters()), torch.device("cpu"))
    g = torch.Generator(device=device).manual_seed(seed)
    z = target.prior_sample(n, generator=g)
    t = _tilt(target, z)
    finite = torch.isfinite(t)
    t = t[finite].cpu()
    cpu = torch.Generator().manual_seed(seed + 1)
    std = float(t.double().std())
    out: dict[str, Any] = {
        "n": int(n),
        "n_nonfinite": int((~finite).sum()),
        "tilt_mean": float(t.double().mean()),
        "tilt_std": std,
        "importance_ess_fraction": importance_ess_fraction(t),
        f"isir_accept_{n_particles}": isir_acceptance(t, n_particles, n_trials, cpu),
        f"isir_accept_{n_particles}_lognormal": (n_particles - 1)
        / (n_particles - 1 + math.exp(min(std**2 / 2, 700.0))),
    }
    if pilot_chains > 0:
        from lightning_ex2.kernels import MALA
        from lightning_ex2.sampling import sample

        half = max(1, pilot_steps // 2)
        start = target.prior_sample(pilot_chains, generator=g)
        # a diagonal metric: the pilot's step is read against the configs' MALA steps
        kernel = MALA(step_size=pilot_step_size, target_accept=0.67, mass_matrix="diagonal")
        # The pilot is this function's own run: what it would warn about (its convergence,
        # non-finite log-densities it met) is recorded here, not shown as the user's run's.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # recorded, even where the caller's filter raises
            for quiet in (DeprecationWarning, PendingDeprecationWarning):  # about code, not runs
                warnings.simplefilter("ignore", quiet)
            run = sample(
                target, kernel, n_chains=pilot_chains, n_steps=half, burn_in=half, init=start,
                seed=seed, progress=False, check_convergence=False,
            )  # fmt: skip
        verdict = run.summary()
        out["mala_step"] = float(run.info["step_size"].double().mean())
        out["mala_pilot_accept"] = float(run.info["accept_local"].double().mean())
        out["mala_pilot"] = f"{pilot_chains} chains, {half} adaptation + {half} steps"
        out["mala_pilot_converged"] = verdict["converged"]
        out["mala_pilot_failed_checks"] = list(verdict.get("failed_checks") or [])
        out["mala_pilot_warnings"] = [str(w.message) for w in caught]
    out["in_paper_regime"] = in_paper_regime(out)
    return out


def target_from_config(path: str) -> Any:
    """The target a sampling config gives (``model.init_args.target``), built by jsonargparse
    as the command builds it, without the command itself."""
    import yaml
    from jsonargparse import ArgumentParser

    with open(path) as stream:
        config = yaml.safe_load(stream) or {}
    spec = ((config.get("model") or {}).get("init_args") or {}).get("target")
    if spec is None:
        raise SystemExit(f"{path}: no model.init_args.target (a GAN sampling config has one)")
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--target", type=torch.nn.Module)
    return parser.instantiate(parser.parse_object({"target": spec})).target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Diagnostics of a GAN latent target (JSON).")
    parser.add_argument("--config", required=True, help="a GAN sampling config")
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--n_particles", type=int, default=10)
    parser.add_argument("--pilot_chains", type=int, default=32)
    parser.add_argument("--pilot_steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    d = target_diagnostics(
        target_from_config(args.config), n=args.n, n_particles=args.n_particles,
        pilot_chains=args.pilot_chains, pilot_steps=args.pilot_steps, seed=args.seed,
    )  # fmt: skip
    print(json.dumps(d, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
