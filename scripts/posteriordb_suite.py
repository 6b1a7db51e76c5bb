"""Sample posteriordb posteriors with the library's kernels (and Stan's NUTS) and score them.

Per posterior and kernel, with the library's defaults (kernels built with structural
arguments only; ``lx.sample(target, kernel, n_chains=C, n_steps=S, burn_in=W, seed=K)``;
``W`` = 1000 by default, the warm-up length Stan's NUTS runs with here too),
on the constrained scale (``target.constrain``) against posteriordb's reference draws:

* ``mean err``: max over posteriordb's names of ``|mean - ref mean| / ref sd``;
* ``sd err``: max over names of ``|sd - ref sd| / ref sd``;
* ``R-hat``, ``bulk ESS``: ArviZ's rank R-hat (max) and bulk ESS (min) over names;
* ``ESS/grad``: min bulk ESS per gradient evaluation of the whole run (warm-up included;
  Ex2MCMC's pilot too; i-SIR's particle log densities are not counted);
* ``ESS/s``: min bulk ESS per second of the whole run (warm-up included);
* ``verdict``: the convergence verdict of ``run.summary()`` (R-hat and ESS rule; for
  NUTS the same rule on its draws);
* ``right``: seeds where mean err < 0.1 and R-hat < 1.01.

``pyro_nuts`` (with ``--pyro``) is Pyro's own NUTS on the same Pyro model, its chains
in parallel processes (see :func:`pyro_nuts`).

``nuts`` is Stan's NUTS through PyStan 3 (``--stan-python``, an interpreter with PyStan;
the same machine): ``--nuts-chains`` chains run in parallel, one process per core
(httpstan's pool), ``--nuts-warmup`` + ``--nuts-draws`` iterations, Stan's defaults; its
gradients are the ``n_leapfrog__`` of every iteration, warm-up included; its time is the
sampling call (the compiled model is cached by httpstan, compilation is not counted).

The kernels are a table (:data:`KERNELS`: name -> factory); a kernel that cannot be
built or run in this version (e.g. ``flex2mcmc`` before FlEx2MCMC is in ``lx.sample``)
is skipped with a note. Every column is the mean ± sd over the seeds.

    python scripts/posteriordb_suite.py --posteriordb ~/posteriordb \\
        --stan-python ~/venv-stan/bin/python --kernels mala,hmc,nuts --write docs/posteriors.md

The table and the standard footer replace the block between
``<!-- posteriors-table:start -->`` and ``<!-- posteriors-table:end -->`` of each
``--write`` page; ``<out>/posteriors.md`` and ``<out>/posteriors.json`` (per-seed
values) are always written.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import lightning_ex2 as lx
from lightning_ex2.diagnostics.summary import diagnostics
from lightning_ex2.output.files import save_text
from lightning_ex2.stamp import Stamp, mean_spread, write_pages
from lightning_ex2.targets import posteriordb as pdb
from lightning_ex2.targets.posteriordb._stan import run_stan

ROOT = Path(__file__).resolve().parents[1]
BLOCK = "posteriors-table"


class Unavailable(Exception):
    """A kernel this version cannot run (the row is skipped with this note)."""


class Plan:
    """A kernel ready to run: ``sample(target, seed) -> (draws [C, T, D], grads, seconds,
    verdict)``; built by a factory of :data:`KERNELS`."""

    def __init__(self, sample: Callable[..., tuple[np.ndarray, float, float, Any]]) -> None:
        self.sample = sample


def _lx_run(target, kernel, args, seed, grads_per_step, extra_grads=0.0, extra_s=0.0):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        run = lx.sample(
            target, kernel, n_chains=args.chains, n_steps=args.steps, burn_in=args.warmup,
            seed=seed, progress=False, check_convergence=False,
        )  # fmt: skip
    grads = extra_grads + grads_per_step * args.chains * (args.warmup + args.steps)
    return run.samples, grads, run.wall_seconds + extra_s, run.summary()["converged"]


def mala(args) -> Plan:  # type: ignore[no-untyped-def]
    return Plan(lambda target, seed: _lx_run(target, lx.kernels.MALA(), args, seed, 1))


def hmc(args) -> Plan:  # type: ignore[no-untyped-def]
    n = args.n_leapfrog
    return Plan(lambda target, seed: _lx_run(target, lx.kernels.HMC(n_leapfrog=n), args, seed, n))


def _pilot(target, args, seed):  # type: ignore[no-untyped-def]
    """A MALA pilot of ``args.warmup`` steps (half burn-in): ``(loc, scale, seconds)`` of its
    draws, where Ex2MCMC and FlEx2MCMC place their proposal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pilot = lx.sample(
            target, lx.kernels.MALA(), n_chains=args.chains, n_steps=args.warmup // 2,
            burn_in=args.warmup // 2, seed=seed, progress=False, check_convergence=False,
        )  # fmt: skip
    flat = pilot.samples.reshape(-1, target.dim)
    return flat.mean(0).float(), flat.std(0).clamp_min(1e-3).float(), pilot.wall_seconds


