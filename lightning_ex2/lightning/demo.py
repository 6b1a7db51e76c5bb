"""Built-in demo: every kernel on Neal's funnel (d=20) and the 25-mode 2-D mixture.

Run with ``make compare`` (or ``python -m lightning_ex2.lightning.demo``). Runs every kernel once
per seed (``--seeds``, default 0-4) and prints a markdown table of ESS/s, ESS and EMD
(W2^2 to exact samples, beside the EMD of two exact samples of the same size), each the
mean ± sample standard deviation over the seeds, and each kernel's convergence verdict
(the rule of :func:`lightning_ex2.diagnostics.summary.diagnostics`; ``yes in k of n seeds``
where the seeds disagree); writes it to ``logs/demo/kernels.md``.

``--write docs/results.md`` also replaces the block between ``<!-- compare-kernels:start -->``
and ``<!-- compare-kernels:end -->`` of that page with the table and a footer (command,
commit, date, CPU, threads, wall time); without ``--write`` no page is edited.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

import lightning_ex2 as lx
from lightning_ex2.diagnostics import emd
from lightning_ex2.environment import choose_threads
from lightning_ex2.output.files import save_text
from lightning_ex2.proposals import GaussianProposal
from lightning_ex2.stamp import Stamp, mean_spread, write_pages
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


# (key, column header, format)
COLUMNS = [
    ("ess_per_s", "ESS/s", ".1f"),
    ("ess", "ESS (mean over dims)", ".0f"),
    ("emd", "EMD", ".3g"),
    ("emd_exact", "EMD exact-vs-exact", ".3g"),
    ("accept_global", "accept global", ".2f"),
    ("accept_local", "accept local", ".2f"),
    ("seconds", "s", ".1f"),
]


def _verdict(summary: dict) -> str:
    """``yes``, ``no (<the failed checks>)`` or ``-`` (too few draws to judge)."""
    if summary["converged"] is None:
        return "-"
    return "yes" if summary["converged"] else f"no ({'; '.join(summary['failed_checks'])})"


def _verdicts(verdicts: list[str]) -> str:
    """One verdict for all seeds: the common one; ``no (<checks failed in some seed>)`` when
    no seed converged; else ``yes in k of n seeds``."""
    if len(set(verdicts)) == 1:
        return verdicts[0]
    k = verdicts.count("yes")
    if k == 0 and all(v.startswith("no (") for v in verdicts):
        checks = {c.split()[0] for v in verdicts for c in v[4:-1].split("; ")}
        return f"no ({', '.join(sorted(checks))})"
    return f"yes in {k} of {len(verdicts)} seeds"


def run_once(n_chains: int, n_steps: int, burn_in: int, seed: int) -> dict[tuple[str, str], dict]:
    """One seed: ``{(target, kernel): {column key: value}}`` for every target and kernel."""
    problems = [
        ("funnel d=20", Funnel(dim=20), 3.0, 3, 0.05),
        ("25-mode mixture", GaussianMixture.grid(k=5), 8.0, 3, 0.5),
    ]
    results = {}
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
            ag = run.info.get("accept_global")
            al = run.info.get("accept_local")
            results[label, name] = {
                "ess_per_s": ess / run.wall_seconds,
                "ess": ess,
                "emd": float(emd(run.samples.reshape(-1, target.dim), ref)),
                "emd_exact": float(floor),
                "accept_global": None if ag is None else float(ag.mean()),
                "accept_local": None if al is None else float(al.mean()),
                "seconds": run.wall_seconds,
                "verdict": _verdict(run.summary()),
            }
            print(f"seed {seed} | {label} | {name} | {results[label, name]}", flush=True)
    return results


def run_table(n_chains: int, n_steps: int, burn_in: int, seed: int | Sequence[int]) -> str:
    """The markdown table: each column mean ± sd over the seeds, then the verdict."""
    seeds = [seed] if isinstance(seed, int) else list(seed)
    per_seed = [run_once(n_chains, n_steps, burn_in, s) for s in seeds]
    rows = [
        "| target | kernel | " + " | ".join(head for _, head, _ in COLUMNS) + " | converged |",
        "|---" * (len(COLUMNS) + 3) + "|",
    ]
    for label, name in per_seed[0]:
        cells = [
            mean_spread([r[label, name][key] for r in per_seed], fmt) for key, _, fmt in COLUMNS
        ]
        cells.append(_verdicts([r[label, name]["verdict"] for r in per_seed]))
        rows.append(f"| {label} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    stamp = Stamp()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-chains", type=int, default=50)
    parser.add_argument("--n-steps", type=int, default=400)
    parser.add_argument("--burn-in", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", type=Path, default=Path("logs/demo"))
    parser.add_argument(
        "--write",
        type=Path,
        default=None,
        help="Markdown page whose compare-kernels block gets the table (e.g. docs/results.md)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(choose_threads())
    seeds = ", ".join(map(str, args.seeds))
    table = run_table(args.n_chains, args.n_steps, args.burn_in, args.seeds)
    table += f"\n\nMean ± sd over {len(args.seeds)} seed(s) ({seeds}).\n"
    print("\n" + table)
    args.out.mkdir(parents=True, exist_ok=True)
    save_text(args.out / "kernels.md", table)
    print(f"\nwrote {args.out / 'kernels.md'}")
    if args.write is not None:
        if not write_pages([args.write], "compare-kernels", table + stamp.footer()):
            raise SystemExit(f"{args.write}: no compare-kernels block (markers) to replace")
        print(f"wrote the compare-kernels block of {args.write}")


if __name__ == "__main__":
    main()
