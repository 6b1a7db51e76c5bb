"""The NUTS rematch on the paper's funnel/banana protocol: ESS per gradient, ESS/s, sliced TV, EMD.

Samsonov et al. 2022, Sec. 4.1 (and the reference code's experiment scripts):
Neal's funnel (a = 2, b = 0.5) in d in {10, 20, 50, 100} and the banana
(b = 0.02, sigma = 5) in d in {20, 50, 100}. Samplers:

* ``NUTS``: numpyro (``nuts_run.py`` in ``benchmarks/.venv-nuts``), diagonal mass
  matrix and step size adapted over ``--warmup`` steps (500), target acceptance 0.8;
* ``MALA``, ``HMC`` (10 leapfrog steps): ``mass_matrix="diagonal"``, adapted over the
  same warm-up (dual averaging + Stan's windows), then frozen;
* ``i-SIR``: Gaussian proposal ``N(0, diag(s^2))`` (funnel s = 3, banana: the target's
  scales), N = 200;
* ``Ex2MCMC``: i-SIR + 3 (funnel) / 5 (banana) MALA steps, diagonal mass matrix;
* ``Ex2MCMC-HMC``: i-SIR + 1 HMC step (10 leapfrog steps, diagonal mass matrix);
* ``FlEx2MCMC``: Ex2MCMC whose proposal is a RealNVP flow (4 blocks, hidden 2d)
  trained as the reference trains it: ``--flow-iters`` (1000) iterations on
  ``--flow-chains`` (100) chains with N = 200, Adam lr 1e-3, weight decay 1e-4,
  gradient clip 1, loss ``a_t * forward KL + (1 - a_t) * backward KL`` with
  ``a_t = min(0.5, 3 t / T)`` (backward KL first, then mixed); then frozen. Its
  training time is reported (``train s``) and counted in ``ESS/s total``.

Two protocols: ``1 chain``: ``--reps`` (20) independent replications of one chain x
``--draws`` (1000) draws after the warm-up, each adapting on its own (NUTS: the
replications are ``--reps`` vectorized chains, each with its own adaptation); the
columns are the mean over replications (ESS, ESS per 1000 gradient evaluations,
sliced TV, EMD) with the replications' standard deviation beside the ESS.
``100 chains``: one run of ``--chains`` chains (ours pool the adaptation over them).

Metrics, per chain then averaged: ESS (single-chain Geyer, mean over coordinates;
``neck ESS`` = the funnel's x_0 alone), ``ESS/1k grad`` = ESS per 1000 gradient
evaluations (NUTS: its leapfrog steps counted; i-SIR has none: ``-``), ``evals/draw``
= target evaluations per draw (log-density or gradient; i-SIR/Ex2MCMC: the N - 1
particles), ``ESS/s`` over the sampling phase, ``ESS/s total`` over warm-up
(+ training, + NUTS's JIT) and sampling, ``sliced TV`` (25 random directions,
against ``--exact`` (5000) exact draws) and ``EMD`` (W2^2 against the exact draws,
only where d <= 20).

Usage::

    bash benchmarks/setup_envs.sh nuts
    .venv/bin/python benchmarks/rematch.py            # the paper's scale (hours on 2 cores)
    .venv/bin/python benchmarks/rematch.py --funnel 10,100 --banana 20,100 --reps 5 \\
        --flow-iters 200 --chains-draws 500            # a reduced scale (see RESULTS.md)
    .venv/bin/python benchmarks/rematch.py --toy      # CI scale, about a minute

Writes ``benchmarks/out/rematch.csv`` and ``rematch.md``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Problem, banana_scale, machine, set_threads, write_table

HERE = Path(__file__).resolve().parent
NUTS_PY = HERE / ".venv-nuts" / "bin" / "python"
SAMPLERS = ("NUTS", "MALA", "HMC", "i-SIR", "Ex2MCMC", "Ex2MCMC-HMC", "FlEx2MCMC")
N_LEAPFROG = 10
DEFAULTS = {"funnel": "10,20,50,100", "banana": "20,50,100"}


def problem(kind: str, dim: int) -> Problem:
    if kind == "funnel":
        return Problem(f"funnel d={dim}", "funnel", dim, 3.0, 0.05, 3)
    return Problem(f"banana d={dim}", "banana", dim, banana_scale(dim), 0.1, 5)


def build(sampler: str, prob: Problem, args, flow=None):  # type: ignore[no-untyped-def]
    """``(kernel, gradient evaluations per step, log-density evaluations per step)``."""
    import torch

    import lightning_ex2 as lx

    h, k, n = prob.step_size, prob.n_local, args.particles
    diag = "diagonal"
    q = lx.proposals.GaussianProposal(prob.dim, scale=torch.tensor(prob.scale_list()))
    if sampler == "MALA":
        return lx.MALA(h, target_accept=0.574, mass_matrix=diag), 1, 0
    if sampler == "HMC":
        hmc = lx.HMC(h, N_LEAPFROG, target_accept=0.65, jitter=0.2, mass_matrix=diag)
        return hmc, N_LEAPFROG, 0
    if sampler == "i-SIR":
        return lx.ISIR(q, n), 0, n - 1
    if sampler == "Ex2MCMC":
        return lx.Ex2MCMC(q, n, h, k, target_accept=0.574, mass_matrix=diag), k + 1, n - 1
    if sampler == "Ex2MCMC-HMC":
        hmc = lx.HMC(h, N_LEAPFROG, target_accept=0.65, jitter=0.2, mass_matrix=diag)
        return lx.Ex2MCMC(q, n, local_kernel=hmc, n_local_steps=1), 1 + N_LEAPFROG, n - 1
    if sampler == "FlEx2MCMC":
        kernel = lx.Ex2MCMC(flow, n, h, k, target_accept=0.574, mass_matrix=diag)
        return kernel, k + 1, n - 1
    raise ValueError(sampler)


def train_flow(prob: Problem, target, args, generator):  # type: ignore[no-untyped-def]
    """The reference's FlEx2MCMC training; returns the frozen flow and the seconds it took."""
    import torch

    import lightning_ex2 as lx
    from lightning_ex2.kernels import Warmup

    flow = lx.proposals.FlowProposal(
        prob.dim, flow="realnvp", n_blocks=4, hidden_features=2 * prob.dim,
        scale=torch.tensor(prob.scale_list()),
    )  # fmt: skip
    t0 = time.perf_counter()
    kernel, _, _ = build("FlEx2MCMC", prob, args, flow)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3, weight_decay=1e-4)
    iters = args.flow_iters
    with torch.no_grad():
        x0 = flow.sample((args.flow_chains,), generator)
    state = kernel.init(x0.detach(), target)
    warmup = Warmup(kernel, n_warmup=iters)
    tuning = warmup.init(args.flow_chains, state.x)
    for t in range(iters):
        state, info, particles = kernel.step_with_particles(
            state, target, generator, Warmup.params(tuning)
        )
        tuning = warmup.update(tuning, info, x=state.x)
        a = min(0.5, 3.0 * t / iters)
        w = torch.softmax(particles.log_weights, dim=1).detach()
        log_q = flow.log_prob(particles.x.detach())
        forward = -(w * torch.where(w > 0, log_q, torch.zeros_like(log_q))).sum(1).mean()
        x, log_q_x = flow.sample_and_log_prob((args.flow_chains,), generator)
        log_pi = target.log_prob(x)
        ok = torch.isfinite(log_pi) & torch.isfinite(log_q_x)
        backward = torch.where(ok, log_q_x - log_pi, torch.zeros_like(log_pi)).sum()
        backward = backward / ok.sum().clamp_min(1)
        loss = a * forward + (1 - a) * backward
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(flow.parameters(), 1.0)
        opt.step()
    flow.requires_grad_(False)
    return flow, time.perf_counter() - t0


