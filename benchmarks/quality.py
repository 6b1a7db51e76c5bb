"""Quality per second: EMD and ESS/s versus wall time, our samplers vs. NUTS (numpyro).

Problems: funnel d=10/50/100, banana d=20/50/100 and the 25-mode 2-D mixture.
Our samplers (project venv or ``.venv-ref``; torch, ``--threads``, float32):

* MALA and Ex2MCMC (``lightning_ex2.sample``; step size adapted during burn-in
  toward 0.574, then frozen; Gaussian proposal ``N(0, diag(s^2))``, N = 200);
* FlEx2MCMC: ``Ex2MCMC`` with a RealNVP ``FlowProposal`` trained by
  ``lightning_ex2.sample``'s burn-in (``--flow-train`` Ex2MCMC steps; after each, one
  Adam step on the forward KL of the i-SIR particles, the ``FlEx2MCMC`` module's loss),
  then frozen and sampled with ``lightning_ex2.sample``. Its wall time includes the
  training.

NUTS: ``nuts_run.py`` in ``benchmarks/.venv-nuts`` (created by ``setup_envs.sh
nuts``), JAX CPU with the same thread count, vectorized chains; its wall time
includes warm-up but not the JIT compilation (reported separately).

For every run the table gives wall time (burn-in/warm-up/training + sampling),
ESS (mean over coordinates, multi-chain) and ESS/s over the sampling phase, and
the EMD (W2^2, 2000 pooled draws vs. 2000 exact draws) beside the EMD of two exact
samples of the same size -- in 50-100 dimensions that noise floor dominates, so
EMD only discriminates in low dimension. ``quality_curve.csv`` has EMD and ESS/s
at 1/4, 1/2 and all of the post-burn-in draws against the wall time to reach them
(the time of a prefix is burn-in time plus the proportional share of sampling).

Usage::

    bash benchmarks/setup_envs.sh nuts
    .venv/bin/python benchmarks/quality.py                   # all problems, 3 seeds (~30 min)
    .venv/bin/python benchmarks/quality.py --problems funnel10,mixture --no-nuts

Writes ``benchmarks/out/quality.csv``/``.md`` and ``quality_curve.csv``.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT, PROBLEMS, machine, sd, set_threads, write_table

HERE = Path(__file__).resolve().parent
NUTS_PY = HERE / ".venv-nuts" / "bin" / "python"
FLEX_PROBLEMS = {"funnel10", "funnel50", "funnel100", "mixture"}


def train_flow(kernel, target, n_chains, n_iter, seed):  # type: ignore[no-untyped-def]
    """FlEx2MCMC's flow training: ``lightning_ex2.sample``'s burn-in (each step an Ex2MCMC
    move and one update of the flow, the module's loss and optimizer), flow frozen after."""
    import lightning_ex2 as lx

    run = lx.sample(target, kernel, n_chains=n_chains, n_steps=1, burn_in=n_iter, seed=seed,
                    progress=False, check_convergence=False)  # fmt: skip
    return run.state


def our_run(sampler, problem, args, generator):  # type: ignore[no-untyped-def]
    import torch

    import lightning_ex2 as lx

    target = problem.target(torch.float32)
    scale = torch.tensor(problem.scale_list())
    h, k, n = problem.step_size, problem.n_local, args.particles
    t0 = time.perf_counter()
    init = None
    if sampler == "MALA":
        kernel = lx.MALA(step_size=h, target_accept=0.574)
        init = torch.randn(args.chains, problem.dim, generator=generator)
    elif sampler == "Ex2MCMC":
        q = lx.proposals.GaussianProposal(problem.dim, scale=scale)
        kernel = lx.Ex2MCMC(q, n, h, n_local_steps=k, target_accept=0.574)
    else:  # FlEx2MCMC
        q = lx.proposals.FlowProposal(
            problem.dim, flow="realnvp", scale=scale, hidden_features=args.flow_hidden
        )
        kernel = lx.Ex2MCMC(q, args.flex_particles, h, n_local_steps=k, target_accept=0.574)
        init = train_flow(kernel, target, args.chains, args.flow_train, args.seed).x
    prep = time.perf_counter() - t0
    run = lx.sample(
        target,
        kernel,
        n_chains=args.chains,
        n_steps=args.steps,
        burn_in=args.burn_in,
        init=init,
        seed=args.seed,
        progress=False,
        check_convergence=False,
    )
    # burn-in share of the run, from the per-step time of the sampling phase
    total = prep + run.wall_seconds
    per_step = run.wall_seconds / (args.burn_in + args.steps)
    warm = prep + per_step * args.burn_in
    return run.samples, warm, total - warm


def nuts_run(problem, args):  # type: ignore[no-untyped-def]
    import numpy as np
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "nuts.npz"
        cmd = [
            str(NUTS_PY),
            str(HERE / "nuts_run.py"),
            "--kind",
            problem.kind,
            "--dim",
            str(problem.dim),
            "--chains",
            str(args.nuts_chains),
            "--warmup",
            str(args.nuts_warmup),
            "--samples",
            str(args.nuts_samples),
            "--threads",
            str(args.threads),
            "--seed",
            str(args.seed),
            "--out",
            str(out),
        ]
        subprocess.run(cmd, check=True)
        z = np.load(out)
        return (
            torch.from_numpy(z["draws"]),
            float(z["warmup_s"]),
            float(z["sample_s"]),
            float(z["compile_s"]),
        )


def main(argv: list[str] | None = None) -> None:
    from lightning_ex2.stamp import Stamp

    stamp = Stamp()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--problems", default="funnel10,funnel50,funnel100,banana20,banana50,banana100,mixture"
    )
    p.add_argument("--samplers", default="MALA,Ex2MCMC,FlEx2MCMC")
    p.add_argument("--chains", type=int, default=100)
    p.add_argument("--particles", type=int, default=200)
    p.add_argument("--flex-particles", type=int, default=100)
    p.add_argument("--flow-train", type=int, default=100)
    p.add_argument("--flow-hidden", type=int, default=32)
    p.add_argument("--burn-in", type=int, default=100)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--nuts-chains", type=int, default=20)
    p.add_argument("--nuts-warmup", type=int, default=200)
    p.add_argument("--nuts-samples", type=int, default=300)
    p.add_argument("--no-nuts", action="store_true")
    p.add_argument(
        "--seeds", default="0,1,2", help="comma-separated seeds; the table is mean ± sd over them"
    )
    args = p.parse_args(argv)
    set_threads(args.threads)
    import torch

    from lightning_ex2.diagnostics import emd, ess

    seeds = [int(s) for s in args.seeds.split(",")]
    header = (
        f"Quality per second; ours: {args.chains} chains, {args.burn_in} burn-in + "
        f"{args.steps} steps, float32; NUTS: {args.nuts_chains} chains, "
        f"{args.nuts_warmup} warm-up + {args.nuts_samples} draws; mean ± sd over seeds "
        f"{', '.join(map(str, seeds))}; {machine(args.threads)}"
    )
    print(header, flush=True)
    per_seed: dict[tuple[str, str], list[dict]] = {}
    curve = []
    for pname in args.problems.split(","):
        problem = PROBLEMS[pname]
        for seed in seeds:
            args.seed = seed
            g = torch.Generator().manual_seed(seed)
            target = problem.target(torch.float32)
            exact = target.sample(2000, generator=g)
            emd_exact = emd(exact, target.sample(2000, generator=g))
            runs = {}
            for sampler in args.samplers.split(","):
                if sampler == "FlEx2MCMC" and pname not in FLEX_PROBLEMS:
                    continue
                runs[sampler] = (*our_run(sampler, problem, args, g), None)
            if not args.no_nuts and NUTS_PY.exists():
                runs["NUTS"] = nuts_run(problem, args)
            for sampler, (draws, warm, samp, comp) in runs.items():
                n_draws = draws.shape[1]
                for frac in (0.25, 0.5, 1.0):
                    m = max(4, int(n_draws * frac))
                    sub = draws[:, :m]
                    e = float(torch.as_tensor(ess(sub)).nanmean())
                    curve.append(
                        {
                            "problem": problem.name,
                            "sampler": sampler,
                            "seed": seed,
                            "wall s": warm + samp * m / n_draws,
                            "draws/chain": m,
                            "ESS/s": e / (samp * m / n_draws),
                            "EMD": emd(sub.reshape(-1, problem.dim), exact),
                            "EMD exact": emd_exact,
                        }
                    )
                last = curve[-1]
                per_seed.setdefault((problem.name, sampler), []).append(
                    {
                        "chains": draws.shape[0],
                        "warm-up s": warm,
                        "sampling s": samp,
                        "ESS": last["ESS/s"] * samp,
                        "ESS/s": last["ESS/s"],
                        "EMD": last["EMD"],
                        "EMD exact": emd_exact,
                        "JIT s": comp,
                    }
                )
                print(problem.name, sampler, seed, per_seed[problem.name, sampler][-1], flush=True)
    rows = []
    for (prob, sampler), runs_ in per_seed.items():
        row: dict = {"problem": prob, "sampler": sampler, "chains": runs_[0]["chains"]}
        for c in ("warm-up s", "sampling s", "ESS", "ESS/s", "EMD", "EMD exact"):
            vals = [r[c] for r in runs_]
            row[c], row[f"{c} sd"] = sum(vals) / len(vals), sd(vals)
        jit = [r["JIT s"] for r in runs_ if r["JIT s"] is not None]
        row["JIT s"] = sum(jit) / len(jit) if jit else "-"
        rows.append(row)
    write_table("quality", rows, header, stamp)
    with open(OUT / "quality_curve.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(curve[0]))
        w.writeheader()
        w.writerows(curve)


if __name__ == "__main__":
    main()
