"""Assemble ``benchmarks/RESULTS.md`` whole from ``benchmarks/out/*.md`` / ``*.csv``.

Run after ``floor.py``, ``targets.py``, ``reference.py`` (1 and 2 threads) and
``quality.py`` (``run_all.sh`` runs them all, then this). A table that was not made
says so and names its command; the NUTS rematch (hours at full scale) comes from
``benchmarks/out/rematch*.md`` when it was run, else from its recorded output in
``benchmarks/recorded/rematch.md``, stamped with what made it. Also rewrites the
headline table of ``docs/benchmarks.md`` (between its ``benchmarks-headline`` markers).

    benchmarks/.venv-ref/bin/python benchmarks/make_results.py
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def rows(name: str) -> list[dict]:
    with open(OUT / f"{name}.csv") as f:
        return list(csv.DictReader(f))


def f(v: str, nd: int = 3) -> str:
    try:
        x = float(v)
    except ValueError:
        return v
    return f"{x:.{nd}g}" if abs(x) < 1000 else f"{x:.0f}"


def fs(r: dict, col: str, unit: str = "") -> str:
    """``r[col]`` with its spread column ``"<col> sd"`` when the CSV has one: ``"2.1 ± 0.1x"``."""
    spread = r.get(f"{col} sd", "")
    try:
        ok = float(spread) == float(spread)  # not NaN
    except ValueError:
        ok = False
    return f"{f(r[col])} ± {f(spread, 2)}{unit}" if ok else f"{f(r[col])}{unit}"


def _find(table: list[dict], **match: str) -> dict | None:
    return next((r for r in table if all(r.get(k) == v for k, v in match.items())), None)


def closing_note() -> str:
    """Funnel/banana d=100, 100 chains: ours vs the reference at 1 thread and at 2 threads."""
    if not (OUT / "reference.csv").exists():
        return "(not run: `benchmarks/.venv-ref/bin/python benchmarks/reference.py`)"
    ref = rows("reference")
    ref2 = rows("reference_2t") if (OUT / "reference_2t.csv").exists() else []
    flo = rows("floor") if (OUT / "floor.csv").exists() else []
    lines = [
        "| problem (100 chains, N=200) | sampler | ours ms/step 1T | ref ms/step 1T | "
        "speed-up 1T | ours ms/step 2T | ref ms/step 2T | speed-up 2T | ours ESS/s 1T | "
        "ref ESS/s 1T | ours EMD | ref EMD | EMD exact | floor ratio (ours) | "
        "floor ratio incl. draws |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in ref:
        if r["chains"] != "100" or r["sampler"] not in ("Ex2MCMC", "i-SIR"):
            continue
        tname = r["problem"].split()[0]
        fl = _find(flo, target=tname, kernel=r["sampler"], chains="100", particles="200", dim="100")
        r2 = _find(ref2, problem=r["problem"], sampler=r["sampler"], chains="100")
        two = (
            [f(r2["ours ms/step"]), f(r2["ref ms/step"]), fs(r2, "speed-up", "x")]
            if r2
            else ["-", "-", "-"]
        )
        lines.append(
            f"| {r['problem']} | {r['sampler']} | {f(r['ours ms/step'])} | {f(r['ref ms/step'])} | "
            f"{fs(r, 'speed-up', 'x')} | {' | '.join(two)} | {fs(r, 'ours ESS/s')} | "
            f"{fs(r, 'ref ESS/s')} | {fs(r, 'ours EMD')} | {fs(r, 'ref EMD')} | {f(r['EMD exact'])} | "
            f"{fs(fl, 'ratio') if fl else '-'} | {fs(fl, 'ratio_rng') if fl else '-'} |"
        )
    return "\n".join(lines)


def speedups() -> str:
    """Every sampler's speed-up over the reference, 1 and 2 threads side by side."""
    if not (OUT / "reference.csv").exists():
        return "(not run: `benchmarks/.venv-ref/bin/python benchmarks/reference.py`)"
    ref = rows("reference")
    ref2 = rows("reference_2t") if (OUT / "reference_2t.csv").exists() else []
    lines = [
        "| problem | sampler | chains | speed-up 1 thread | speed-up 2 threads |",
        "|---|---|---|---|---|",
    ]
    for r in ref:
        r2 = _find(ref2, problem=r["problem"], sampler=r["sampler"], chains=r["chains"])
        lines.append(
            f"| {r['problem']} | {r['sampler']} | {r['chains']} | {fs(r, 'speed-up', 'x')} | "
            f"{fs(r2, 'speed-up', 'x') if r2 else '-'} |"
        )
    return "\n".join(lines)


