"""Target-cost benchmark: the built-in targets' ``log_prob`` and ``log_prob`` + gradient
against a one-pass reduction ``x.square().sum(-1)`` over the same input.

For each target, on ``x [B, D]`` (default ``B = 20000``, float32, 1 thread), times
interleaved in one process (``common.time_alternating``):

* ``reduction``: ``x.square().sum(-1)``, the unit of cost;
* ``log_prob``: ``target.log_prob(x)`` without a graph (what i-SIR pays per particle);
* ``log_prob+grad``: the kernels' helper ``log_prob_and_grad(target, x)`` (the target's
  closed form where it has one, as MALA/ULA/Ex2MCMC pay);
* ``autograd``: ``log_prob`` + ``torch.autograd.grad`` (the generic path, for comparison).

Columns ``log_prob / red.`` (goal <= 3) and ``lp+grad / red.`` (goal <= 2x the
``log_prob`` one) are medians of paired per-repeat ratios.

Usage::

    python benchmarks/targets.py                 # ~1 min
    python benchmarks/targets.py --threads 2 --batch 20000

Writes ``benchmarks/out/targets.csv`` and ``targets.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    machine,
    median,
    median_ratio,
    ratio_sd,
    set_threads,
    time_alternating,
    write_table,
)

TARGETS = ("funnel100", "banana100", "symmetric100", "grid25", "logistic")


def make(name: str):  # type: ignore[no-untyped-def]
    """``(label, target)`` in float32."""
    import torch

    import lightning_ex2 as lx

    t = {
        "funnel100": lambda: ("funnel d=100", lx.targets.Funnel(100, a=2.0, b=0.5)),
        "banana100": lambda: ("banana d=100", lx.targets.Banana(100, b=0.02, sigma=5.0)),
        "symmetric100": lambda: ("2-mode mixture d=100", lx.targets.SymmetricMixture(100)),
        "grid25": lambda: ("25-mode mixture d=2", lx.targets.GridMixture(k=5)),
        "logistic": lambda: (
            "logistic regression (breast cancer, d=31, 569 rows)",
            lx.targets.BayesianLogisticRegression("breast_cancer"),
        ),
    }[name]()
    return t[0], t[1].to(torch.float32)


def run(args: argparse.Namespace) -> list[dict]:
    import torch

    from lightning_ex2.kernels.base import log_prob_and_grad, log_prob_only

    rows = []
    for name in args.targets.split(","):
        label, target = make(name)
        g = torch.Generator().manual_seed(0)
        if hasattr(target, "sample"):
            x = target.sample(args.batch, generator=g)
        else:
            x = 0.1 * torch.randn(args.batch, target.dim, generator=g)
        x = x.contiguous()

        def autograd(x=x, target=target) -> None:
            with torch.enable_grad():
                y = x.detach().requires_grad_(True)
                torch.autograd.grad(target.log_prob(y).sum(), y)

        fns = {
            "reduction": lambda x=x: x.square().sum(-1),
            "log_prob": lambda x=x, t=target: log_prob_only(t, x),
            "lp+grad": lambda x=x, t=target: log_prob_and_grad(t, x),
            "autograd": autograd,
        }
        t = time_alternating(fns, repeats=args.repeats, inner=args.inner)
        row = {
            "target": label,
            "input": f"[{args.batch}, {target.dim}]",
            "reduction ms": median(t["reduction"]),
            "log_prob ms": median(t["log_prob"]),
            "lp+grad ms": median(t["lp+grad"]),
            "autograd ms": median(t["autograd"]),
            "log_prob / red.": median_ratio(t["log_prob"], t["reduction"]),
            "log_prob / red. sd": ratio_sd(t["log_prob"], t["reduction"]),
            "lp+grad / red.": median_ratio(t["lp+grad"], t["reduction"]),
            "lp+grad / red. sd": ratio_sd(t["lp+grad"], t["reduction"]),
            "lp+grad / log_prob": median_ratio(t["lp+grad"], t["log_prob"]),
            "lp+grad / log_prob sd": ratio_sd(t["lp+grad"], t["log_prob"]),
        }
        rows.append(row)
        print(row, flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    from lightning_ex2.stamp import Stamp

    stamp = Stamp()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=20000)
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--inner", type=int, default=5)
    args = p.parse_args(argv)
    set_threads(args.threads)
    header = f"Target cost (float32, batch {args.batch}); {machine(args.threads)}"
    print(header, flush=True)
    write_table("targets", run(args), header, stamp)


if __name__ == "__main__":
    main()
