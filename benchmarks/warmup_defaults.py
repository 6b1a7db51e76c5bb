"""MALA/HMC warm-up defaults, old vs new, on hard synthetic cases: the largest mean error
in posterior sd, R-hat, the smallest ESS, and the chains stuck after warm-up.

Self-contained (its targets are defined here), so the same file runs on a checkout of
the former code for the "old" rows::

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/warmup_defaults.py          # new defaults
    OMP_NUM_THREADS=1 PYTHONPATH=OLD_CHECKOUT python benchmarks/warmup_defaults.py --old

``--old`` builds the kernels as the former documented settings (``target_accept``,
``mass_matrix="diagonal"``, one shared step size: the former default).
"""

from __future__ import annotations

import math
import sys
import time
import warnings

import torch
from torch import nn

import lightning_ex2 as lx

MEAN0, VAR0 = -0.5772156649015329, math.pi**2 / 6  # x0 = log g, g ~ Exponential(1)


class SteepStart(nn.Module):
    """4-D: ``log pi = x0 - exp(x0) - |x1:3|^2 / 2`` (a right tail steep as ``exp``)."""

    dim = 4

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([MEAN0, 0.0, 0.0, 0.0]))
        self.register_buffer("sd", torch.tensor([math.sqrt(VAR0), 1.0, 1.0, 1.0]))

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., 0] - x[..., 0].exp() - 0.5 * x[..., 1:].square().sum(-1)


def steep_starts(n_chains: int, n_far: int, far: float = 10.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n_chains, 4, generator=g)
    x[:, 0] = x[:, 0] * math.sqrt(VAR0) + MEAN0
    x[:n_far, 0] = far
    return x


def correlated(dim: int = 20, cond: float = 1e3) -> lx.targets.Gaussian:
    g = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    cov = (q * torch.logspace(0, math.log10(cond), dim, dtype=torch.float64)) @ q.T
    return lx.targets.Gaussian(torch.zeros(dim), cov.float())


def main(old: bool) -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    funnel_sd = torch.tensor([3.0] + [math.exp(2.25)] * 9)
    gauss = correlated()
    cov = gauss.scale_tril @ gauss.scale_tril.T
    cases = {
        "steep start 4-D (4 of 64 chains 9 sd out)": (
            SteepStart(), steep_starts(64, 4), SteepStart().mean, SteepStart().sd),
        "funnel 10-D": (lx.targets.Funnel(10), None, torch.zeros(10), funnel_sd),
        "Gaussian 20-D, condition number 1e3": (gauss, None, torch.zeros(20), cov.diagonal().sqrt()),
    }  # fmt: skip
    if old:
        kernels = {
            "MALA(0.574, diagonal, shared h)": lambda: lx.MALA(
                target_accept=0.574, mass_matrix="diagonal"),
            "HMC(10, 0.65, diagonal, shared h)": lambda: lx.HMC(
                n_leapfrog=10, target_accept=0.65, mass_matrix="diagonal"),
        }  # fmt: skip
    else:
        kernels = {
            "MALA()": lambda: lx.MALA(),
            "MALA(mass_matrix='dense')": lambda: lx.MALA(mass_matrix="dense"),
            "HMC(n_leapfrog=10)": lambda: lx.HMC(n_leapfrog=10),
            "HMC(n_leapfrog=10, dense)": lambda: lx.HMC(n_leapfrog=10, mass_matrix="dense"),
        }
    for name, (target, init, mean, sd) in cases.items():
        for label, make in kernels.items():
            start = time.perf_counter()
            run = lx.sample(target, make(), n_chains=64, n_steps=500, burn_in=500, init=init,
                            seed=0, progress=False, check_convergence=False)  # fmt: skip
            err = ((run.samples.double().mean((0, 1)) - mean) / sd).abs().max()
            stuck = int((run.info["accept_local"] < 0.01).sum())
            print(
                f"| {name} | {label} | {err:.3f} | {run.rhat().max():.3f} | "
                f"{run.ess().min():.0f} | {stuck} | {time.perf_counter() - start:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main(old="--old" in sys.argv)