def ours(sampler, prob, target, args, n_chains, n_draws, seed, flow=None):  # type: ignore[no-untyped-def]
    """One run: ``(draws [C, T, D], warm-up s, sampling s, grads/step, log-probs/step)``."""
    import lightning_ex2 as lx

    kernel, n_grad, n_logp = build(sampler, prob, args, flow)
    run = lx.sample(
        target, kernel, n_chains=n_chains, n_steps=n_draws, burn_in=args.warmup, seed=seed,
        progress=False, check_convergence=False,
    )  # fmt: skip
    per_step = run.wall_seconds / (args.warmup + n_draws)
    return run.samples, per_step * args.warmup, per_step * n_draws, n_grad, n_logp


def nuts(prob: Problem, args, n_chains: int, n_draws: int, seed: int):  # type: ignore[no-untyped-def]
    """NUTS in its own venv: ``(draws, warm-up s incl. JIT, sampling s, grads per chain)``."""
    import numpy as np
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "nuts.npz"
        cmd = [
            str(NUTS_PY), str(HERE / "nuts_run.py"), "--kind", prob.kind, "--dim", str(prob.dim),
            "--chains", str(n_chains), "--warmup", str(args.warmup), "--samples", str(n_draws),
            "--threads", str(args.threads), "--seed", str(seed), "--out", str(out),
        ]  # fmt: skip
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        z = np.load(out)
        return (
            torch.from_numpy(z["draws"]).float(),
            float(z["warmup_s"]),
            float(z["sample_s"]),
            torch.from_numpy(z["n_grad"]).double(),
        )


