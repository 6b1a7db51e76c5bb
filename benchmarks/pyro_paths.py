"""PyroModel's evaluation paths timed against each other: ``plate``, ``vmap``, ``loop``.

Per model, every path that the model supports is built (``PyroModel(..., path=P)``,
each checked against Pyro's ``potential_fn`` as always) and timed on the work a
gradient kernel asks for: the log density and its gradient at ``--points`` points
(``log_prob(x).sum().backward()``). The paths' calls are interleaved
(:func:`common.time_alternating`), and the table gives the median per call, its spread
over ``--repeats`` repeats, and the ratio to the loop in the same run (the median of
the per-repeat ratios).

* ``eight_schools``: posteriordb's non-centred eight schools, written to broadcast
  (its plate path exists);
* ``matmul_regression``: ``y ~ normal(X @ beta, 1)``, 200 observations, 5
  coefficients: written for one point, so the batched pass fails and ``vmap`` is the
  fastest path.

    OMP_NUM_THREADS=1 python benchmarks/pyro_paths.py --write docs/pyro.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import median_ratio, set_threads, time_alternating  # noqa: E402
from lightning_ex2.stamp import Stamp, write_pages  # noqa: E402

BLOCK = "pyro-paths"


def matmul_regression(X: torch.Tensor, y: torch.Tensor) -> None:
    import pyro
    import pyro.distributions as dist

    beta = pyro.sample("beta", dist.Normal(0.0, 1.0).expand([X.shape[1]]).to_event(1))
    with pyro.plate("data", len(y)):
        pyro.sample("y", dist.Normal(X @ beta, 1.0), obs=y)


def models() -> dict[str, tuple]:
    from lightning_ex2.targets import posteriordb
    from lightning_ex2.targets.posteriordb.pyro_models import MODELS, model_args

    name = "eight_schools-eight_schools_noncentered"
    data = posteriordb.load_data(name, ROOT / "tests" / "fixtures" / "posteriordb")
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 5, generator=g, dtype=torch.float64)
    y = X @ torch.randn(5, generator=g, dtype=torch.float64) + torch.randn(
        200, generator=g, dtype=torch.float64
    )
    return {
        "eight_schools": (MODELS[name], model_args(name, data)),
        "matmul_regression": (matmul_regression, (X, y)),
    }


def _value_and_grad(target, x: torch.Tensor) -> None:  # type: ignore[no-untyped-def]
    xi = x.clone().requires_grad_(True)
    target.log_prob(xi).sum().backward()


def main(argv: list[str] | None = None) -> None:
    stamp = Stamp()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write", type=Path, nargs="*", default=[], help="pages for the table")
    args = parser.parse_args(argv)
    set_threads(args.threads)
    from lightning_ex2.targets import PyroModel, PyroModelError

    lines = [
        "| model | path | ms per call (median ± sd over repeats) | × loop's speed |",
        "|---|---|---|---|",
    ]
    for name, (model, model_args) in models().items():
        targets = {}
        for path in ("plate", "vmap", "loop"):
            try:
                targets[path] = PyroModel(model, *model_args, path=path, verbose=False)
            except PyroModelError:
                continue
        x = torch.randn(args.points, targets["loop"].dim, dtype=torch.float64,
                        generator=torch.Generator().manual_seed(1))  # fmt: skip

        times = time_alternating(
            {p: (lambda t=t, x=x: _value_and_grad(t, x)) for p, t in targets.items()},
            repeats=args.repeats, inner=1, warmup=1,
        )  # fmt: skip
        for path in ("plate", "vmap", "loop"):
            if path not in targets:
                lines.append(f"| {name} | {path} | (fails its check or the model) | - |")
                continue
            ms = times[path]
            spread = statistics.stdev(ms) if len(ms) > 1 else 0.0
            med = statistics.median(ms)
            ratio = median_ratio(times["loop"], ms)  # paired: the same time window
            lines.append(f"| {name} | {path} | {med:.3g} ± {spread:.2g} | {ratio:.3g} |")
    table = "\n".join(lines) + (
        f"\n\n{args.points} points, value and gradient per call, {args.repeats} interleaved "
        f"repeats, float64, {args.threads} torch thread(s).\n"
    )
    print(table)
    pages = [p if p.is_absolute() else ROOT / p for p in args.write]
    written = write_pages(pages, BLOCK, table + stamp.footer())
    for page in pages:
        print(f"{page}: {'wrote' if page in written else 'no'} {BLOCK} block", flush=True)


if __name__ == "__main__":
    main()
