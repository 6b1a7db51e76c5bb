"""Assemble ``benchmarks/RESULTS.md`` from ``benchmarks/out/*.md`` / ``*.csv``.

Run after ``floor.py``, ``reference.py`` and ``quality.py`` (``run_all.sh`` does all four).
"""

from __future__ import annotations

import csv
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def rows(name: str) -> list[dict]:
    with open(OUT / f"{name}.csv") as f:
        return list(csv.DictReader(f))


def f(v: str, nd: int = 3) -> str:
    try:
        x = float(v)
    except ValueError:
        return v
    return f"{x:.{nd}g}" if abs(x) < 1000 else f"{x:.0f}"


def closing_note() -> str:
    ref = rows("reference")
    flo = rows("floor")
    lines = [
        "| problem (100 chains, N=200) | sampler | ours ms/step | ref ms/step | speed-up | "
        "ours ESS/s | ref ESS/s | ours EMD | ref EMD | EMD exact | floor ratio (ours) | "
        "floor ratio incl. draws |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in ref:
        if r["chains"] != "100" or r["sampler"] not in ("Ex2MCMC", "i-SIR"):
            continue
        tname = r["problem"].split()[0]
        fl = next(
            (
                x
                for x in flo
                if x["target"] == tname
                and x["kernel"] == r["sampler"]
                and (x["chains"], x["particles"], x["dim"]) == ("100", "200", "100")
            ),
            None,
        )
        lines.append(
            f"| {r['problem']} | {r['sampler']} | {f(r['ours ms/step'])} | {f(r['ref ms/step'])} | "
            f"{f(r['speed-up'])}x | {f(r['ours ESS/s'])} | {f(r['ref ESS/s'])} | "
            f"{f(r['ours EMD'])} | {f(r['ref EMD'])} | {f(r['EMD exact'])} | "
            f"{f(fl['ratio']) if fl else '-'} | {f(fl['ratio_rng']) if fl else '-'} |"
        )
    return "\n".join(lines)


def nuts_summary() -> str:
    """FlEx2MCMC (or Ex2MCMC) vs. NUTS per problem: ESS/s and EMD, from quality.csv."""
    q = rows("quality")
    out = [
        "| problem | best of ours (ESS/s) | ESS/s | NUTS ESS/s | FlEx2MCMC EMD | "
        "Ex2MCMC EMD | NUTS EMD | EMD exact |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for prob in dict.fromkeys(r["problem"] for r in q):
        rs = {r["sampler"]: r for r in q if r["problem"] == prob}
        ours = [r for s, r in rs.items() if s != "NUTS"]
        best = max(ours, key=lambda r: float(r["ESS/s"]))
        nuts = rs.get("NUTS")
        flex, ex2 = rs.get("FlEx2MCMC"), rs.get("Ex2MCMC")
        out.append(
            f"| {prob} | {best['sampler']} | {f(best['ESS/s'])} | "
            f"{f(nuts['ESS/s']) if nuts else '-'} | {f(flex['EMD']) if flex else '-'} | "
            f"{f(ex2['EMD']) if ex2 else '-'} | {f(nuts['EMD']) if nuts else '-'} | "
            f"{f(best['EMD exact'])} |"
        )
    return "Summary (from the table above):\n\n" + "\n".join(out)


def main() -> None:
    template = (HERE / "RESULTS.template.md").read_text()
    parts = {
        "{{CLOSING}}": closing_note(),
        "{{FLOOR}}": (OUT / "floor.md").read_text(),
        "{{REFERENCE}}": (OUT / "reference.md").read_text(),
        "{{QUALITY}}": (OUT / "quality.md").read_text(),
        "{{NUTS_SUMMARY}}": nuts_summary(),
    }
    for k, v in parts.items():
        template = template.replace(k, v.strip())
    (HERE / "RESULTS.md").write_text(template)
    print(f"wrote {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