def _global(args, proposal):  # type: ignore[no-untyped-def]
    """Ex2MCMC whose proposal ``proposal(dim, loc, scale)`` is placed by a MALA pilot."""

    def sample(target, seed):  # type: ignore[no-untyped-def]
        loc, scale, pilot_s = _pilot(target, args, seed)
        torch.manual_seed(seed)  # a flow's initial weights
        kernel = lx.kernels.Ex2MCMC(proposal(target.dim, loc=loc, scale=scale))
        grads = args.chains * args.warmup  # the pilot's
        return _lx_run(target, kernel, args, seed, kernel.n_local_steps, grads, pilot_s)

    return Plan(sample)


def ex2mcmc(args) -> Plan:  # type: ignore[no-untyped-def]
    """Ex2MCMC with a Gaussian proposal placed by a MALA pilot (mean and sd of its draws)."""
    return _global(args, lx.proposals.GaussianProposal)


def flex2mcmc(args) -> Plan:  # type: ignore[no-untyped-def]
    """FlEx2MCMC through ``lx.sample``: Ex2MCMC whose proposal is a fresh flow, trained
    during burn-in (one flow update per move) and frozen for the draws. The flow's base
    is placed like Ex2MCMC's Gaussian: by a MALA pilot (mean and sd of its draws)."""
    if getattr(lx.proposals, "FlowProposal", None) is None:
        raise Unavailable("FlowProposal is not available in this version")
    return _global(args, lx.proposals.FlowProposal)


def nuts(args) -> Plan:  # type: ignore[no-untyped-def]
    """Stan's NUTS through PyStan (draws mapped to the port's unconstrained names)."""
    from lightning_ex2.targets.posteriordb._stan import has_stan

    if args.stan_python is None and not has_stan():
        raise Unavailable("PyStan not found (pass --stan-python)")

    def sample(target, seed):  # type: ignore[no-untyped-def]
        result = run_stan(
            {
                "task": "nuts",
                "code": pdb.stan_code(target.name, args.posteriordb),
                "data": pdb.load_data(target.name, args.posteriordb),
                "chains": args.nuts_chains,
                "warmup": args.nuts_warmup,
                "draws": args.nuts_draws,
                "seed": seed + 1,
            },
            args.stan_python,
        )
        flat: dict[str, np.ndarray] = {}
        for name, entry in result["draws"].items():
            values = np.asarray(entry["values"])[:, result["warmup"] :]  # [chain, draw, numel]
            shape = entry["shape"]
            if not shape:
                flat[name] = values[..., 0]
                continue
            for i, idx in enumerate(np.ndindex(*shape)):
                flat[f"{name}[{','.join(str(j + 1) for j in idx)}]"] = values[..., i]
        constrained = np.stack([flat[n] for n in target.flat_names()], axis=-1)
        grads = float(np.sum(result["n_leapfrog"]))
        # the same convergence rule as run.summary(), on NUTS's draws
        return constrained, grads, result["wall_seconds"], diagnostics(constrained)["converged"]

    return Plan(sample)