def score(draws, prob, exact, args) -> dict:  # type: ignore[no-untyped-def]
    """Per-chain metrics of ``draws [C, T, D]``, averaged over chains (and their sd)."""
    import numpy as np

    from lightning_ex2.diagnostics import emd, ess, sliced_tv

    # a chain that never moves along a coordinate has no effective draws there (ESS 0,
    # where the estimator gives NaN for zero variance)
    per_chain = [
        np.nan_to_num(ess(draws[c : c + 1].double().numpy()), nan=0.0)
        for c in range(draws.shape[0])
    ]
    e = np.array([np.mean(v) for v in per_chain])
    neck = np.array([v[0] for v in per_chain]) if prob.kind == "funnel" else None
    tv = [sliced_tv(draws[c], exact, n_projections=25, seed=c) for c in range(draws.shape[0])]
    out = {"ESS": e, "neck": neck, "TV": float(np.mean(tv)), "EMD": "-"}
    if prob.dim <= 20:
        out["EMD"] = float(np.mean([emd(draws[c], exact, seed=c) for c in range(len(e))]))
    return out


def main(argv: list[str] | None = None) -> list[dict]:
    from lightning_ex2.stamp import Stamp

    stamp = Stamp()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--funnel", default=DEFAULTS["funnel"], help="funnel dimensions ('' = none)")
    p.add_argument("--banana", default=DEFAULTS["banana"], help="banana dimensions ('' = none)")
    p.add_argument("--samplers", default=",".join(SAMPLERS))
    p.add_argument("--reps", type=int, default=20, help="1-chain replications")
    p.add_argument("--draws", type=int, default=1000, help="draws per chain after warm-up")
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--chains", type=int, default=100, help="the many-chain run (0: none)")
    p.add_argument("--chains-draws", type=int, default=1000, help="its draws per chain")
    p.add_argument("--particles", type=int, default=200)
    p.add_argument("--flow-iters", type=int, default=1000)
    p.add_argument("--flow-chains", type=int, default=100)
    p.add_argument("--exact", type=int, default=5000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="rematch", help="table name under benchmarks/out/")
    p.add_argument("--toy", action="store_true", help="CI scale: funnel 10, banana 20, tiny runs")
    args = p.parse_args(argv)
    if args.toy:
        args.reps, args.draws, args.warmup = 2, 60, 40
        args.funnel = "10" if args.funnel == DEFAULTS["funnel"] else args.funnel
        args.banana = "20" if args.banana == DEFAULTS["banana"] else args.banana
        args.chains = 4 if args.chains == 100 else args.chains
        args.chains_draws, args.particles = 40, 20
        args.flow_iters, args.flow_chains, args.exact = 5, 8, 300
    set_threads(args.threads)
    import numpy as np
    import torch

    samplers = [s for s in args.samplers.split(",") if s]
    if "NUTS" in samplers and not NUTS_PY.exists():
        print(f"NUTS skipped: {NUTS_PY} missing (bash benchmarks/setup_envs.sh nuts)", flush=True)
        samplers.remove("NUTS")
    header = (
        f"NUTS rematch: warm-up {args.warmup}; 1 chain x {args.draws} draws x {args.reps} "
        f"replications; {args.chains} chains x {args.chains_draws} draws; N = {args.particles};"
        f" FlEx2MCMC flow {args.flow_iters} iterations on {args.flow_chains} chains; exact "
        f"draws {args.exact}; float32; {machine(args.threads)}"
    )
    print(header, flush=True)
    problems = [problem("funnel", int(d)) for d in args.funnel.split(",") if d]
    problems += [problem("banana", int(d)) for d in args.banana.split(",") if d]
    rows: list[dict] = []
    floors: list[str] = []
    for prob in problems:
        target = prob.target(torch.float32)
        g = torch.Generator().manual_seed(args.seed)
        exact = target.sample(args.exact, generator=g)
        flow, train_s = None, 0.0
        if "FlEx2MCMC" in samplers:
            from lightning_ex2.random import make_generator

            flow, train_s = train_flow(prob, target, args, make_generator().manual_seed(args.seed))
        for sampler in samplers:
            protocols = [("1 chain", args.reps, args.draws)]
            if args.chains:
                protocols.append((f"{args.chains} chains", args.chains, args.chains_draws))
            for label, n, n_draws in protocols:
                if sampler == "NUTS":
                    draws, warm, samp, grads = nuts(prob, args, n, n_draws, args.seed)
                    grads_per_draw = grads / n_draws
                    evals = float(grads_per_draw.mean())
                    extra = 0.0
                else:
                    runs = (
                        [ours(sampler, prob, target, args, 1, n_draws, args.seed + r, flow)
                         for r in range(n)]
                        if label == "1 chain"
                        else [ours(sampler, prob, target, args, n, n_draws, args.seed, flow)]
                    )  # fmt: skip
                    draws = torch.cat([r[0] for r in runs])
                    warm = sum(r[1] for r in runs) / len(runs)  # per run
                    samp = sum(r[2] for r in runs) / len(runs)
                    n_grad, n_logp = runs[0][3], runs[0][4]
                    grads_per_draw = torch.full((draws.shape[0],), float(n_grad))
                    evals = float(n_grad + n_logp)
                    extra = train_s if sampler == "FlEx2MCMC" else 0.0
                if label == "1 chain" and sampler == "NUTS":  # one vectorized run of n chains
                    samp, warm = samp / n, warm / n
                s = score(draws, prob, exact, args)
                ess_c = s["ESS"]
                per_grad = (
                    "-"
                    if float(grads_per_draw.mean()) == 0
                    else float(np.mean(ess_c / (grads_per_draw.numpy() * n_draws) * 1000))
                )
                scale = draws.shape[0] if label != "1 chain" else 1  # ESS/s of the whole run
                row = {
                    "problem": prob.name,
                    "sampler": sampler,
                    "protocol": label,
                    "ESS": float(ess_c.mean()),
                    "ESS sd": float(ess_c.std()) if label == "1 chain" else "-",
                    "neck ESS": "-" if s["neck"] is None else float(s["neck"].mean()),
                    "ESS/1k grad": per_grad,
                    "evals/draw": evals,
                    "ESS/s": float(ess_c.mean()) * scale / samp,
                    "ESS/s total": float(ess_c.mean()) * scale / (samp + warm + extra),
                    "warm-up s": warm,
                    "train s": extra if sampler == "FlEx2MCMC" else "-",
                    "sliced TV": s["TV"],
                    "EMD": s["EMD"],
                }
                rows.append(row)
                print(row, flush=True)
        exact2 = target.sample(args.draws, generator=g)
        from lightning_ex2.diagnostics import sliced_tv

        floors.append(f"{prob.name}: {sliced_tv(exact2, exact, n_projections=25):.3f}")
        note = (
            f"{header}. 1-chain rows: mean over replications (ESS sd beside); ESS/s and "
            "warm-up per replication (NUTS: its vectorized run divided by the replications). "
            f"Sliced TV of {args.draws} exact draws (the estimator's floor): "
            + "; ".join(floors)
            + "."
        )
        write_table(
            args.out, rows, note, stamp
        )  # after every problem: a partial run keeps its rows
    return rows


if __name__ == "__main__":
    main()
