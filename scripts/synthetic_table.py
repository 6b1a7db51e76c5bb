"""Run the synthetic configs of one experiment with every method over seeds and write a table.

Each method and seed runs exactly the commands a user would type::

    lightning-ex2 fit --config configs/synthetic/<exp>/<method>.yaml --seed_everything=K \\
        --model.init_args.seed=K --data.seed=K ...
    lightning-ex2 sample --config ... (same seeds) --ckpt_path .../last.ckpt --n_steps S

then the table collects ``summary.json`` (EMD to exact samples beside the EMD
of two exact samples, ESS, R-hat, acceptance, wall time) and, for mixtures,
the total variation between the mode frequencies of the draws and the true
mode weights; every column is the mean ± sample standard deviation over the seeds.
The seed is given three times because the config seeds three things:
``seed_everything`` the global RNG (flow initialisation), ``model.seed`` the chains'
moves and ``data.seed`` their initial points.

    python scripts/synthetic_table.py --experiment mixture25
    python scripts/synthetic_table.py --experiment bimodal_d20 --methods mala isir ex2mcmc flex2mcmc

The table and a footer (command, commit, date, CPU, threads, wall time) replace the
block between ``<!-- synthetic-<exp>:start -->`` and ``<!-- synthetic-<exp>:end -->`` in
each ``--write`` page that has those markers (default: ``docs/results.md`` and
``README.md``; ``--write`` alone writes none); ``<out>/<exp>.md`` and ``<out>/<exp>.json``
(the per-seed values) are always written.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from lightning_ex2.lightning.cli import build_cli
from lightning_ex2.output.files import save_text
from lightning_ex2.stamp import Stamp, mean_spread, write_pages

ROOT = Path(__file__).resolve().parents[1]

# (summary key, column header, format)
COLUMNS = [
    ("emd", "EMD", ".3g"),
    ("emd_exact", "EMD exact-vs-exact", ".3g"),
    ("mode_tv", "mode-weight TV", ".2f"),
    ("ess_geyer_mean", "ESS (mean)", ".0f"),
    ("rhat_split_max", "R-hat (max)", ".2f"),
    ("accept_global_mean", "accept global", ".2f"),
    ("accept_local_mean", "accept local", ".2f"),
    ("wall_seconds", "sample s", ".1f"),
]


def run(cmd: list[str]) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def seed_args(seed: int) -> list[str]:
    """The CLI flags that seed a run: global RNG, the chains' moves, their initial points."""
    return [f"--seed_everything={seed}", f"--model.init_args.seed={seed}", f"--data.seed={seed}"]


def mode_tv(config: Path, samples: np.ndarray) -> float | None:
    target = build_cli(["--config", str(config)], run=False).model.target
    if not hasattr(target, "assign"):
        return None
    assigned = target.assign(torch.from_numpy(samples).to(target.weights.dtype)).flatten()
    freq = np.bincount(assigned.numpy(), minlength=target.n_components) / assigned.numel()
    return float(0.5 * np.abs(freq - target.weights.double().numpy()).sum())


def render(results: dict[str, list[dict]]) -> str:
    """Markdown table: one row per method, each column mean ± sd over its seeds."""
    lines = [
        "| method | " + " | ".join(head for _, head, _ in COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    for method, runs in results.items():
        cells = [mean_spread([r.get(key) for r in runs], fmt) for key, _, fmt in COLUMNS]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    stamp = Stamp()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="mixture25")
    parser.add_argument(
        "--methods", nargs="+", default=["mala", "hmc", "isir", "ex2mcmc", "flex2mcmc"]
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--fit-steps", type=int, default=300)
    parser.add_argument("--sample-steps", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("logs/tables"))
    parser.add_argument(
        "--write",
        type=Path,
        nargs="*",
        default=[Path("docs/results.md"), Path("README.md")],
        help="Markdown pages whose synthetic-<experiment> block gets the table",
    )
    args = parser.parse_args(argv)
    exe = str(Path(sys.executable).with_name("lightning-ex2"))
    results: dict[str, list[dict]] = {}
    quiet = ["--trainer.enable_progress_bar", "false"]
    for method in args.methods:
        config = Path("configs/synthetic") / args.experiment / f"{method}.yaml"
        log_name = f"synthetic/{args.experiment}/{method}"
        results[method] = []
        for seed in args.seeds:
            version = f"table-seed{seed}"
            # one run per folder (README): the table's previous run of this method goes first
            shutil.rmtree(ROOT / "logs" / log_name / version, ignore_errors=True)
            run(
                [exe, "fit", "--config", str(config), *seed_args(seed),
                 "--trainer.max_steps", str(args.fit_steps),
                 "--trainer.logger.init_args.version", version, *quiet]
            )  # fmt: skip
            out = args.out / args.experiment / method / f"seed{seed}"
            run(
                [exe, "sample", "--config", str(config), *seed_args(seed),
                 "--ckpt_path", f"logs/{log_name}/{version}/checkpoints/last.ckpt",
                 "--n_steps", str(args.sample_steps), "--output_dir", str(out),
                 "--overwrite", "true", "--progress", "false", *quiet]
            )  # fmt: skip
            summary = json.loads((ROOT / out / "summary.json").read_text())
            samples = np.load(ROOT / out / "samples.npz")["samples"]
            summary["mode_tv"] = mode_tv(ROOT / config, samples)
            results[method].append({key: summary.get(key) for key, _, _ in COLUMNS})
    seeds = ", ".join(map(str, args.seeds))
    table = render(results) + f"\n\nMean ± sd over {len(args.seeds)} seed(s) ({seeds}).\n"
    print(table)
    out_dir = ROOT / args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    save_text(out_dir / f"{args.experiment}.md", table)
    per_seed = {"seeds": args.seeds, "runs": results}
    save_text(out_dir / f"{args.experiment}.json", json.dumps(per_seed, indent=1) + "\n")
    pages = [p if p.is_absolute() else ROOT / p for p in args.write]
    block = table + stamp.footer()
    name = f"synthetic-{args.experiment}"
    written = write_pages(pages, name, block)
    for page in pages:
        print(f"{page}: {'wrote' if page in written else 'no'} {name} block", flush=True)


if __name__ == "__main__":
    main()