def pyro_nuts(args) -> Plan:  # type: ignore[no-untyped-def]
    """Pyro's own NUTS on the posterior's Pyro model (``--pyro``): ``pyro.infer.MCMC``
    with ``--nuts-chains`` chains in parallel processes (its ``mp_context="spawn"``
    workers, one per core; Pyro would keep a core for its waiting main process and run
    them one after the other on 2 cores, so its core count is raised), ``--nuts-warmup`` + ``--nuts-draws`` iterations, Pyro's
    defaults (step size and diagonal mass matrix adapted). Seconds are the wall time of
    ``MCMC.run`` (the workers' start included, as a user waits for it). Pyro does not
    report its leapfrog steps, so ESS/grad is left empty."""
    if not getattr(args, "pyro", False):
        raise Unavailable("pyro_nuts needs --pyro (the posterior's Pyro model)")

    def sample(target, seed):  # type: ignore[no-untyped-def]
        from unittest import mock

        import pyro.infer.mcmc.api as pyro_api
        from pyro.infer import MCMC, NUTS

        torch.manual_seed(seed)
        chains = args.nuts_chains
        start = time.perf_counter()
        # Pyro keeps a core for its main process (parallel only when chains <= cores - 1),
        # so on 2 cores it would draw its 2 chains one after the other; its main process
        # only waits on the workers, so let it use every core: Pyro's best case here
        cores = max(chains + 1, os.cpu_count() or 1)
        with warnings.catch_warnings(), mock.patch.object(pyro_api.mp, "cpu_count", lambda: cores):
            warnings.simplefilter("ignore")
            mcmc = MCMC(
                NUTS(target.model), num_samples=args.nuts_draws,
                warmup_steps=args.nuts_warmup, num_chains=chains,
                mp_context="spawn" if chains > 1 else None, disable_progbar=True,
            )  # fmt: skip
            mcmc.run(*target.args, **target.kwargs)
        seconds = time.perf_counter() - start
        values = mcmc.get_samples(group_by_chain=True)  # {site: [chain, draw, *shape]}
        x = target.unconstrain(values)  # on the port's unconstrained space (same order)
        return x, 0.0, seconds, None

    return Plan(sample)


#: kernel name -> factory(args) -> Plan (raise Unavailable when it cannot run here)
KERNELS: dict[str, Callable[[Any], Plan]] = {
    "mala": mala,
    "hmc": hmc,
    "ex2mcmc": ex2mcmc,
    "flex2mcmc": flex2mcmc,
    "nuts": nuts,
    "pyro_nuts": pyro_nuts,
}

# (key, header, format)
COLUMNS = [
    ("mean_err", "mean err (ref sd)", ".3g"),
    ("sd_err", "sd err (ref sd)", ".3g"),
    ("rhat", "R-hat", ".4g"),
    ("ess_bulk", "bulk ESS", ".0f"),
    ("ess_per_grad", "ESS/grad", ".2e"),
    ("ess_per_s", "ESS/s", ".3g"),
    ("seconds", "s", ".0f"),
]


def score(
    draws: np.ndarray, ref_mean: np.ndarray, ref_sd: np.ndarray, grads: float, seconds: float
) -> dict[str, float | None]:
    """The columns of one run from its constrained draws ``[C, T, M]``."""
    flat = draws.reshape(-1, draws.shape[-1])
    if not np.isfinite(flat).all():
        return {"mean_err": float("inf"), "sd_err": float("inf"), "rhat": float("inf"),
                "ess_bulk": 0.0, "ess_per_grad": 0.0, "ess_per_s": 0.0, "seconds": seconds}  # fmt: skip
    d = diagnostics(draws)
    ess = d["ess_bulk_min"] or 0.0
    rhat = d["rhat_max"] if d["rhat_max"] is not None else float("inf")
    return {
        "mean_err": float(np.max(np.abs(flat.mean(0) - ref_mean) / ref_sd)),
        "sd_err": float(np.max(np.abs(flat.std(0, ddof=1) - ref_sd) / ref_sd)),
        "rhat": float(rhat),
        "ess_bulk": float(ess),
        "ess_per_grad": float(ess / grads) if grads else None,
        "ess_per_s": float(ess / seconds),
        "seconds": float(seconds),
    }


