"""Ours vs. the reference implementation (PyPI ``ex2mcmc==0.0.4``) at identical settings.

Runs in ``benchmarks/.venv-ref`` (created by ``bash benchmarks/setup_envs.sh ref``),
which holds torch 2.13.0 (CPU), this package, and the reference with a stand-in
``torchvision`` module (the reference imports it at module level; it is never used).
One process runs both implementations, alternating, with the same thread count.

Identical settings per problem: target (ours ``Funnel(d, a=2, b=0.5)`` /
``Banana(d, b=0.02, sigma=5)``; the reference's ``Funnel(a=2, b=0.5)`` /
``Banana(b=0.02, sigma=5)``, which equal ours up to an additive constant -- the
script checks this), float32, the same start points (``N(0, I)``), the same fixed
step size (no adaptation on either side: the reference's heuristic would adapt
forever), the same Gaussian proposal ``N(0, diag(s^2))``, N particles, k MALA
steps per Ex2MCMC step (the reference's ``ex2mcmc(n_mala_steps=m)`` runs ``2m - 1``
MALA steps, so it is called with ``m = (k + 1) // 2``; k is odd here).

Columns: ``ms/step`` is the median over alternating repeats of whole runs of
``--time-steps`` steps (the reference's functional API runs its loop, per-step
``.item()`` and ``.cpu().clone()`` included; ours is ``lightning_ex2.sample``);
``speed-up`` is the median of the per-repeat ratios ``ref / ours`` (± their sd);
``ESS/s`` = mean-over-coordinates multi-chain ESS of ``--steps`` post-burn-in
draws of 100 chains divided by ``steps * ms/step``; ``EMD`` = W2^2 between 2000
pooled draws and 2000 exact draws, beside ``EMD exact`` (two exact samples); both
are mean ± sd over ``--seeds`` runs with different seeds.

Usage::

    bash benchmarks/setup_envs.sh ref
    benchmarks/.venv-ref/bin/python benchmarks/reference.py            # ~5-8 min
    benchmarks/.venv-ref/bin/python benchmarks/reference.py --problems funnel100 --quick

Writes ``benchmarks/out/reference.csv`` and ``reference.md`` (``reference_<n>t.*`` with
``--threads n`` > 1).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import FIXED_MALA, PROBLEMS, machine, median, ratio_sd, sd, set_threads, write_table

SAMPLERS = ("ULA", "MALA", "i-SIR", "Ex2MCMC")


def reference_target(problem):  # type: ignore[no-untyped-def]
    from ex2mcmc.sampling_utils import distributions as D

    if problem.kind == "funnel":
        return D.Funnel(a=2.0, b=0.5, dim=problem.dim, device="cpu")
    if problem.kind == "banana":
        return D.Banana(b=0.02, sigma=5.0, dim=problem.dim, device="cpu")
    raise ValueError(problem.kind)


def check_targets(problem, ours, ref) -> float:  # type: ignore[no-untyped-def]
    """Max deviation of ``log pi_ours - log pi_ref`` from a constant on exact draws."""
    import torch

    x = ours.sample(500, generator=torch.Generator().manual_seed(1))
    diff = (ours.log_prob(x) - ref.log_prob(x)).double()
    return float((diff - diff.mean()).abs().max())


def make_runner(impl: str, sampler: str, problem, n_particles: int):  # type: ignore[no-untyped-def]
    """``run(x0, n_steps, burn_in) -> (draws [C, S, D], seconds)`` for one implementation."""
    import torch

    import lightning_ex2 as lx

    h, k = problem.step_size, problem.n_local
    scale = torch.tensor(problem.scale_list())
    target = problem.target(torch.float32)
    if impl == "ours":
        q = lx.proposals.GaussianProposal(problem.dim, scale=scale)
        kernel = {
            "ULA": lambda: lx.ULA(step_size=h / 5),
            "MALA": lambda: lx.MALA(step_size=h, **FIXED_MALA),
            "i-SIR": lambda: lx.ISIR(q, n_particles),
            "Ex2MCMC": lambda: lx.Ex2MCMC(q, n_particles, h, n_local_steps=k),
        }[sampler]()

        def run(x0, n_steps, burn_in, seed=0):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            r = lx.sample(
                target,
                kernel,
                n_chains=x0.shape[0],
                n_steps=n_steps,
                burn_in=burn_in,
                init=x0,
                seed=seed,
                progress=False,
                check_convergence=False,  # timed: the sampler, not ArviZ
            )
            return r.samples, time.perf_counter() - t

        return run, target

    from ex2mcmc import samplers as S
    from ex2mcmc.sampling_utils.distributions import IndependentNormal

    ref_target = reference_target(problem)
    q = IndependentNormal(problem.dim, loc=torch.zeros(problem.dim), scale=scale, device="cpu")

    def run(x0, n_steps, burn_in, seed=0):  # type: ignore[no-untyped-def]
        torch.manual_seed(seed)
        t = time.perf_counter()
        if sampler == "ULA":
            out, _ = S.ula(x0.clone(), ref_target, q, n_steps, burn_in, step_size=h / 5)
        elif sampler == "MALA":
            out, _ = S.mala(x0.clone(), ref_target, q, n_steps, burn_in, step_size=h)
        elif sampler == "i-SIR":
            out, _ = S.isir(x0.clone(), ref_target, q, n_steps, burn_in, n_particles=n_particles)
        else:
            out, _ = S.ex2mcmc(
                x0.clone(),
                ref_target,
                q,
                n_steps,
                burn_in,
                step_size=h,
                n_particles=n_particles,
                n_mala_steps=(k + 1) // 2,
            )
        return out.detach().transpose(0, 1), time.perf_counter() - t

    return run, ref_target


def main(argv: list[str] | None = None) -> None:
    from lightning_ex2.stamp import Stamp

    stamp = Stamp()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--problems", default="funnel100,banana100")
    p.add_argument("--samplers", default=",".join(SAMPLERS))
    p.add_argument("--particles", type=int, default=200)
    p.add_argument("--chains", default="1,100")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--time-steps", type=int, default=30)
    p.add_argument("--burn-in", type=int, default=100)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument(
        "--seeds", type=int, default=3, help="seeds of the ESS/EMD runs (mean ± sd over them)"
    )
    p.add_argument("--quick", action="store_true", help="repeats 2, 200 steps, 50 burn-in")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.steps, args.burn_in = 2, 200, 50
    set_threads(args.threads)
    import torch

    from lightning_ex2.diagnostics import emd, ess

    header = (
        f"Reference benchmark: ours vs ex2mcmc==0.0.4, float32, N={args.particles}; "
        f"{machine(args.threads)}"
    )
    print(header, flush=True)
    rows = []
    for pname in args.problems.split(","):
        problem = PROBLEMS[pname]
        g = torch.Generator().manual_seed(0)
        ours_t = problem.target(torch.float32)
        exact = ours_t.sample(2000, generator=g)
        emd_exact = emd(exact, ours_t.sample(2000, generator=g))
        dev = check_targets(problem, ours_t, reference_target(problem))
        print(
            f"{problem.name}: log-density difference ours - reference is constant "
            f"to within {dev:.2e}",
            flush=True,
        )
        for sampler in args.samplers.split(","):
            runners = {
                i: make_runner(i, sampler, problem, args.particles)[0] for i in ("ours", "ref")
            }
            for n_chains in (int(c) for c in args.chains.split(",")):
                x0 = torch.randn(n_chains, problem.dim, generator=g)
                n_time = args.time_steps * (4 if n_chains == 1 else 1)
                times: dict[str, list[float]] = {"ours": [], "ref": []}
                for impl in ("ours", "ref"):  # warm-up
                    runners[impl](x0, 3, 0)
                for r in range(args.repeats):
                    for impl in ("ours", "ref") if r % 2 == 0 else ("ref", "ours"):
                        _, sec = runners[impl](x0, n_time, 0, seed=r)
                        times[impl].append(sec / n_time * 1e3)
                ms = {i: median(v) for i, v in times.items()}
                row = {
                    "problem": problem.name,
                    "sampler": sampler,
                    "chains": n_chains,
                    "ours ms/step": ms["ours"],
                    "ref ms/step": ms["ref"],
                    "speed-up": ms["ref"] / ms["ours"],
                    "speed-up sd": ratio_sd(times["ref"], times["ours"]),
                }
                if n_chains >= 50:
                    got: dict[str, list[float]] = {}
                    for seed in range(123, 123 + args.seeds):
                        for impl in ("ours", "ref"):
                            draws, _ = runners[impl](x0, args.steps, args.burn_in, seed=seed)
                            e = float(torch.as_tensor(ess(draws)).nanmean())
                            got.setdefault(f"{impl} ESS/s", []).append(
                                e / (args.steps * ms[impl] / 1e3)
                            )
                            got.setdefault(f"{impl} EMD", []).append(
                                emd(draws.reshape(-1, problem.dim), exact)
                            )
                    for c in ("ours ESS/s", "ref ESS/s", "ours EMD", "ref EMD"):
                        row[c], row[f"{c} sd"] = sum(got[c]) / len(got[c]), sd(got[c])
                    row["EMD exact"] = emd_exact
                else:
                    for c in ("ours ESS/s", "ref ESS/s", "ours EMD", "ref EMD"):
                        row[c] = row[f"{c} sd"] = "-"
                    row["EMD exact"] = "-"
                rows.append(row)
                print(row, flush=True)
    name = "reference" if args.threads == 1 else f"reference_{args.threads}t"
    write_table(name, rows, header, stamp)


if __name__ == "__main__":
    main()
