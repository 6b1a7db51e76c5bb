"""Shared helpers of the benchmark scripts: threads, alternating timers, problems, output.

Plain Python, no dependency beyond the package itself (and numpy). Every script
sets the torch thread count explicitly (default 1) and prints it with the
machine description, so tables from different runs say what they measured.
"""

from __future__ import annotations

import csv
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lightning_ex2.stamp import Stamp

#: MALA as the reference code (ex2mcmc 0.0.4) runs it and as the stamped tables were made:
#: one fixed step size, identity metric (the library's defaults adapt both during burn-in)
FIXED_MALA = {"target_accept": None, "per_chain_step_size": False, "mass_matrix": "identity"}

# where the scripts write their tables; a test points it at a temporary folder
OUT = Path(os.environ.get("LX_BENCH_OUT") or Path(__file__).resolve().parent / "out")


def set_threads(n: int) -> None:
    """Fix intra-op threads (and OMP/MKL env for child libraries) to ``n``."""
    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    os.environ.setdefault("MKL_NUM_THREADS", str(n))
    import torch

    torch.set_num_threads(n)


def machine(threads: int) -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores; torch {torch.__version__}, "
        f"{threads} thread(s); Python {platform.python_version()}; load avg {load:.1f}"
    )


def time_alternating(
    fns: dict[str, Callable[[], object]], repeats: int = 7, inner: int = 5, warmup: int = 2
) -> dict[str, list[float]]:
    """Per-call milliseconds of each function, interleaved.

    Every repeat runs each function ``inner`` times back to back (order rotated
    from repeat to repeat) and records the mean per call; the caller takes the
    median over repeats. Interleaving makes ratios robust to a machine shared
    with other jobs: a slow period hits both sides.
    """
    names = list(fns)
    counts: dict[str, int] = {}
    for name in names:
        for _ in range(warmup):
            t = time.perf_counter()
            fns[name]()
            dt = time.perf_counter() - t
        # at least `inner` calls and at least ~20 ms per block (sub-ms functions)
        counts[name] = max(inner, min(200, int(0.02 / max(dt, 1e-6)) + 1))
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            f, n = fns[name], counts[name]
            t = time.perf_counter()
            for _ in range(n):
                f()
            out[name].append((time.perf_counter() - t) / n * 1e3)
    return out


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def median_ratio(num: list[float], den: list[float]) -> float:
    """Median over repeats of the per-repeat ratio (paired, same time window)."""
    return statistics.median(a / b for a, b in zip(num, den))


def sd(xs: list[float]) -> float:
    """Sample standard deviation over repeats or seeds (NaN for fewer than two)."""
    return statistics.stdev(xs) if len(xs) > 1 else float("nan")


def ratio_sd(num: list[float], den: list[float]) -> float:
    """Standard deviation over repeats of the per-repeat ratio (the spread of ``median_ratio``)."""
    return sd([a / b for a, b in zip(num, den)])


@dataclass
class Problem:
    """A benchmark target with the settings every sampler shares."""

    name: str
    kind: str  # funnel | banana | mixture
    dim: int
    proposal_scale: object  # float or list (per coordinate)
    step_size: float  # fixed MALA/ULA step size (reference comparison)
    n_local: int  # MALA steps per Ex2MCMC step

    def target(self, dtype=None):  # type: ignore[no-untyped-def]
        import torch

        import lightning_ex2 as lx

        if self.kind == "funnel":
            t = lx.targets.Funnel(self.dim, a=2.0, b=0.5)
        elif self.kind == "banana":
            t = lx.targets.Banana(self.dim, b=0.02, sigma=5.0)
        else:
            t = lx.targets.GridMixture(k=5)
        return t.to(dtype or torch.get_default_dtype())

    def scale_list(self) -> list[float]:
        s = self.proposal_scale
        return [float(s)] * self.dim if isinstance(s, int | float) else list(s)


def banana_scale(dim: int, b: float = 0.02, sigma: float = 5.0) -> list[float]:
    """Per-coordinate target standard deviations of the banana (the i-SIR proposal)."""
    odd = (1 + 2 * b**2 * sigma**4) ** 0.5
    return [sigma if i % 2 == 0 or (i == dim - 1 and dim % 2) else odd for i in range(dim)]


# Fixed step sizes: the averaged dual-averaging iterate of our MALA inside Ex2MCMC
# (target acceptance 0.574, 100 chains), rounded; used by both implementations.
PROBLEMS: dict[str, Problem] = {
    "funnel10": Problem("funnel d=10", "funnel", 10, 3.0, 0.2, 3),
    "funnel50": Problem("funnel d=50", "funnel", 50, 3.0, 0.06, 3),
    "funnel100": Problem("funnel d=100", "funnel", 100, 3.0, 0.03, 3),
    "banana20": Problem("banana d=20", "banana", 20, banana_scale(20), 0.6, 5),
    "banana50": Problem("banana d=50", "banana", 50, banana_scale(50), 0.45, 5),
    "banana100": Problem("banana d=100", "banana", 100, banana_scale(100), 0.35, 5),
    "mixture": Problem("25-mode mixture", "mixture", 2, 8.0, 1.2, 3),
}


def write_table(name: str, rows: list[dict], header: str = "", stamp: Stamp | None = None) -> str:
    """Print ``rows`` as a markdown table and write ``out/<name>.csv`` and ``.md``.

    A column ``"X sd"`` is shown inside column ``"X"`` as ``mean ± sd`` (the CSV keeps
    both); ``stamp`` appends the standard footer (command, commit, date, CPU, threads,
    wall time) of the script that made the table.
    """
    OUT.mkdir(parents=True, exist_ok=True)
    cols = list(rows[0])
    with open(OUT / f"{name}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    def cell(r: dict, c: str) -> str:
        spread = r.get(f"{c} sd")
        if isinstance(spread, float) and spread == spread:  # not NaN
            return (
                f"{fmt(r[c])} ± {spread:.2g}"
                if abs(spread) < 1000
                else f"{fmt(r[c])} ± {spread:.0f}"
            )
        return fmt(r[c])

    shown = [c for c in cols if not (c.endswith(" sd") and c[:-3] in cols)]
    lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * len(shown)]
    lines += ["| " + " | ".join(cell(r, c) for c in shown) + " |" for r in rows]
    md = (header + "\n\n" if header else "") + "\n".join(lines) + "\n"
    if stamp is not None:
        md += stamp.footer()
    (OUT / f"{name}.md").write_text(md)
    print(md, flush=True)
    return md