def headline() -> str:
    """The 100-chain rows of both reference tables, for ``docs/benchmarks.md``."""
    ref = rows("reference") if (OUT / "reference.csv").exists() else []
    ref2 = rows("reference_2t") if (OUT / "reference_2t.csv").exists() else []
    lines = [
        "| 100 chains, d = 100 | ours / ref ms/step, 1 thread | speed-up | "
        "ours / ref ms/step, 2 threads | speed-up | ESS/s ours / ref (1 thread) |",
        "|---|---|---|---|---|---|",
    ]
    for r in ref:
        if r["chains"] != "100":
            continue
        r2 = _find(ref2, problem=r["problem"], sampler=r["sampler"], chains="100")
        two = (
            [f"{f(r2['ours ms/step'])} / {f(r2['ref ms/step'])}", fs(r2, "speed-up", "×")]
            if r2
            else ["-", "-"]
        )
        lines.append(
            f"| {r['problem'].split()[0]}, {r['sampler']} | "
            f"{f(r['ours ms/step'])} / {f(r['ref ms/step'])} | {fs(r, 'speed-up', '×')} | "
            f"{' | '.join(two)} | {fs(r, 'ours ESS/s')} / {fs(r, 'ref ESS/s')} |"
        )
    return "\n".join(lines)


def optional(name: str, command: str, why: str = "") -> str:
    path = OUT / f"{name}.md"
    return path.read_text() if path.exists() else f"(not run: `{command}`{why})"


def rematch_tables() -> tuple[str, str]:
    """``out/rematch*.md`` (the toy-scale CI run excluded), else the recorded output."""
    parts = sorted(p for p in OUT.glob("rematch*.md") if p.stem != "rematch_toy")
    if parts:
        return "\n\n".join(
            p.read_text().strip() for p in parts
        ), "The tables below are from its last run."
    recorded = HERE / "recorded" / "rematch.md"
    if recorded.exists():
        text = "\n".join(
            ln for ln in recorded.read_text().splitlines() if not ln.startswith("<!--")
        )
        return text, (
            "The tables below are its recorded output at a reduced scale, each stamped with the "
            "command and date that made it."
        )
    return "(not run: `.venv/bin/python benchmarks/rematch.py`)", ""


def nuts_summary() -> str:
    """FlEx2MCMC (or Ex2MCMC) vs. NUTS per problem: ESS/s and EMD, from quality.csv."""
    if not (OUT / "quality.csv").exists():
        return ""
    q = rows("quality")
    out = [
        "| problem | best of ours (mean ESS/s) | ESS/s | NUTS ESS/s | FlEx2MCMC EMD | "
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
            f"| {prob} | {best['sampler']} | {fs(best, 'ESS/s')} | "
            f"{fs(nuts, 'ESS/s') if nuts else '-'} | {fs(flex, 'EMD') if flex else '-'} | "
            f"{fs(ex2, 'EMD') if ex2 else '-'} | {fs(nuts, 'EMD') if nuts else '-'} | "
            f"{fs(best, 'EMD exact')} |"
        )
    return "Summary (from the table above; mean ± sd over seeds):\n\n" + "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    from lightning_ex2.stamp import Stamp, write_block

    stamp = Stamp()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    p.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = p.parse_args(argv)
    ref = "benchmarks/.venv-ref/bin/python benchmarks/"
    rematch, rematch_source = rematch_tables()
    parts = {
        "{{CLOSING}}": closing_note(),
        "{{SPEEDUPS}}": speedups(),
        "{{TARGETS}}": optional("targets", f"{ref}targets.py"),
        "{{FLOOR}}": optional("floor", f"{ref}floor.py"),
        "{{REFERENCE}}": optional("reference", f"{ref}reference.py"),
        "{{REFERENCE_2T}}": optional("reference_2t", f"{ref}reference.py --threads 2"),
        "{{QUALITY}}": optional("quality", f"{ref}quality.py"),
        "{{NUTS_SUMMARY}}": nuts_summary(),
        "{{GPU}}": optional("gpu", "make gpu-check", " needs a CUDA GPU"),
        "{{REMATCH_SOURCE}}": rematch_source,
        "{{REMATCH}}": rematch,
    }
    template = (HERE / "RESULTS.template.md").read_text()
    for k, v in parts.items():
        template = template.replace(k, v.strip())
    template = template.replace(
        "{{FOOTER}}", stamp.footer().strip().replace("Generated by", "Assembled by")
    )
    args.results.write_text(template.rstrip() + "\n")
    print(f"wrote {args.results}")
    if (OUT / "reference.csv").exists() and args.docs.exists():
        footers = [footer(name) for name in ("reference", "reference_2t")]
        block = headline() + "\n" + "".join(footers)
        write_block(args.docs, "benchmarks-headline", block)
        print(f"wrote the headline table of {args.docs}")


def footer(name: str) -> str:
    """The stamp line a benchmark script wrote under ``out/<name>.md`` ('' if none)."""
    path = OUT / f"{name}.md"
    text = path.read_text() if path.exists() else ""
    i = text.rfind("<sub>")
    return "\n" + text[i:].strip() + "\n" if i >= 0 else ""


if __name__ == "__main__":
    main()