def right(row: dict) -> bool:
    return row["mean_err"] < 0.1 and row["rhat"] < 1.01


def render(results: dict[str, dict[str, list[dict]]], notes: list[str]) -> str:
    heads = ["posterior", "kernel", "right", *(h for _, h, _ in COLUMNS), "verdict"]
    lines = ["| " + " | ".join(heads) + " |", "|---" * len(heads) + "|"]
    for name, by_kernel in results.items():
        for kernel, runs in by_kernel.items():
            cells = [mean_spread([r[k] for r in runs], fmt) for k, _, fmt in COLUMNS]
            verdicts = [r["converged"] for r in runs]
            verdict = (
                "-" if all(v is None for v in verdicts)
                else f"{sum(bool(v) for v in verdicts)}/{len(runs)} converged"
            )  # fmt: skip
            ok = f"{sum(right(r) for r in runs)}/{len(runs)}"
            lines.append(f"| {name} | {kernel} | {ok} | " + " | ".join(cells) + f" | {verdict} |")
    text = "\n".join(lines)
    if notes:
        text += "\n\n" + "\n".join(f"- {n}" for n in notes)
    return text


def build_plans(kernels: list[str], args) -> tuple[dict[str, Plan], list[str]]:  # type: ignore[no-untyped-def]
    """The runnable kernels, and a note per kernel that cannot run here."""
    plans: dict[str, Plan] = {}
    notes: list[str] = []
    for kernel in kernels:
        try:
            plans[kernel] = KERNELS[kernel](args)
        except Unavailable as err:
            notes.append(f"{kernel}: skipped ({err})")
    return plans, notes


def run_posterior(name: str, args, seeds: list[int], plans: dict[str, Plan] | None = None):  # type: ignore[no-untyped-def]
    """Every kernel on posterior ``name`` at every seed: (kernel -> per-seed rows, notes)."""
    torch.set_num_threads(1)
    if plans is None:
        plans = build_plans([k for k in args.kernels.split(",") if k], args)[0]
    notes: list[str] = []
    start = time.perf_counter()
    target = pdb.load(name, args.posteriordb, dtype=torch.float64)
    try:
        ref = pdb.reference_array(target, args.posteriordb).reshape(-1, len(target.flat_names()))
    except FileNotFoundError as err:
        notes.append(f"{name}: skipped (no reference draws: {err})")
        print(notes[-1], flush=True)
        return {}, notes
    ref_mean, ref_sd = ref.mean(0), ref.std(0, ddof=1)
    # --pyro: the kernels sample the posterior's Pyro model; its draws live on the port's
    # unconstrained space, so the port maps them to posteriordb's names
    sampled = target
    if getattr(args, "pyro", False):
        from lightning_ex2.targets import PyroModel
        from lightning_ex2.targets.posteriordb.pyro_models import MODELS, model_args

        if name not in MODELS:
            notes.append(f"{name}: skipped (no Pyro model)")
            return {}, notes
        data = pdb.load_data(name, args.posteriordb)
        sampled = PyroModel(MODELS[name], *model_args(name, data), verbose=False)
    results: dict[str, list[dict]] = {}
    for kernel, plan in plans.items():
        runs = []
        for seed in seeds:
            try:
                draws, grads, seconds, verdict = plan.sample(sampled, seed)
            except Exception as err:  # a kernel that fails is a note, not a crash
                notes.append(f"{name}, {kernel}, seed {seed}: failed ({type(err).__name__}: {err})")
                print(notes[-1], flush=True)
                continue
            if isinstance(draws, torch.Tensor):
                with torch.no_grad():
                    draws = target.flatten(target.constrain(draws)).cpu().numpy()
            row = score(draws, ref_mean, ref_sd, grads, seconds)
            row["converged"] = verdict
            row["seed"] = seed
            runs.append(row)
            print(f"{name} {kernel} seed {seed}: " + ", ".join(
                f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()
            ), flush=True)  # fmt: skip
        if runs:
            results[kernel] = runs
    print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    return results, notes


