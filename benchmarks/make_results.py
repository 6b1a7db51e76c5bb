"""Assemble ``benchmarks/RESULTS.md`` from ``benchmarks/out/*.md`` / ``*.csv``.

Run after ``floor.py``, ``targets.py``, ``reference.py`` (1 and 2 threads),
``quality.py`` and ``rematch.py`` (``run_all.sh`` does all of them but
``rematch.py``, which takes hours at full scale; its table is optional). A ``quality`` table that was not
regenerated is carried over from the current RESULTS.md, marked as such.
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


def _find(table: list[dict], **match: str) -> dict | None:
    return next((r for r in table if all(r.get(k) == v for k, v in match.items())), None)


def closing_note() -> str:
    """Funnel/banana d=100, 100 chains: ours vs the reference at 1 thread and at 2 threads."""
    ref = rows("reference")
    ref2 = rows("reference_2t") if (OUT / "reference_2t.csv").exists() else []
    flo = rows("floor")
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
        r2 = _find(ref2, problem=r["problem"], sampler=r["sampler"], chains="100") or {}
        two = [f(r2[c]) if c in r2 else "-" for c in ("ours ms/step", "ref ms/step", "speed-up")]
        if r2:
            two[2] += "x"
        lines.append(
            f"| {r['problem']} | {r['sampler']} | {f(r['ours ms/step'])} | {f(r['ref ms/step'])} | "
            f"{f(r['speed-up'])}x | {' | '.join(two)} | {f(r['ours ESS/s'])} | "
            f"{f(r['ref ESS/s'])} | {f(r['ours EMD'])} | {f(r['ref EMD'])} | {f(r['EMD exact'])} | "
            f"{f(fl['ratio']) if fl else '-'} | {f(fl['ratio_rng']) if fl else '-'} |"
        )
    return "\n".join(lines)


def speedups() -> str:
    """Every sampler's speed-up over the reference, 1 and 2 threads side by side."""
    ref = rows("reference")
    ref2 = rows("reference_2t") if (OUT / "reference_2t.csv").exists() else []
    lines = [
        "| problem | sampler | chains | speed-up 1 thread | speed-up 2 threads |",
        "|---|---|---|---|---|",
    ]
    for r in ref:
        r2 = _find(ref2, problem=r["problem"], sampler=r["sampler"], chains=r["chains"])
        lines.append(
            f"| {r['problem']} | {r['sampler']} | {r['chains']} | {f(r['speed-up'])}x | "
            f"{f(r2['speed-up']) + 'x' if r2 else '-'} |"
        )
    return "\n".join(lines)


def carried_over(name: str, heading: str, end: str) -> None:
    """``out/<name>.md``/``.csv`` from the current RESULTS.md when the script was not rerun."""
    if (OUT / f"{name}.csv").exists():
        return
    text = (HERE / "RESULTS.md").read_text()
    block = text[text.index(heading) + len(heading) : text.index(end, text.index(heading))]
    table = [ln for ln in block.strip().splitlines() if ln.startswith("|")]
    header = next(ln for ln in block.strip().splitlines() if ln and not ln.startswith("|"))
    cols = [c.strip() for c in table[0].strip("|").split("|")]
    with open(OUT / f"{name}.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for ln in table[2:]:
            w.writerow([c.strip() for c in ln.strip("|").split("|")])
    note = f"*(carried over from the previous RESULTS.md: `{name}.py` was not rerun.)* "
    header = header.replace(note, "")  # carried over more than once: one note
    (OUT / f"{name}.md").write_text(note + header + "\n\n" + "\n".join(table) + "\n")


def optional(name: str, missing: str) -> str:
    path = OUT / f"{name}.md"
    return path.read_text() if path.exists() else missing


def rematch_tables() -> str:
    """``out/rematch*.md`` (one full run, or the parts a reduced run was split into),
    the toy-scale CI run excluded."""
    parts = sorted(p for p in OUT.glob("rematch*.md") if p.stem != "rematch_toy")
    if not parts:
        return "(not run: `.venv/bin/python benchmarks/rematch.py`)"
    return "\n\n".join(p.read_text().strip() for p in parts)


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
    carried_over(
        "quality",
        "## Quality per second: ours vs. NUTS (numpyro 0.x, JAX CPU)\n",
        "Per-checkpoint values",
    )
    parts = {
        "{{CLOSING}}": closing_note(),
        "{{SPEEDUPS}}": speedups(),
        "{{TARGETS}}": optional("targets", "(not run: `python benchmarks/targets.py`)"),
        "{{FLOOR}}": (OUT / "floor.md").read_text(),
        "{{REFERENCE}}": (OUT / "reference.md").read_text(),
        "{{REFERENCE_2T}}": optional(
            "reference_2t", "(not run: `python benchmarks/reference.py --threads 2`)"
        ),
        "{{QUALITY}}": (OUT / "quality.md").read_text(),
        "{{NUTS_SUMMARY}}": nuts_summary(),
        "{{RUN_NOTE}}": optional("run_note", "").strip(),
        "{{REMATCH}}": rematch_tables(),
    }
    for k, v in parts.items():
        template = template.replace(k, v.strip())
    (HERE / "RESULTS.md").write_text(template)
    print(f"wrote {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
