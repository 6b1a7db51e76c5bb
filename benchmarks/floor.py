"""Floor benchmark: the time of one kernel step over the time of exactly its target evaluations.

For each kernel and each (chains C, particles N, dim D) this times, interleaved
in one process (see ``common.time_alternating``):

* ``step``: one ``kernel.step`` on C chains (state carried over, fixed step size);
* ``floor``: exactly the target evaluations of that step done as batches --
  i-SIR: ``log_prob`` on ``[C * (N - 1), D]``; ULA/MALA: one ``log_prob`` + gradient
  on ``[C, D]``; Ex2MCMC/FlEx2MCMC: both, with ``k + 1`` gradient calls (the
  recomputation at the i-SIR output, then one per MALA step);
* ``draws``: the proposal's ``sample_and_log_prob((C, N - 1))`` alone (global kernels).

and reports ``ratio = step / floor`` (goal <= 1.3) and ``ratio_rng = step /
(floor + draws)``, the overhead beyond target evaluations *and* the proposal draws.
FlEx2MCMC here is Ex2MCMC with an (untrained, identity-initialised) RealNVP
``FlowProposal``: a frozen flow costs the same whatever its weights.

Usage::

    python benchmarks/floor.py                  # default grid, 1 thread, float32 (~3 min)
    python benchmarks/floor.py --quick          # two configurations
    python benchmarks/floor.py --threads 2 --dtype float64 --grid 100x200x100,1x200x100

Writes ``benchmarks/out/floor.csv`` and ``floor.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    FIXED_MALA,
    PROBLEMS,
    machine,
    median,
    median_ratio,
    ratio_sd,
    set_threads,
    time_alternating,
    write_table,
)

DEFAULT_GRID = "1x200x100,100x50x100,100x200x10,100x200x100"
KERNELS = ("ULA", "MALA", "i-SIR", "Ex2MCMC", "FlEx2MCMC")


def build(kernel: str, problem, dim: int, n_particles: int):  # type: ignore[no-untyped-def]
    import lightning_ex2 as lx

    scale = (
        problem.scale_list()[:dim]
        if not isinstance(problem.proposal_scale, float)
        else problem.proposal_scale
    )
    h, k = problem.step_size, problem.n_local
    if kernel == "ULA":
        return lx.ULA(step_size=h / 5)
    if kernel == "MALA":
        return lx.MALA(step_size=h, **FIXED_MALA)
    q = lx.proposals.GaussianProposal(dim, scale=scale)
    if kernel == "i-SIR":
        return lx.ISIR(q, n_particles)
    if kernel == "Ex2MCMC":
        return lx.Ex2MCMC(q, n_particles, h, n_local_steps=k)
    q = lx.proposals.FlowProposal(dim, flow="realnvp", scale=scale)
    return lx.Ex2MCMC(q, n_particles, h, n_local_steps=k)


def run(args: argparse.Namespace) -> list[dict]:
    import torch
    from common import Problem, banana_scale

    from lightning_ex2.kernels.base import log_prob_and_grad, log_prob_only
    from lightning_ex2.random import make_generator

    dtype = getattr(torch, args.dtype)
    rows = []
    for tname in args.targets.split(","):
        for cfg in args.grid.split(","):
            n_chains, n_particles, dim = (int(v) for v in cfg.split("x"))
            base = PROBLEMS[f"{tname}100"]
            problem = Problem(
                base.name,
                base.kind,
                dim,
                banana_scale(dim) if tname == "banana" else base.proposal_scale,
                base.step_size,
                base.n_local,
            )
            target = problem.target(dtype)
            g = make_generator("cpu").manual_seed(0)  # the run's generator (parallel streams)
            for kname in args.kernels.split(","):
                kernel = build(kname, problem, dim, n_particles).to(dtype=dtype)
                state = kernel.init(target.sample(n_chains, generator=g), target)
                box = [state]

                def step(kernel=kernel, box=box, target=target, g=g) -> None:
                    box[0] = kernel.step(box[0], target, g)[0]

                fns = {"step": step}
                x_c = box[0].x.clone()
                if kname in ("ULA", "MALA"):
                    fns["floor"] = lambda x_c=x_c, t=target: log_prob_and_grad(t, x_c)
                else:
                    q = kernel.proposal
                    with torch.no_grad():
                        xs = q.sample_and_log_prob((n_chains, n_particles - 1), g)[0]
                    xs = xs.reshape(-1, dim).contiguous()
                    n_grad = 0 if kname == "i-SIR" else kernel.n_local_steps + 1

                    def floor(xs=xs, x_c=x_c, n_grad=n_grad, target=target) -> None:
                        log_prob_only(target, xs)
                        for _ in range(n_grad):
                            log_prob_and_grad(target, x_c)

                    def draws(q=q, shape=(n_chains, n_particles - 1), g=g) -> None:
                        with torch.no_grad():
                            q.sample_and_log_prob(shape, g)

                    fns["floor"], fns["draws"] = floor, draws
                t = time_alternating(fns, repeats=args.repeats, inner=args.inner)
                row = {
                    "target": tname,
                    "kernel": kname,
                    "chains": n_chains,
                    "particles": n_particles if kname not in ("ULA", "MALA") else "-",
                    "dim": dim,
                    "step ms": median(t["step"]),
                    "floor ms": median(t["floor"]),
                    "ratio": median_ratio(t["step"], t["floor"]),
                    "ratio sd": ratio_sd(t["step"], t["floor"]),
                }
                if "draws" in t:
                    row["draws ms"] = median(t["draws"])
                    both = [a + b for a, b in zip(t["floor"], t["draws"])]
                    row["ratio_rng"] = median_ratio(t["step"], both)
                    row["ratio_rng sd"] = ratio_sd(t["step"], both)
                else:
                    row["draws ms"] = "-"
                    row["ratio_rng"] = row["ratio"]
                    row["ratio_rng sd"] = row["ratio sd"]
                rows.append(row)
                print(row, flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    from lightning_ex2.stamp import Stamp

    stamp = Stamp()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--targets", default="funnel,banana")
    p.add_argument("--kernels", default=",".join(KERNELS))
    p.add_argument("--grid", default=DEFAULT_GRID, help="comma-separated CxNxD")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--inner", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="grid 1x200x100,100x200x100; funnel only")
    args = p.parse_args(argv)
    if args.quick:
        args.grid, args.targets, args.repeats = "1x200x100,100x200x100", "funnel", 5
    set_threads(args.threads)
    header = f"Floor benchmark ({args.dtype}); {machine(args.threads)}"
    print(header, flush=True)
    write_table("floor", run(args), header, stamp)


if __name__ == "__main__":
    main()
