"""Built-in demo: every kernel on Neal's funnel (d=20) and the 25-mode 2-D mixture.

Run with ``make compare`` (or ``python -m lightning_ex2.demo``). Prints a markdown
table of ESS/s and EMD (W2^2 to exact samples, beside the EMD of two exact
samples of the same size) and each run's convergence verdict (the rule of
:func:`lightning_ex2.metrics.summary.diagnostics`), and writes it to
``logs/demo/kernels.md``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

import lightning_ex2 as lx
from lightning_ex2.io import save_text
from lightning_ex2.metrics import emd
from lightning_ex2.proposals import GaussianProposal
from lightning_ex2.targets import Funnel, GaussianMixture


def _kernels(dim: int, scale: float, n_local: int, step: float) -> dict[str, lx.kernels.Kernel]:
    q = GaussianProposal(dim, scale=scale)
    return {
        "ULA": lx.ULA(step_size=step / 5),
        "MALA": lx.MALA(step_size=step, target_accept=0.574),
        "HMC": lx.HMC(step_size=step, n_leapfrog=5, target_accept=0.7),
        "i-SIR": lx.ISIR(q, n_particles=200),
        "Ex2MCMC": lx.Ex2MCMC(q, 200, step, n_local_steps=n_local, target_accept=0.574),
    }


def _verdict(summary: dict) -> str:
    """``yes``, ``no (<the failed checks>)`` or ``-`` (too few draws to judge)."""
    if summary["converged"] is None:
        return "-"
    return "yes" if summary["converged"] else f"no ({'; '.join(summary['failed_checks'])})"


def run_table(n_chains: int, n_steps: int, burn_in: int, seed: int) -> str:
    problems = [
        ("funnel d=20", Funnel(dim=20), 3.0, 3, 0.05),
        ("25-mode mixture", GaussianMixture.grid(k=5), 8.0, 3, 0.5),
    ]
    rows = [
        "| target | kernel | ESS/s | ESS (mean over dims) | EMD | EMD exact-vs-exact | "
        "accept global | accept local | s | converged |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, target, scale, n_local, step in problems:
        g = torch.Generator().manual_seed(seed)
        n_ref = n_chains * n_steps
        ref = target.sample(min(n_ref, 4000), generator=g)
        floor = emd(ref, target.sample(min(n_ref, 4000), generator=g))
        init = torch.randn(n_chains, target.dim, generator=g)
        for name, kernel in _kernels(target.dim, scale, n_local, step).items():
            run = lx.sample(
                target,
                kernel,
                n_chains=n_chains,
                n_steps=n_steps,
                burn_in=burn_in,
                init=init,
                seed=seed,
                progress=False,
                check_convergence=False,  # the verdict is the table's last column
            )
            ess = float(np.nanmean(run.ess()))
            dist = emd(run.samples.reshape(-1, target.dim), ref)
            ag = run.info.get("accept_global")
            al = run.info.get("accept_local")
            rows.append(
                f"| {label} | {name} | {ess / run.wall_seconds:.1f} | {ess:.0f} | {dist:.3g} | "
                f"{floor:.3g} | {'-' if ag is None else f'{ag.mean():.2f}'} | "
                f"{'-' if al is None else f'{al.mean():.2f}'} | {run.wall_seconds:.1f} | "
                f"{_verdict(run.summary())} |"
            )
            print(rows[-1], flush=True)
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-chains", type=int, default=50)
    parser.add_argument("--n-steps", type=int, default=400)
    parser.add_argument("--burn-in", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("logs/demo"))
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    table = run_table(args.n_chains, args.n_steps, args.burn_in, args.seed)
    print("\n" + table)
    args.out.mkdir(parents=True, exist_ok=True)
    save_text(args.out / "kernels.md", table + "\n")
    print(f"\nwrote {args.out / 'kernels.md'}")


if __name__ == "__main__":
    main()