def main(argv: list[str] | None = None) -> None:
    stamp = Stamp()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posteriordb", required=True, help="a posteriordb clone")
    parser.add_argument("--names", default="", help="comma-separated posteriors (default: all)")
    parser.add_argument("--kernels", default="mala,hmc,ex2mcmc,flex2mcmc,nuts")
    parser.add_argument("--chains", type=int, default=64)
    parser.add_argument(
        "--warmup", type=int, default=1000, help="warm-up steps (Stan's default length)"
    )
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--n-leapfrog", type=int, default=10)
    parser.add_argument("--stan-python", default=None, help="a Python with PyStan 3")
    parser.add_argument("--nuts-chains", type=int, default=2)
    parser.add_argument("--nuts-warmup", type=int, default=1000)
    parser.add_argument("--nuts-draws", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("logs/tables"))
    parser.add_argument("--jobs", type=int, default=1, help="posteriors run in parallel")
    parser.add_argument("--write", type=Path, nargs="*", default=[], help="pages for the table")
    parser.add_argument(
        "--pyro", action="store_true",
        help="sample each posterior's Pyro model (PyroModel) instead of its torch port",
    )  # fmt: skip
    parser.add_argument(
        "--block", default=BLOCK, help=f"the pages' block to replace (default {BLOCK})"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    names = [n for n in args.names.split(",") if n] or list(pdb.ports())
    if args.pyro:
        from lightning_ex2.targets.posteriordb.pyro_models import MODELS

        names = [n for n in names if n in MODELS]
    seeds = [int(s) for s in args.seeds.split(",")]
    kernels = [k for k in args.kernels.split(",") if k]
    for kernel in kernels:
        if kernel not in KERNELS:
            raise SystemExit(f"--kernels: unknown {kernel!r}; known: {', '.join(KERNELS)}")
    plans, notes = build_plans(kernels, args)
    for note in notes:
        print(note, flush=True)
    results: dict[str, dict[str, list[dict]]] = {}
    if args.jobs > 1:  # one posterior per worker process (each at one thread)
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            done = pool.map(run_posterior, names, [args] * len(names), [seeds] * len(names))
            for name, (by_kernel, more) in zip(names, done, strict=True):
                results[name] = by_kernel
                notes.extend(more)
    else:
        for name in names:
            results[name], more = run_posterior(name, args, seeds, plans)
            notes.extend(more)
    nuts_note = (
        f"nuts: PyStan, {args.nuts_chains} chains in parallel (one process per core), "
        f"{args.nuts_warmup} warm-up + {args.nuts_draws} draws"
        if "nuts" in plans else None
    )  # fmt: skip
    if "pyro_nuts" in plans:
        pyro_note = (
            f"pyro_nuts: Pyro's NUTS, {args.nuts_chains} chains in parallel (spawned "
            f"processes, one per core), {args.nuts_warmup} warm-up + {args.nuts_draws} draws, "
            "seconds from MCMC.run's call to its return"
        )
        nuts_note = f"{nuts_note}; {pyro_note}" if nuts_note else pyro_note
    header = (
        f"{args.chains} chains, {args.warmup} warm-up + {args.steps} steps, library defaults"
        + (", the posteriors' Pyro models (PyroModel)" if args.pyro else "")
        + (f" (HMC: n_leapfrog={args.n_leapfrog})" if "hmc" in plans else "")
        + (f"; {nuts_note}" if nuts_note else "")
        + f". Mean ± sd over {len(seeds)} seed(s) ({', '.join(map(str, seeds))})."
    )
    table = render(results, notes) + f"\n\n{header}\n"
    print(table)
    out_dir = args.out if args.out.is_absolute() else ROOT / args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    save_text(out_dir / "posteriors.md", table)
    per_seed = {"seeds": seeds, "args": {k: str(v) for k, v in vars(args).items()}, "runs": results}
    save_text(out_dir / "posteriors.json", json.dumps(per_seed, indent=1) + "\n")
    pages = [p if p.is_absolute() else ROOT / p for p in args.write]
    written = write_pages(pages, args.block, table + stamp.footer())
    for page in pages:
        print(f"{page}: {'wrote' if page in written else 'no'} {args.block} block", flush=True)


if __name__ == "__main__":
    main()
